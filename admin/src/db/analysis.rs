//! Metric definitions, the metrics each experiment is judged on, and which reading decides.

use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{Decision, Direction, MetricKind, MetricRole};

/// A metric definition.
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: String,
    pub kind: MetricKind,
    /// Which way is good.
    pub direction: Direction,
    /// A ratio metric's numerator and denominator event keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A metric as one experiment uses it.
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentMetric {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub metric: Metric,
    pub role: MetricRole,
}

const METRIC_COLUMNS: &str = "m.id, m.key::text as key, m.name, m.description, m.kind, \
     m.direction, m.numerator, m.denominator, m.created_at";

/// A metric definition to store.
pub struct NewMetricRow<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub kind: MetricKind,
    pub direction: Direction,
    /// A ratio's numerator and denominator event keys.
    pub parts: Option<(&'a str, &'a str)>,
}

pub async fn insert_metric(
    db: impl PgExecutor<'_>,
    m: &NewMetricRow<'_>,
) -> Result<Metric, sqlx::Error> {
    sqlx::query_as(&format!(
        "insert into metrics as m (key, name, description, kind, direction, numerator, denominator) \
         values ($1, $2, $3, $4, $5, $6, $7) returning {METRIC_COLUMNS}"
    ))
    .bind(m.key)
    .bind(m.name)
    .bind(m.description)
    .bind(m.kind.as_str())
    .bind(m.direction.as_str())
    .bind(m.parts.map(|p| p.0))
    .bind(m.parts.map(|p| p.1))
    .fetch_one(db)
    .await
}

pub async fn list_metrics(db: impl PgExecutor<'_>) -> Result<Vec<Metric>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {METRIC_COLUMNS} from metrics m order by m.key"
    ))
    .fetch_all(db)
    .await
}

pub async fn metrics_by_key(
    db: impl PgExecutor<'_>,
    keys: &[String],
) -> Result<Vec<Metric>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {METRIC_COLUMNS} from metrics m where m.key = any($1::text[])"
    ))
    .bind(keys)
    .fetch_all(db)
    .await
}

pub async fn experiment_metrics(
    db: impl PgExecutor<'_>,
    experiment: Uuid,
) -> Result<Vec<ExperimentMetric>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {METRIC_COLUMNS}, em.role from experiment_metrics em join metrics m on m.id = em.metric_id \
         where em.experiment_id = $1 \
         order by array_position(array['primary','secondary','guardrail'], em.role), m.key"
    ))
    .bind(experiment)
    .fetch_all(db)
    .await
}

/// Replaces the experiment's metrics with `(metric id, role)` pairs.
pub async fn replace_experiment_metrics(
    conn: &mut PgConnection,
    experiment: Uuid,
    metrics: &[(Uuid, MetricRole)],
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from experiment_metrics where experiment_id = $1")
        .bind(experiment)
        .execute(&mut *conn)
        .await?;
    let (ids, roles): (Vec<Uuid>, Vec<&str>) = metrics
        .iter()
        .map(|(id, role)| (*id, role.as_str()))
        .unzip();
    sqlx::query(
        "insert into experiment_metrics (experiment_id, metric_id, role) \
         select $1, id, role from unnest($2::uuid[], $3::text[]) as t(id, role)",
    )
    .bind(experiment)
    .bind(&ids)
    .bind(&roles)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Which reading decides experiment `id`'s verdicts (`None` for an unknown experiment).
pub async fn decision(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Decision>, sqlx::Error> {
    sqlx::query_scalar("select decision from experiments where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn set_decision(
    db: impl PgExecutor<'_>,
    id: Uuid,
    decision: Decision,
) -> Result<(), sqlx::Error> {
    sqlx::query("update experiments set decision = $2 where id = $1")
        .bind(id)
        .bind(decision.as_str())
        .execute(db)
        .await?;
    Ok(())
}
