//! REST endpoints of feature flags (per environment, the kill switch) and of promotion:
//! copying a flag or an experiment into another environment.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use super::policy::Actor;
use super::{created, ok, parse_id, Answer, AppState, Body};
use crate::service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/environments/{id}/flags",
            get(list_flags).post(create_flag),
        )
        .route(
            "/flags/{id}",
            get(get_flag).patch(patch_flag).delete(remove_flag),
        )
        .route("/flags/{id}/kill", put(kill_flag))
        .route("/flags/{id}/promote", post(promote_flag))
        .route("/experiments/{id}/promote", post(promote_experiment))
}

async fn create_flag(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Answer {
    let env = parse_id(&id, "environment")?;
    created(service::create_flag(&s.ctx, &actor, env, body).await?)
}

async fn list_flags(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(service::list_flags(&s.ctx, parse_id(&id, "environment")?).await?)
}

async fn get_flag(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(service::flag(&s.ctx, parse_id(&id, "flag")?).await?)
}

async fn patch_flag(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Answer {
    ok(service::patch_flag(&s.ctx, &actor, parse_id(&id, "flag")?, body).await?)
}

/// Deletes a draft flag (204) or archives a flag that went live (200, the flag).
async fn remove_flag(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Answer {
    match service::remove_flag(&s.ctx, &actor, parse_id(&id, "flag")?).await? {
        service::Removed::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        service::Removed::Archived(flag) => ok(*flag),
    }
}

/// Where a definition is copied to.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Promotion {
    environment_id: String,
}

/// Copies a flag into another environment.
async fn promote_flag(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(to): Body<Promotion>,
) -> Answer {
    let (id, target) = (
        parse_id(&id, "flag")?,
        parse_id(&to.environment_id, "environment")?,
    );
    created(service::promote_flag(&s.ctx, &actor, id, target).await?)
}

/// Copies an experiment into another environment as a draft.
async fn promote_experiment(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(to): Body<Promotion>,
) -> Answer {
    let (id, target) = (
        parse_id(&id, "experiment")?,
        parse_id(&to.environment_id, "environment")?,
    );
    created(service::promote_experiment(&s.ctx, &actor, id, target).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kill {
    killed: bool,
}

/// `{"killed": true}` serves the off variant everywhere, published at once.
async fn kill_flag(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(kill): Body<Kill>,
) -> Answer {
    let (flag, published) =
        service::kill_flag(&s.ctx, &actor, parse_id(&id, "flag")?, kill.killed).await?;
    ok(serde_json::json!({"flag": flag, "published": published}))
}
