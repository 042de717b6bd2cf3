//! Metric definitions, the metrics each experiment is judged on, and which reading decides
//! its verdicts.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::analysis::{self as store, ExperimentMetric, Metric};
use crate::db::audit::{self, Change};
use crate::error::{AdminError, Result};
use crate::model::{Decision, Direction, MetricKind, MetricRole};
use crate::service::{self, Ctx};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMetric {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `conversion` or `continuous`.
    pub kind: String,
    /// `increase` or `decrease`.
    pub direction: String,
    /// A ratio metric's numerator and denominator: event keys whose values are summed per unit.
    #[serde(default)]
    pub numerator: Option<String>,
    #[serde(default)]
    pub denominator: Option<String>,
}

fn invalid(path: &str, message: String) -> AdminError {
    let mut problems = cleave_core::Problems::default();
    problems.push(path, message);
    AdminError::Invalid(problems)
}

/// Defines a metric.
///
/// # Errors
/// 422 naming the field, 409 when the key is taken.
pub async fn create(ctx: &Ctx, actor: &str, req: NewMetric) -> Result<Metric> {
    if !cleave_core::keys::is_valid_key(&req.key) {
        return Err(invalid(
            "key",
            format!(
                "{:?} is not a key (lowercase letter, then up to 63 of a-z 0-9 _ . -)",
                req.key
            ),
        ));
    }
    let Some(kind) = MetricKind::parse(&req.kind) else {
        return Err(invalid("kind", MetricKind::refusal(&req.kind)));
    };
    let Some(direction) = Direction::parse(&req.direction) else {
        return Err(invalid("direction", Direction::refusal(&req.direction)));
    };
    let parts = ratio_parts(kind, req.numerator.as_deref(), req.denominator.as_deref())?;
    let mut tx = ctx.pool.begin().await?;
    let metric = store::insert_metric(
        &mut *tx,
        &store::NewMetricRow {
            key: &req.key,
            name: &req.name,
            description: &req.description,
            kind,
            direction,
            parts,
        },
    )
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            AdminError::Conflict(format!("metric {:?} already exists", req.key))
        }
        _ => AdminError::Database(e),
    })?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "metric.create",
            entity: "metric",
            entity_id: metric.id.to_string(),
            before: None,
            after: Some(serde_json::to_value(&metric).unwrap_or_default()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(metric)
}

/// A ratio's numerator and denominator, both event keys; refused on other kinds.
fn ratio_parts<'a>(
    kind: MetricKind,
    numerator: Option<&'a str>,
    denominator: Option<&'a str>,
) -> Result<Option<(&'a str, &'a str)>> {
    let mut problems = cleave_core::Problems::default();
    for (path, part) in [("numerator", numerator), ("denominator", denominator)] {
        match (kind, part) {
            (MetricKind::Ratio, None) => problems.push(
                path,
                format!("a ratio metric needs a {path}: the event key whose values are summed"),
            ),
            (MetricKind::Ratio, Some(key)) if !cleave_core::keys::is_valid_key(key) => {
                problems.push(
                    path,
                    format!("{key:?} is not an event key (lowercase letter, then up to 63 of a-z 0-9 _ . -)"),
                );
            }
            (MetricKind::Ratio, Some(_)) | (_, None) => {}
            (_, Some(_)) => problems.push(path, format!("only a ratio metric has a {path}")),
        }
    }
    if !problems.is_empty() {
        return Err(AdminError::Invalid(problems));
    }
    Ok(numerator.zip(denominator))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricUse {
    /// Metric key.
    pub metric: String,
    /// `primary`, `secondary` or `guardrail`.
    pub role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentMetrics {
    pub metrics: Vec<MetricUse>,
}

/// Replaces the metrics experiment `id` is judged on.
///
/// # Errors
/// 422 for an unknown metric, a bad role or a metric listed twice.
pub async fn set_for_experiment(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    req: ExperimentMetrics,
) -> Result<Vec<ExperimentMetric>> {
    let experiment = service::experiment(ctx, id).await?;
    let keys: Vec<String> = req.metrics.iter().map(|m| m.metric.clone()).collect();
    let known = store::metrics_by_key(&ctx.pool, &keys).await?;
    let mut problems = cleave_core::Problems::default();
    let mut pairs = Vec::with_capacity(req.metrics.len());
    for (i, m) in req.metrics.iter().enumerate() {
        let role = MetricRole::parse(&m.role);
        if role.is_none() {
            problems.push(format!("metrics[{i}].role"), MetricRole::refusal(&m.role));
        }
        if keys.iter().take(i).any(|k| *k == m.metric) {
            problems.push(format!("metrics[{i}].metric"), "listed twice".to_owned());
        }
        match known.iter().find(|k| k.key == m.metric) {
            Some(metric) => pairs.extend(role.map(|role| (metric.id, role))),
            None => problems.push(
                format!("metrics[{i}].metric"),
                format!(
                    "no metric {:?}; define it first (POST /metric-definitions)",
                    m.metric
                ),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(AdminError::Invalid(problems));
    }
    let before = store::experiment_metrics(&ctx.pool, id).await?;
    let mut tx = ctx.pool.begin().await?;
    store::replace_experiment_metrics(&mut tx, id, &pairs).await?;
    let after = store::experiment_metrics(&mut *tx, id).await?;
    let summary = |list: &[ExperimentMetric]| {
        serde_json::json!(list
            .iter()
            .map(|m| serde_json::json!({"metric": m.metric.key, "role": m.role}))
            .collect::<Vec<_>>())
    };
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "experiment.metrics",
            entity: "experiment",
            entity_id: experiment.id.to_string(),
            before: Some(summary(&before)),
            after: Some(summary(&after)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `sequential` or `bayesian`.
    pub decision: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct DecisionSetting {
    pub decision: Decision,
}

/// Which reading decides experiment `id`'s verdicts.
///
/// # Errors
/// 404 for an unknown experiment.
pub async fn decision(ctx: &Ctx, id: Uuid) -> Result<DecisionSetting> {
    let decision = store::decision(&ctx.pool, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no experiment {id}")))?;
    Ok(DecisionSetting { decision })
}

/// Sets which reading decides experiment `id`'s verdicts; publishes nothing.
///
/// # Errors
/// 404 for an unknown experiment, 422 for a word other than `sequential` or `bayesian`.
pub async fn set_decision(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    req: DecisionRequest,
) -> Result<DecisionSetting> {
    let Some(decision) = Decision::parse(&req.decision) else {
        return Err(invalid("decision", Decision::refusal(&req.decision)));
    };
    let before = self::decision(ctx, id).await?;
    let mut tx = ctx.pool.begin().await?;
    store::set_decision(&mut *tx, id, decision).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "experiment.decision",
            entity: "experiment",
            entity_id: id.to_string(),
            before: Some(serde_json::json!(before)),
            after: Some(serde_json::json!({ "decision": decision })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(DecisionSetting { decision })
}
