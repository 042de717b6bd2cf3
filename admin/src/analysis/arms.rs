//! Each metric's per-variant summaries, read from the store by its kind, with the CUPED
//! adjustment when units have pre-exposure data.

use cleave_core::stats::{
    self, CovariateSummary, MetricSums, RatioCovariateMoments, RatioMoments, RatioSums,
};

use super::{cuped, Cuped, MetricVariant};
use crate::analytics_store::Cohort;
use crate::db::analysis::Metric;
use crate::error::Result;
use crate::model::MetricKind;
use crate::service::Ctx;

/// Where one experiment phase's numbers are read from.
pub(super) struct Phase<'a> {
    pub cohort: Cohort<'a>,
    /// Variants with an allocation, in definition order.
    pub arms: &'a [&'a str],
    pub control: &'a str,
}

/// `metric`'s summary per arm (zeros for an arm without units) and its CUPED adjustment over
/// `pre_days` (none when 0).
pub(super) async fn metric_arms(
    ctx: &Ctx,
    phase: &Phase<'_>,
    metric: &Metric,
    pre_days: i32,
    alpha: f64,
) -> Result<(Vec<MetricVariant>, Option<Cuped>)> {
    let cohort = &phase.cohort;
    let (variants, present) = match (&metric.numerator, &metric.denominator) {
        (Some(numerator), Some(denominator)) if metric.kind == MetricKind::Ratio => {
            let parts = (numerator.as_str(), denominator.as_str());
            let sums = ctx.analytics.ratio_sums(cohort, parts, pre_days).await?;
            ratio_arms(phase.arms, &sums)
        }
        _ => {
            let conversion = metric.kind == MetricKind::Conversion;
            let sums = ctx
                .analytics
                .metric_sums(cohort, &metric.key, conversion, pre_days)
                .await?;
            plain_arms(phase.arms, &sums)
        }
    };
    let is_ratio = metric.kind == MetricKind::Ratio;
    let cuped = (pre_days > 0)
        .then(|| cuped::adjust(&present?, phase.control, pre_days, alpha, is_ratio))
        .flatten();
    Ok((variants, cuped))
}

type Arms<'a> = (Vec<MetricVariant>, Option<Vec<(&'a str, CovariateSummary)>>);

pub(super) fn empty(arm: &str) -> MetricVariant {
    MetricVariant {
        variant: arm.to_owned(),
        units: 0,
        mean: 0.0,
        variance: 0.0,
        conversions: 0,
    }
}

fn plain_arms<'a>(arms: &[&'a str], sums: &[(String, MetricSums)]) -> Arms<'a> {
    let found = |arm: &str| sums.iter().find(|(v, _)| v == arm).map(|(_, s)| s);
    let variants = arms
        .iter()
        .map(|arm| found(arm).map_or_else(|| empty(arm), |s| plain_variant(arm, s)))
        .collect();
    let present = arms
        .iter()
        .filter_map(|arm| Some((*arm, found(arm)?.covariate_summary())))
        .collect();
    (variants, Some(present))
}

/// One arm of a plain metric read from its sums.
pub(super) fn plain_variant(arm: &str, sums: &MetricSums) -> MetricVariant {
    let summary = sums.summary();
    MetricVariant {
        variant: arm.to_owned(),
        units: i64::try_from(summary.units).unwrap_or(i64::MAX),
        mean: summary.mean,
        variance: summary.variance,
        conversions: i64::try_from(sums.conversions).unwrap_or(i64::MAX),
    }
}

/// A ratio's arms: the ratio of means and the per-unit variance of its linearisation, so the
/// comparisons, the Bayesian reading and the plan use the delta method.
fn ratio_arms<'a>(arms: &[&'a str], sums: &[(String, RatioSums)]) -> Arms<'a> {
    let found = |arm: &str| sums.iter().find(|(v, _)| v == arm).map(|(_, s)| s);
    let variants = arms
        .iter()
        .map(|arm| {
            found(arm).map_or_else(
                || empty(arm),
                |s| ratio_variant(arm, &s.moments(), s.with_denominator),
            )
        })
        .collect();
    let (present, moments): (Vec<&'a str>, Vec<RatioCovariateMoments>) = arms
        .iter()
        .filter_map(|arm| Some((*arm, found(arm)?.covariate_moments())))
        .unzip();
    let covariates = stats::ratio_covariates(&moments)
        .map(|summaries| present.into_iter().zip(summaries).collect());
    (variants, covariates)
}

/// One arm of a ratio read as the ratio of means with its linearised per-unit variance (zeros
/// below two units or without a denominator); `conversions` counts units with a denominator.
pub(super) fn ratio_variant(
    arm: &str,
    moments: &RatioMoments,
    with_denominator: u64,
) -> MetricVariant {
    let summary = stats::ratio_summary(moments);
    MetricVariant {
        variant: arm.to_owned(),
        units: i64::try_from(moments.units).unwrap_or(i64::MAX),
        mean: summary.map_or(0.0, |r| r.mean),
        variance: summary.map_or(0.0, |r| r.variance),
        conversions: i64::try_from(with_denominator).unwrap_or(i64::MAX),
    }
}
