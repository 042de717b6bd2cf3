//! Results: per-variant estimates, differences to control with intervals and p-values, the
//! sample-ratio check, multiple-comparison correction, the always-valid sequential test and
//! guardrail status. The arithmetic is `cleave_core::stats`; this module gathers the sums.

mod arms;
mod cuped;
pub mod guardrails;
pub mod holdout;
pub mod ingest;
pub mod metrics;
mod plan;
mod report;
pub mod slices;
pub mod timeline;

pub use plan::{sample_size, SampleSize};
pub use report::*;

use std::collections::BTreeMap;

use cleave_core::stats::{self, Bayesian, Comparison, Correction, Summary};
use serde::Deserialize;
use uuid::Uuid;

use crate::analytics_store::Cohort;
use crate::db::analysis::{self as store, ExperimentMetric};
use crate::error::{AdminError, Result};
use crate::model::{Decision, Direction, Experiment, MetricKind, MetricRole, Verdict};
use crate::service::{self, Ctx};

/// Guardrails act only once every variant has this many units: the variance estimates the
/// sequential test leans on are poor below it.
pub const GUARDRAIL_MIN_UNITS: u64 = 100;

/// How results are computed.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Significance level, `0 < alpha < 0.5`; 0.05 unless given.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub correction: Correction,
    /// The phase to analyse (1 is the first run); the current one unless given.
    #[serde(default)]
    pub phase: Option<i32>,
    /// The smallest relative change of the first primary metric worth detecting, for the
    /// sample size plan; 0.05 unless given.
    #[serde(default = "default_mde")]
    pub mde: f64,
    /// The power the plan asks for; 0.8 unless given.
    #[serde(default = "default_power")]
    pub power: f64,
    /// CUPED's pre-exposure window in days (0 turns it off); 14 unless given.
    #[serde(default = "default_cuped_days")]
    pub cuped_days: i32,
}

fn default_cuped_days() -> i32 {
    14
}

fn default_mde() -> f64 {
    0.05
}

fn default_power() -> f64 {
    0.8
}

/// `holm` or `bh` (Benjamini-Hochberg).
///
/// # Errors
/// Any other name, with the accepted ones.
pub fn parse_correction(text: &str) -> std::result::Result<Correction, String> {
    match text {
        "holm" => Ok(Correction::Holm),
        "bh" | "benjamini_hochberg" => Ok(Correction::BenjaminiHochberg),
        _ => Err(format!("correction {text:?}: use holm or bh")),
    }
}

fn default_alpha() -> f64 {
    0.05
}

impl Default for Options {
    fn default() -> Self {
        Self {
            alpha: default_alpha(),
            correction: Correction::Holm,
            mde: default_mde(),
            power: default_power(),
            cuped_days: default_cuped_days(),
            phase: None,
        }
    }
}

/// Results of experiment `id`.
///
/// # Errors
/// 404 for an unknown experiment, 400 for options out of range.
pub async fn results(ctx: &Ctx, id: Uuid, options: Options) -> Result<Results> {
    check(&options)?;
    let experiment = analysed(ctx, id, options.phase).await?;
    let metrics = store::experiment_metrics(&ctx.pool, id).await?;
    compute(ctx, &experiment, &metrics, options).await
}

/// Refuses options out of range, naming the one.
fn check(options: &Options) -> Result<()> {
    if !(options.alpha > 0.0 && options.alpha < 0.5) {
        return Err(AdminError::BadRequest(format!(
            "alpha {} is out of range: use a value between 0 and 0.5, e.g. 0.05",
            options.alpha
        )));
    }
    if !(options.mde > 0.0 && options.mde.is_finite()) {
        return Err(AdminError::BadRequest(format!(
            "mde {} is out of range: use a relative change above 0, e.g. 0.05 for 5%",
            options.mde
        )));
    }
    if !(0..=90).contains(&options.cuped_days) {
        return Err(AdminError::BadRequest(format!(
            "cuped_days {} is out of range: use 0 (off) to 90",
            options.cuped_days
        )));
    }
    if !(options.power > options.alpha && options.power < 1.0) {
        return Err(AdminError::BadRequest(format!(
            "power {} is out of range: use a value between alpha and 1, e.g. 0.8",
            options.power
        )));
    }
    Ok(())
}

