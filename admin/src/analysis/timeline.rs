//! Results over time: one metric's cumulative effect against control at the end of each day,
//! with the fixed-horizon interval and the always-valid confidence sequence. The sequence is
//! the one to read day by day; the interval is what a single look at that day would give.

use cleave_core::stats::Comparison;
use serde::Serialize;
use uuid::Uuid;

use super::arms::{empty, plain_variant, ratio_variant};
use super::{allocated_buckets, analysed, arms, check, compare, control_of, MetricVariant};
use crate::analytics_store::Cohort;
use crate::db::analysis::{self as store, Metric};
use crate::error::{AdminError, Result};
use crate::model::{MetricKind, MetricRole};
use crate::service::Ctx;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub experiment_id: Uuid,
    pub salt: String,
    pub metric: String,
    pub control: String,
    pub alpha: f64,
    /// Every day (UTC) from the phase's first exposure to today, oldest first.
    pub days: Vec<Day>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Day {
    /// `YYYY-MM-DD`: the numbers as they stood at the end of that day.
    pub day: String,
    pub variants: Vec<MetricVariant>,
    /// Each variant against control, uncorrected for multiple comparisons.
    pub comparisons: Vec<DayComparison>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayComparison {
    pub variant: String,
    #[serde(flatten)]
    pub test: Comparison,
}

/// The daily cumulative results of `metric` (the first primary metric unless given); a ratio
/// is followed as the ratio of means with delta-method intervals, as on the results page.
///
/// # Errors
/// 404 for an unknown experiment or a metric the experiment is not judged on, 400 for options
/// out of range.
pub async fn timeline(
    ctx: &Ctx,
    id: Uuid,
    metric: Option<&str>,
    options: super::Options,
) -> Result<Timeline> {
    check(&options)?;
    let experiment = analysed(ctx, id, options.phase).await?;
    let metrics = store::experiment_metrics(&ctx.pool, id).await?;
    let chosen = match metric {
        Some(key) => metrics.iter().find(|m| m.metric.key == key),
        None => metrics
            .iter()
            .find(|m| m.role == MetricRole::Primary)
            .or(metrics.first()),
    }
    .ok_or_else(|| {
        AdminError::NotFound(match metric {
            Some(key) => format!(
                "experiment {} is not judged on metric {key}",
                experiment.key
            ),
            None => format!("experiment {} has no metrics", experiment.key),
        })
    })?;
    let control = control_of(&experiment).unwrap_or("control").to_owned();
    let buckets = allocated_buckets(&experiment);
    let arms = arms(&experiment, &buckets);
    let cohort = Cohort::phase(experiment.environment_id, &experiment.key, &experiment.salt);
    let mut days: Vec<Day> = Vec::new();
    for (day, variant) in daily_variants(ctx, &cohort, &chosen.metric).await? {
        if days.last().is_none_or(|d| d.day != day) {
            days.push(Day {
                day,
                variants: Vec::new(),
                comparisons: Vec::new(),
            });
        }
        if let Some(last) = days.last_mut() {
            last.variants.push(variant);
        }
    }
    for day in &mut days {
        // Variants in definition order, those without units yet as zeros.
        day.variants = arms
            .iter()
            .map(|arm| {
                day.variants
                    .iter()
                    .find(|v| v.variant == *arm)
                    .cloned()
                    .unwrap_or_else(|| empty(arm))
            })
            .collect();
        let base = day.variants.iter().find(|v| v.variant == control);
        day.comparisons = day
            .variants
            .iter()
            .filter(|v| v.variant != control)
            .filter_map(|v| {
                Some(DayComparison {
                    variant: v.variant.clone(),
                    test: compare(base?, v, chosen.metric.kind, options.alpha)?,
                })
            })
            .collect();
    }
    Ok(Timeline {
        experiment_id: experiment.id,
        salt: experiment.salt.clone(),
        metric: chosen.metric.key.clone(),
        control,
        alpha: options.alpha,
        days,
    })
}

/// Each day's summary per variant present that day, oldest day first, read by the metric's kind.
async fn daily_variants(
    ctx: &Ctx,
    cohort: &Cohort<'_>,
    metric: &Metric,
) -> Result<Vec<(String, MetricVariant)>> {
    if let (MetricKind::Ratio, Some(numerator), Some(denominator)) =
        (metric.kind, &metric.numerator, &metric.denominator)
    {
        let parts = (numerator.as_str(), denominator.as_str());
        let rows = ctx.analytics.daily_ratio_sums(cohort, parts).await?;
        return Ok(rows
            .into_iter()
            .map(|(day, arm, s)| (day, ratio_variant(&arm, &s.moments(), s.with_denominator)))
            .collect());
    }
    let conversion = metric.kind == MetricKind::Conversion;
    let rows = ctx
        .analytics
        .daily_metric_sums(cohort, &metric.key, conversion)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(day, arm, s)| (day, plain_variant(&arm, &s)))
        .collect())
}
