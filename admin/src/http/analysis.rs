//! REST endpoints of the analysis loop: ingest from the edge, metric definitions, the metrics
//! an experiment is judged on, results and guardrail checks.

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::policy::Actor;
use super::{created, ok, parse_id, Answer, AppState, Body};
use crate::analysis::{self, guardrails, ingest, metrics};
use crate::analytics_store::Dimension;
use crate::error::AdminError;
use crate::service;
use cleave_core::stats::Correction;

/// Largest ingest body: a queue batch of 100 requests' exposures fits with room to spare.
const INGEST_BODY_BYTES: usize = 16 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ingest",
            post(ingest_batch).layer(DefaultBodyLimit::max(INGEST_BODY_BYTES)),
        )
        .route("/metric-definitions", post(create_metric).get(list_metrics))
        .route(
            "/experiments/{id}/metrics",
            get(experiment_metrics).put(set_experiment_metrics),
        )
        .route("/experiments/{id}/results", get(results))
        .route("/experiments/{id}/timeline", get(timeline))
        .route("/experiments/{id}/slices", get(slices))
        .route("/environments/{id}/holdout", get(holdout))
        .route(
            "/experiments/{id}/decision",
            get(experiment_decision).put(set_experiment_decision),
        )
        .route("/experiments/{id}/phases", get(list_phases).post(new_phase))
        .route("/guardrails/check", post(check_guardrails))
        .route("/sample-size", get(sample_size))
}

/// A sample size plan before an experiment starts, from a chosen baseline.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleSizeQuery {
    /// The control's conversion rate, or its mean for a continuous metric.
    baseline: f64,
    /// A continuous metric's per-unit standard deviation; absent for a conversion rate.
    sd: Option<f64>,
    mde: Option<f64>,
    alpha: Option<f64>,
    power: Option<f64>,
    /// Arms, control included; 2 unless given.
    variants: Option<usize>,
    /// Units the experiment enrols a day, for how long it will take.
    daily_units: Option<f64>,
}

async fn sample_size(Query(q): Query<SampleSizeQuery>) -> Answer {
    let plan = analysis::sample_size(&analysis::SampleSize {
        baseline: q.baseline,
        sd: q.sd,
        mde: q.mde.unwrap_or(0.05),
        alpha: q.alpha.unwrap_or(0.05),
        power: q.power.unwrap_or(0.8),
        variants: q.variants.unwrap_or(2),
        daily_units: q.daily_units,
    })
    .map_err(AdminError::BadRequest)?;
    ok(plan)
}

async fn ingest_batch(State(s): State<AppState>, Body(batch): Body<ingest::Delivery>) -> Answer {
    ok(ingest::ingest(&s.ctx, batch).await?)
}

async fn create_metric(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Body(req): Body<metrics::NewMetric>,
) -> Answer {
    created(metrics::create(&s.ctx, &actor, req).await?)
}

async fn list_metrics(State(s): State<AppState>) -> Answer {
    ok(crate::db::analysis::list_metrics(&s.ctx.pool).await?)
}

async fn experiment_metrics(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id, "experiment")?;
    crate::service::experiment(&s.ctx, id).await?;
    ok(crate::db::analysis::experiment_metrics(&s.ctx.pool, id).await?)
}