/// Experiment `id` with the salt of the phase analysed (the current one unless `phase`).
async fn analysed(ctx: &Ctx, id: Uuid, phase: Option<i32>) -> Result<Experiment> {
    let mut experiment = service::experiment(ctx, id).await?;
    if let Some(number) = phase {
        // An earlier phase: its exposures are those drawn with its salt.
        experiment.salt = service::phase_salt(ctx, id, number).await?;
    }
    Ok(experiment)
}

/// Variants with an allocation, in definition order.
fn arms<'a>(experiment: &'a Experiment, buckets: &BTreeMap<&str, i64>) -> Vec<&'a str> {
    experiment
        .variants
        .iter()
        .map(|v| v.key.as_str())
        .filter(|k| buckets.contains_key(k))
        .collect()
}

/// The control variant: the one keyed `control`, else the first.
fn control_of(experiment: &Experiment) -> Option<&str> {
    let keys = experiment.variants.iter().map(|v| v.key.as_str());
    let at = cleave_core::snapshot::control_position(keys)?;
    experiment.variants.get(at).map(|v| v.key.as_str())
}

/// Buckets allocated to each variant, by key.
fn allocated_buckets(experiment: &Experiment) -> BTreeMap<&str, i64> {
    let mut out: BTreeMap<&str, i64> = BTreeMap::new();
    for a in &experiment.allocations {
        if let Some(v) = experiment.variants.iter().find(|v| v.id == a.variant_id) {
            *out.entry(v.key.as_str()).or_default() += a.range_end - a.range_start + 1;
        }
    }
    out
}

async fn compute(
    ctx: &Ctx,
    experiment: &Experiment,
    metrics: &[ExperimentMetric],
    options: Options,
) -> Result<Results> {
    let cohort = Cohort::phase(experiment.environment_id, &experiment.key, &experiment.salt);
    let control = control_of(experiment).unwrap_or("control").to_owned();
    let buckets = allocated_buckets(experiment);
    let arms = arms(experiment, &buckets);
    let weighted: Vec<(&str, i64)> = arms
        .iter()
        .map(|arm| (*arm, buckets.get(arm).copied().unwrap_or(0)))
        .collect();
    let enrolment = enrolment(ctx, &cohort, &weighted).await?;
    let phase = arms::Phase {
        cohort,
        arms: &arms,
        control: &control,
    };
    let mut results = metric_results(ctx, &phase, metrics, options, options.cuped_days).await?;
    let decision = store::decision(&ctx.pool, experiment.id)
        .await?
        .unwrap_or(Decision::Sequential);
    correct(&mut results, options, decision);
    let guardrail_breaches = breaches(&results, options.alpha);
    let days = ctx.analytics.days_enrolling(&cohort).await?;
    let plan = plan::plan_for(
        &results,
        &control,
        options,
        arms.len(),
        enrolment.total_units,
        days,
    );
    Ok(Results {
        experiment_id: experiment.id,
        experiment: experiment.key.clone(),
        status: experiment.status,
        salt: experiment.salt.clone(),
        control,
        alpha: options.alpha,
        correction: options.correction,
        decision,
        variants: enrolment.variants,
        excluded_units: enrolment.excluded_units,
        excluded_share: enrolment.excluded_share,
        srm: enrolment.srm,
        metrics: results,
        guardrail_breaches,
        plan,
    })
}

/// Who a cohort's arms hold, against what their allocation expects.
pub(crate) struct Enrolment {
    pub variants: Vec<VariantResult>,
    pub total_units: i64,
    pub excluded_units: BTreeMap<String, i64>,
    pub excluded_share: f64,
    pub srm: Option<stats::SampleRatio>,
}

