//! Guardrails: a running experiment whose variant is significantly worse on a guardrail
//! metric (by the sequential test, so checking every few minutes stays honest) is paused,
//! which publishes the last published snapshot with that experiment paused and nothing else:
//! edits waiting for a publisher stay waiting. The audit log names the metric and variant.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::{Breach, Options};
use crate::db::analysis as store;
use crate::error::Result;
use crate::model::Status;
use crate::service::{self, Ctx};

/// One experiment paused by a guardrail.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paused {
    pub experiment_id: Uuid,
    pub experiment: String,
    pub breaches: Vec<Breach>,
    /// The version published with the experiment paused.
    pub published_version: Option<i64>,
}

/// Checks every running experiment that has guardrail metrics; pauses those in breach.
///
/// # Errors
/// Database and publish failures; an experiment already paused meanwhile is skipped.
pub async fn check(ctx: &Ctx) -> Result<Vec<Paused>> {
    let mut paused = Vec::new();
    for experiment in service::list_experiments(ctx, None).await? {
        if experiment.status != Status::Running {
            continue;
        }
        let metrics = store::experiment_metrics(&ctx.pool, experiment.id).await?;
        if !metrics
            .iter()
            .any(|m| m.role == crate::model::MetricRole::Guardrail)
        {
            continue;
        }
        let results = super::compute(ctx, &experiment, &metrics, Options::default()).await?;
        if results.guardrail_breaches.is_empty() {
            continue;
        }
        let first = &results.guardrail_breaches[0];
        let actor = format!(
            "guardrail: {} worse in {} (sequential p = {:.2e})",
            first.metric, first.variant, first.sequential_p_value
        );
        match service::pause_alone(ctx, &actor, experiment.id).await {
            Ok((_, published)) => {
                tracing::warn!(experiment = %experiment.key, %actor, "guardrail paused an experiment");
                paused.push(Paused {
                    experiment_id: experiment.id,
                    experiment: experiment.key.clone(),
                    breaches: results.guardrail_breaches,
                    published_version: published.map(|p| p.version),
                });
            }
            Err(crate::error::AdminError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(paused)
}

/// Checks guardrails every `every` until the process ends; failures are logged and retried
/// at the next tick.
pub async fn watch(ctx: Ctx, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = check(&ctx).await {
            tracing::error!(error = %e, "guardrail check failed");
        }
    }
}
