//! The REST control plane (docs/contracts.md §6), served by `cleave-admin serve`.

mod analysis;
mod dashboard;
mod flags;
pub mod policy;
mod ui;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::access::Access;
use crate::db::audit;
use crate::error::AdminError;
use crate::service::{self, Ctx};
use policy::Actor;

/// Shared state of the server.
#[derive(Debug, Clone)]
pub struct AppState {
    pub ctx: Ctx,
    /// Tokens and their roles; without any, every mutation is refused.
    pub access: Access,
}

/// The router, ready to serve or to test with `oneshot`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/environments",
            post(create_environment).get(list_environments),
        )
        .route("/environments/{id}", get(get_environment))
        .route("/environments/{id}/publish", post(publish))
        .route("/environments/{id}/plan", get(plan))
        .route("/environments/{id}/settings", put(set_settings))
        .route("/targeting/operators", get(targeting_operators))
        .route("/audiences", post(create_audience).get(list_audiences))
        .route(
            "/audiences/{id}",
            get(get_audience)
                .patch(patch_audience)
                .delete(delete_audience),
        )
        .route("/environments/{id}/rollback", post(rollback))
        .route(
            "/experiments",
            post(create_experiment).get(list_experiments),
        )
        .route(
            "/experiments/{id}",
            get(get_experiment)
                .patch(patch_experiment)
                .delete(delete_experiment),
        )
        .route("/experiments/{id}/variants", post(add_variant))
        .route("/experiments/{id}/allocations", put(set_allocations))
        .route("/experiments/{id}/status", patch(set_status))
        .route("/audit", get(audit_log))
        .route("/metrics", get(crate::observability::metrics))
        .merge(analysis::routes())
        .merge(flags::routes())
        .merge(dashboard::routes())
        .fallback(|| async { AdminError::NotFound("no such endpoint".to_owned()) })
        // Route layers see the matched route; the later one wraps the earlier, so refused
        // calls are observed too.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            policy::authorize,
        ))
        .route_layer(middleware::from_fn(crate::observability::observe))
        // The dashboard's files hold no data: they load without a token, then ask for one.
        .merge(ui::routes())
        .with_state(state)
}

/// JSON body extractor whose rejections use the API's error shape.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(AdminError::BadRequest(rejection_message(&rejection))),
        }
    }
}

fn rejection_message(rejection: &JsonRejection) -> String {
    format!("invalid JSON body: {}", rejection.body_text())
}

/// Path ids that are not UUIDs are simply not found.
fn parse_id(raw: &str, what: &str) -> Result<Uuid, AdminError> {
    Uuid::parse_str(raw).map_err(|_| AdminError::NotFound(format!("no {what} {raw}")))
}

type Answer = Result<Response, AdminError>;

fn created(value: impl serde::Serialize) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn ok(value: impl serde::Serialize) -> Answer {
    Ok(Json(value).into_response())
}

/// Deletes a draft experiment (409 for any other status).
async fn delete_experiment(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Answer {
    service::delete_experiment(&s.ctx, &actor, parse_id(&id, "experiment")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_environment(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Body(req): Body<service::NewEnvironment>,
) -> Answer {
    created(service::create_environment(&s.ctx, &actor, req).await?)
}

async fn list_environments(State(s): State<AppState>) -> Answer {
    ok(crate::db::environments::list(&s.ctx.pool).await?)
}

async fn get_environment(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(service::environment(&s.ctx, parse_id(&id, "environment")?).await?)
}

#[derive(Deserialize)]
struct PublishOptions {
    #[serde(default)]
    confirm: bool,
}

/// `?confirm=true` accepts a plan that moves already-enrolled units between variants.
async fn publish(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Query(options): Query<PublishOptions>,
) -> Answer {
    let env = parse_id(&id, "environment")?;
    ok(service::publish(&s.ctx, &actor, env, options.confirm).await?)
}

async fn plan(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(service::plan(&s.ctx, "plan", parse_id(&id, "environment")?).await?)
}

async fn set_settings(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<crate::model::EnvironmentSettings>,
) -> Answer {
    let env = parse_id(&id, "environment")?;
    ok(service::set_settings(&s.ctx, &actor, env, req).await?)
}

async fn create_audience(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Body(req): Body<service::NewAudience>,
) -> Answer {
    created(service::create_audience(&s.ctx, &actor, req).await?)
}

async fn list_audiences(State(s): State<AppState>) -> Answer {
    ok(service::list_audiences(&s.ctx).await?)
}

async fn get_audience(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(service::audience(&s.ctx, parse_id(&id, "audience")?).await?)
}

async fn patch_audience(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<service::AudiencePatch>,
) -> Answer {
    let id = parse_id(&id, "audience")?;
    let (audience, pending) = service::patch_audience(&s.ctx, &actor, id, req).await?;
    let mut body = serde_json::to_value(&audience).unwrap_or_default();
    // Environments whose next publish carries this change.
    body["pendingPublish"] = json!(pending);
    ok(body)
}

async fn delete_audience(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Answer {
    service::delete_audience(&s.ctx, &actor, parse_id(&id, "audience")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: i64,
}

async fn rollback(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<RollbackRequest>,
) -> Answer {
    let id = parse_id(&id, "environment")?;
    let mut tx = s.ctx.pool.begin().await?;
    let done =
        crate::publish::rollback_in(&mut tx, s.ctx.outlet(), id, req.version, &actor).await?;
    tx.commit().await?;
    ok(done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExperimentFilter {
    environment_id: Option<String>,
}

async fn create_experiment(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Body(req): Body<service::NewExperiment>,
) -> Answer {
    created(service::create_experiment(&s.ctx, &actor, req).await?)
}

async fn list_experiments(
    State(s): State<AppState>,
    Query(filter): Query<ExperimentFilter>,
) -> Answer {
    let environment =
        match filter.environment_id.as_deref() {
            Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| {
                AdminError::BadRequest(format!("environmentId {raw:?} is not a UUID"))
            })?),
            None => None,
        };
    ok(service::list_experiments(&s.ctx, environment).await?)
}

async fn get_experiment(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(service::experiment(&s.ctx, parse_id(&id, "experiment")?).await?)
}

async fn patch_experiment(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<service::ExperimentPatch>,
) -> Answer {
    ok(service::patch_experiment(&s.ctx, &actor, parse_id(&id, "experiment")?, req).await?)
}

async fn add_variant(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<service::NewVariant>,
) -> Answer {
    created(service::add_variant(&s.ctx, &actor, parse_id(&id, "experiment")?, req).await?)
}

async fn set_allocations(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<service::Allocations>,
) -> Answer {
    ok(service::set_allocations(&s.ctx, &actor, parse_id(&id, "experiment")?, req).await?)
}

async fn set_status(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<service::StatusChange>,
) -> Answer {
    let (experiment, published) =
        service::set_status(&s.ctx, &actor, parse_id(&id, "experiment")?, req).await?;
    let mut body = serde_json::to_value(&experiment).unwrap_or_default();
    body["published"] = json!(published);
    ok(body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditFilter {
    entity_id: Option<String>,
}

async fn audit_log(State(s): State<AppState>, Query(filter): Query<AuditFilter>) -> Answer {
    ok(audit::list(&s.ctx.pool, filter.entity_id.as_deref()).await?)
}

/// The targeting operators core evaluates and the value each takes: the dashboard's condition
/// editor offers exactly these.
async fn targeting_operators() -> Answer {
    let operators: Vec<_> = cleave_core::snapshot::Operator::known()
        .map(|op| serde_json::json!({"name": op.name(), "operand": op.operand()}))
        .collect();
    ok(operators)
}