/// Each arm's units (with how they were learned and who was left out) and the sample ratio
/// check against `arms`' allocated weights.
async fn enrolment(ctx: &Ctx, cohort: &Cohort<'_>, arms: &[(&str, i64)]) -> Result<Enrolment> {
    let counts = ctx.analytics.variant_counts(cohort).await?;
    let allocated: i64 = arms.iter().map(|(_, w)| w).sum();
    let total_units: i64 = counts.iter().map(|c| c.units).sum();
    let breakdown = ctx.analytics.variant_breakdown(cohort).await?;
    let of_arm = |kind: &str, arm: &str| -> BTreeMap<String, i64> {
        breakdown
            .iter()
            .filter(|(variant, k, _, _)| variant == arm && k == kind)
            .map(|(_, _, what, n)| (what.clone(), *n))
            .collect()
    };
    let variants: Vec<VariantResult> = arms
        .iter()
        .map(|(arm, weight)| {
            let count = counts.iter().find(|c| c.variant == *arm);
            let units = count.map_or(0, |c| c.units);
            VariantResult {
                key: (*arm).to_owned(),
                units,
                exposures: count.map_or(0, |c| c.exposures),
                expected_share: share(*weight, allocated),
                observed_share: share(units, total_units),
                units_by_source: of_arm("source", arm),
                excluded_units: of_arm("excluded", arm),
            }
        })
        .collect();
    let observed: Vec<u64> = variants.iter().map(|v| to_u64(v.units)).collect();
    let weights: Vec<f64> = arms.iter().map(|(_, w)| to_f64(*w)).collect();
    let srm = stats::sample_ratio(&observed, &weights);
    let excluded_units: BTreeMap<String, i64> = ctx
        .analytics
        .left_out(cohort)
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    let left_out: i64 = breakdown
        .iter()
        .filter(|(_, kind, _, _)| kind == "excluded")
        .map(|(_, _, _, n)| n)
        .sum();
    Ok(Enrolment {
        variants,
        total_units,
        excluded_units,
        excluded_share: share(left_out, total_units + left_out),
        srm,
    })
}

/// Each metric's arms and comparisons against control, uncorrected ([`correct`] follows),
/// with CUPED over `cuped_days` (0: none).
async fn metric_results(
    ctx: &Ctx,
    phase: &arms::Phase<'_>,
    metrics: &[ExperimentMetric],
    options: Options,
    cuped_days: i32,
) -> Result<Vec<MetricResult>> {
    let control = phase.control;
    let mut results = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let m = &metric.metric;
        let (per_variant, cuped) =
            arms::metric_arms(ctx, phase, m, cuped_days, options.alpha).await?;
        let base = per_variant.iter().find(|v| v.variant == control);
        let comparisons = per_variant
            .iter()
            .filter(|v| v.variant != control)
            .filter_map(|v| {
                let test = compare(base?, v, m.kind, options.alpha)?;
                Some(VariantComparison {
                    variant: v.variant.clone(),
                    test,
                    adjusted_p_value: test.p_value,
                    adjusted_sequential_p_value: test.sequential_p_value,
                    significant: false,
                    sequential_significant: false,
                    verdict: Verdict::Inconclusive,
                    bayesian: reading(base?, v, m.kind == MetricKind::Conversion, options.alpha),
                })
            })
            .collect();
        results.push(MetricResult {
            key: m.key.clone(),
            role: metric.role,
            kind: m.kind,
            direction: m.direction,
            variants: per_variant,
            comparisons,
            cuped,
        });
    }
    Ok(results)
}

/// Each arm's mean and per-unit variance of a metric (a rate and `p (1 - p)` for conversions).
fn moments(v: &MetricVariant, conversion: bool) -> (f64, f64) {
    if conversion {
        let rate = if v.units > 0 {
            to_f64(v.conversions) / to_f64(v.units)
        } else {
            0.0
        };
        (rate, rate * (1.0 - rate))
    } else {
        (v.mean, v.variance)
    }
}

/// The Bayesian reading of `treatment` against `base`.
fn reading(
    base: &MetricVariant,
    treatment: &MetricVariant,
    conversion: bool,
    alpha: f64,
) -> Option<Bayesian> {
    if base.units < 2 || treatment.units < 2 {
        return None;
    }
    let (mc, vc) = moments(base, conversion);
    let (mt, vt) = moments(treatment, conversion);
    stats::bayesian(
        mc,
        vc / to_f64(base.units),
        mt,
        vt / to_f64(treatment.units),
        alpha,
    )
}

/// Treatment against control by the metric's kind: the two-proportion z-test, Welch's t-test,
/// or for a ratio the z-test on its delta-method variances.
fn compare(
    base: &MetricVariant,
    treatment: &MetricVariant,
    kind: MetricKind,
    alpha: f64,
) -> Option<Comparison> {
    let summary = |v: &MetricVariant| Summary {
        units: to_u64(v.units),
        mean: v.mean,
        variance: v.variance,
    };
    match kind {
        MetricKind::Conversion => stats::two_proportions(
            to_u64(base.conversions),
            to_u64(base.units),
            to_u64(treatment.conversions),
            to_u64(treatment.units),
            alpha,
        ),
        MetricKind::Continuous => stats::welch(&summary(base), &summary(treatment), alpha),
        MetricKind::Ratio => {
            stats::linearised_comparison(&summary(base), &summary(treatment), alpha)
        }
    }
}

