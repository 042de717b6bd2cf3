//! REST endpoints the dashboard needs beyond docs/contracts.md §6: who the caller is, publish history
//! with diffs, a dry run of a status change, and editing a variant. Plain REST like the rest,
//! so scripts can use them too.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use axum::Router;
use serde::Deserialize;

use super::policy::Actor;
use super::{ok, parse_id, Answer, AppState, Body};
use crate::error::AdminError;
use crate::history;
use crate::model::Status;
use crate::service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/session", get(session))
        .route("/environments/{id}/pending", get(pending))
        .route("/environments/{id}/snapshots", get(versions))
        .route("/environments/{id}/snapshots/{version}", get(version_body))
        .route("/environments/{id}/snapshots/{version}/diff", get(diff))
        .route("/experiments/{id}/plan", get(status_plan))
        .route(
            "/experiments/{id}/variants/{variant}",
            patch(patch_variant).delete(delete_variant),
        )
}

/// Deletes a variant of a draft experiment.
async fn delete_variant(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path((id, variant)): Path<(String, String)>,
) -> Answer {
    let experiment = parse_id(&id, "experiment")?;
    let variant = parse_id(&variant, "variant")?;
    service::delete_variant(&s.ctx, &actor, experiment, variant).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

async fn session(State(s): State<AppState>, headers: HeaderMap) -> Answer {
    ok(s.access.session(&headers)?)
}

async fn versions(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(history::list(&s.ctx, parse_id(&id, "environment")?).await?)
}

/// What the next publish would change: field by field and unit by unit.
async fn pending(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(history::pending(&s.ctx, parse_id(&id, "environment")?).await?)
}

fn parse_version(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| AdminError::NotFound(format!("no version {raw}")))
}

async fn version_body(
    State(s): State<AppState>,
    Path((id, version)): Path<(String, String)>,
) -> Answer {
    let env = parse_id(&id, "environment")?;
    ok(history::body(&s.ctx, env, parse_version(&version)?).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffOptions {
    against: Option<i64>,
}

async fn diff(
    State(s): State<AppState>,
    Path((id, version)): Path<(String, String)>,
    Query(options): Query<DiffOptions>,
) -> Answer {
    let env = parse_id(&id, "environment")?;
    ok(history::diff(&s.ctx, env, parse_version(&version)?, options.against).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanOptions {
    status: String,
}

async fn status_plan(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(options): Query<PlanOptions>,
) -> Answer {
    let to = Status::parse(&options.status).ok_or_else(|| {
        AdminError::BadRequest(format!(
            "status {:?} is not one of DRAFT, RUNNING, PAUSED, STOPPED, ARCHIVED",
            options.status
        ))
    })?;
    ok(service::preview_status(&s.ctx, parse_id(&id, "experiment")?, to).await?)
}

async fn patch_variant(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path((id, variant)): Path<(String, String)>,
    Body(req): Body<service::VariantPatch>,
) -> Answer {
    let experiment = parse_id(&id, "experiment")?;
    let variant = parse_id(&variant, "variant")?;
    ok(service::patch_variant(&s.ctx, &actor, experiment, variant, req).await?)
}