async fn set_experiment_metrics(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<metrics::ExperimentMetrics>,
) -> Answer {
    let id = parse_id(&id, "experiment")?;
    ok(metrics::set_for_experiment(&s.ctx, &actor, id, req).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultsQuery {
    alpha: Option<f64>,
    /// `holm` (default) or `bh`.
    correction: Option<String>,
    /// The phase to analyse; the current one unless given.
    phase: Option<i32>,
    /// The sample size plan's minimum detectable (relative) effect and power.
    mde: Option<f64>,
    power: Option<f64>,
    /// CUPED's pre-exposure window in days; 0 turns it off.
    cuped_days: Option<i32>,
}

async fn results(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ResultsQuery>,
) -> Answer {
    let id = parse_id(&id, "experiment")?;
    let mut options = analysis::Options::default();
    if let Some(alpha) = query.alpha {
        options.alpha = alpha;
    }
    if let Some(correction) = query.correction.as_deref() {
        options.correction =
            analysis::parse_correction(correction).map_err(AdminError::BadRequest)?;
    }
    options.phase = query.phase;
    if let Some(mde) = query.mde {
        options.mde = mde;
    }
    if let Some(power) = query.power {
        options.power = power;
    }
    if let Some(days) = query.cuped_days {
        options.cuped_days = days;
    }
    ok(analysis::results(&s.ctx, id, options).await?)
}

async fn experiment_decision(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id, "experiment")?;
    ok(metrics::decision(&s.ctx, id).await?)
}

async fn set_experiment_decision(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<metrics::DecisionRequest>,
) -> Answer {
    let id = parse_id(&id, "experiment")?;
    ok(metrics::set_decision(&s.ctx, &actor, id, req).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    /// The metric to follow; the first primary metric unless given.
    metric: Option<String>,
    alpha: Option<f64>,
    phase: Option<i32>,
}

async fn timeline(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> Answer {
    let id = parse_id(&id, "experiment")?;
    let mut options = analysis::Options::default();
    if let Some(alpha) = query.alpha {
        options.alpha = alpha;
    }
    options.phase = query.phase;
    let metric = query.metric.as_deref();
    ok(analysis::timeline::timeline(&s.ctx, id, metric, options).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlicesQuery {
    /// `country`, `device` or `browser`.
    dimension: Option<String>,
    alpha: Option<f64>,
    /// `bh` (default: slices are exploratory) or `holm`.
    correction: Option<String>,
    phase: Option<i32>,
}

async fn slices(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<SlicesQuery>,
) -> Answer {
    let id = parse_id(&id, "experiment")?;
    let dimension = match query.dimension.as_deref() {
        Some("country") => Dimension::Country,
        Some("device") => Dimension::Device,
        Some("browser") => Dimension::Browser,
        Some(other) => {
            return Err(AdminError::BadRequest(format!(
                "dimension {other:?}: use country, device or browser"
            )))
        }
        None => {
            return Err(AdminError::BadRequest(
                "dimension is required: use country, device or browser".into(),
            ))
        }
    };
    let mut options = analysis::Options {
        correction: Correction::BenjaminiHochberg,
        phase: query.phase,
        ..analysis::Options::default()
    };
    if let Some(alpha) = query.alpha {
        options.alpha = alpha;
    }
    if let Some(correction) = query.correction.as_deref() {
        options.correction =
            analysis::parse_correction(correction).map_err(AdminError::BadRequest)?;
    }
    ok(analysis::slices::slices(&s.ctx, id, dimension, options).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldoutQuery {
    /// Metric keys, comma-separated; every defined metric unless given.
    metrics: Option<String>,
    alpha: Option<f64>,
    correction: Option<String>,
    cuped_days: Option<i32>,
}

async fn holdout(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HoldoutQuery>,
) -> Answer {
    let id = parse_id(&id, "environment")?;
    let mut options = analysis::Options::default();
    if let Some(alpha) = query.alpha {
        options.alpha = alpha;
    }
    if let Some(correction) = query.correction.as_deref() {
        options.correction =
            analysis::parse_correction(correction).map_err(AdminError::BadRequest)?;
    }
    if let Some(days) = query.cuped_days {
        options.cuped_days = days;
    }
    let metrics: Vec<String> = query
        .metrics
        .iter()
        .flat_map(|m| m.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    ok(analysis::holdout::report(&s.ctx, id, &metrics, options).await?)
}

async fn list_phases(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(service::list_phases(&s.ctx, parse_id(&id, "experiment")?).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewPhase {
    salt: Option<String>,
}

/// Runs a STOPPED experiment again as a new phase (it becomes a DRAFT under a new salt).
async fn new_phase(
    State(s): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<NewPhase>,
) -> Answer {
    let id = parse_id(&id, "experiment")?;
    created(service::new_phase(&s.ctx, &actor, id, req.salt).await?)
}

async fn check_guardrails(State(s): State<AppState>) -> Answer {
    ok(guardrails::check(&s.ctx).await?)
}