/// Adjusts the p-values of primary and secondary comparisons as one family and sets the
/// verdicts; guardrails are judged on their own sequential p-values.
fn correct(metrics: &mut [MetricResult], options: Options, decision: Decision) {
    correct_family(metrics, options, decision, |m| {
        m.role != MetricRole::Guardrail
    });
}

/// Adjusts the comparisons of the metrics `in_family` as one family and sets every verdict;
/// the others keep their own p-values.
fn correct_family(
    metrics: &mut [MetricResult],
    options: Options,
    decision: Decision,
    in_family: impl Fn(&MetricResult) -> bool,
) {
    let fixed: Vec<f64> = family(metrics, &in_family, |c| c.test.p_value);
    let sequential: Vec<f64> = family(metrics, &in_family, |c| c.test.sequential_p_value);
    let fixed = stats::adjust(&fixed, options.correction);
    let sequential = stats::adjust(&sequential, options.correction);
    let mut adjusted = fixed.into_iter().zip(sequential);
    for metric in metrics.iter_mut() {
        let grouped = in_family(metric);
        let good_when_up = metric.direction == Direction::Increase;
        for c in &mut metric.comparisons {
            if grouped {
                if let Some((p, sp)) = adjusted.next() {
                    c.adjusted_p_value = p;
                    c.adjusted_sequential_p_value = sp;
                }
            }
            c.significant = c.adjusted_p_value <= options.alpha;
            c.sequential_significant = c.adjusted_sequential_p_value <= options.alpha;
            c.verdict = if grouped && decision == Decision::Bayesian {
                bayesian_verdict(c.bayesian.as_ref(), good_when_up, options.alpha)
            } else {
                match (
                    c.sequential_significant,
                    (c.test.difference > 0.0) == good_when_up,
                ) {
                    (false, _) => Verdict::Inconclusive,
                    (true, true) => Verdict::Better,
                    (true, false) => Verdict::Worse,
                }
            };
        }
    }
}

/// Better when the chance of an improvement (the lift in the metric's good direction) is at
/// least `1 - alpha`, worse when it is at most `alpha`.
fn bayesian_verdict(reading: Option<&Bayesian>, good_when_up: bool, alpha: f64) -> Verdict {
    let Some(b) = reading else {
        return Verdict::Inconclusive;
    };
    let improves = if good_when_up {
        b.chance_to_beat_control
    } else {
        1.0 - b.chance_to_beat_control
    };
    if improves >= 1.0 - alpha {
        Verdict::Better
    } else if improves <= alpha {
        Verdict::Worse
    } else {
        Verdict::Inconclusive
    }
}

fn family(
    metrics: &[MetricResult],
    keep: impl Fn(&MetricResult) -> bool,
    p: impl Fn(&VariantComparison) -> f64,
) -> Vec<f64> {
    metrics
        .iter()
        .filter(|m| keep(m))
        .flat_map(|m| m.comparisons.iter().map(&p))
        .collect()
}

/// Guardrail comparisons whose sequential test says the variant is worse, once every
/// variant has enough units.
fn breaches(metrics: &[MetricResult], alpha: f64) -> Vec<Breach> {
    metrics
        .iter()
        .filter(|m| m.role == MetricRole::Guardrail)
        .filter(|m| {
            m.variants
                .iter()
                .all(|v| to_u64(v.units) >= GUARDRAIL_MIN_UNITS)
        })
        .flat_map(|m| {
            m.comparisons
                .iter()
                .filter(|c| c.verdict == Verdict::Worse && c.test.sequential_p_value <= alpha)
                .map(|c| Breach {
                    metric: m.key.clone(),
                    variant: c.variant.clone(),
                    difference: c.test.difference,
                    sequential_p_value: c.test.sequential_p_value,
                })
        })
        .collect()
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[allow(clippy::cast_precision_loss)]
fn to_f64(n: i64) -> f64 {
    n as f64
}

fn share(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        to_f64(part) / to_f64(whole)
    } else {
        0.0
    }
}
