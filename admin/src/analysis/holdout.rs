//! The holdout report: everyone else against the units an environment's holdout keeps out of
//! every experiment — the combined effect of all that has shipped and runs. Both groups are
//! the units the edge recorded a holdout exposure for (`$holdout`, variants `held_out` and
//! `rest`), recorded by one rule whatever the group, so the comparison is like for like.

use cleave_core::bucket::BUCKETS;
use cleave_core::exposure::{HELD_OUT, HOLDOUT_EXPERIMENT, REST};
use cleave_core::stats::{Correction, SampleRatio};
use serde::Serialize;
use uuid::Uuid;

use super::{
    check, correct_family, enrolment, metric_results, MetricResult, Options, VariantResult,
};
use crate::analytics_store::Cohort;
use crate::db::analysis::{self as store, ExperimentMetric};
use crate::error::{AdminError, Result};
use crate::model::{Decision, MetricRole};
use crate::service::{self, Ctx};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldoutReport {
    pub environment_id: Uuid,
    pub environment: String,
    /// The holdout's salt: exposures under an earlier one are not counted.
    pub salt: String,
    pub unit_type: String,
    /// The share of units the holdout's ranges keep out.
    pub held_out_share: f64,
    /// `held_out`: every comparison reads as "the rest against the held out".
    pub control: String,
    pub alpha: f64,
    pub correction: Correction,
    pub variants: Vec<VariantResult>,
    pub excluded_share: f64,
    pub srm: Option<SampleRatio>,
    pub metrics: Vec<MetricResult>,
}

/// The holdout report of environment `id` on `metrics` (every defined metric when empty).
///
/// # Errors
/// 404 for an unknown environment or metric, 409 when the environment has no holdout, 400
/// for options out of range.
pub async fn report(
    ctx: &Ctx,
    id: Uuid,
    metrics: &[String],
    options: Options,
) -> Result<HoldoutReport> {
    check(&options)?;
    let environment = service::environment(ctx, id).await?;
    let Some(holdout) = environment.settings.holdout.clone() else {
        return Err(AdminError::Conflict(format!(
            "environment {} has no holdout: set one in its settings first",
            environment.name
        )));
    };
    let chosen = chosen_metrics(ctx, metrics).await?;
    let held = held_buckets(&holdout.ranges);
    let weighted = [(HELD_OUT, held), (REST, i64::from(BUCKETS) - held)];
    let cohort = Cohort::phase(id, HOLDOUT_EXPERIMENT, &holdout.salt);
    let enrolment = enrolment(ctx, &cohort, &weighted).await?;
    let phase = super::arms::Phase {
        cohort,
        arms: &[HELD_OUT, REST],
        control: HELD_OUT,
    };
    let mut results = metric_results(ctx, &phase, &chosen, options, options.cuped_days).await?;
    // The holdout is read continuously, so on the sequential test; the metrics are one family.
    correct_family(&mut results, options, Decision::Sequential, |_| true);
    Ok(HoldoutReport {
        environment_id: id,
        environment: environment.name,
        salt: holdout.salt,
        unit_type: holdout.unit,
        held_out_share: super::share(held, i64::from(BUCKETS)),
        control: HELD_OUT.to_owned(),
        alpha: options.alpha,
        correction: options.correction,
        variants: enrolment.variants,
        excluded_share: enrolment.excluded_share,
        srm: enrolment.srm,
        metrics: results,
    })
}

/// The named metrics in the order given, or every defined one; each read as primary.
async fn chosen_metrics(ctx: &Ctx, keys: &[String]) -> Result<Vec<ExperimentMetric>> {
    let defined = if keys.is_empty() {
        store::list_metrics(&ctx.pool).await?
    } else {
        let found = store::metrics_by_key(&ctx.pool, keys).await?;
        let mut ordered = Vec::with_capacity(keys.len());
        for key in keys {
            let metric = found
                .iter()
                .find(|m| &m.key == key)
                .ok_or_else(|| AdminError::NotFound(format!("metric {key:?} is not defined")))?;
            ordered.push(metric.clone());
        }
        ordered
    };
    Ok(defined
        .into_iter()
        .map(|metric| ExperimentMetric {
            metric,
            role: MetricRole::Primary,
        })
        .collect())
}

/// Buckets the holdout's (inclusive) ranges cover, each counted once.
fn held_buckets(ranges: &[[i64; 2]]) -> i64 {
    let covered = (0..i64::from(BUCKETS))
        .filter(|b| {
            ranges
                .iter()
                .any(|[start, end]| (*start..=*end).contains(b))
        })
        .count();
    i64::try_from(covered).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::held_buckets;

    #[test]
    fn overlapping_ranges_count_each_bucket_once() {
        assert_eq!(held_buckets(&[[0, 499]]), 500);
        assert_eq!(
            held_buckets(&[[0, 499], [400, 999], [9_999, 20_000]]),
            1_001
        );
        assert_eq!(held_buckets(&[]), 0);
    }
}
