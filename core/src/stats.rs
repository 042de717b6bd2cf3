//! Experiment statistics: the tests behind `cleave-admin results`.
//!
//! Everything works from per-variant summaries (units, mean, sample variance), derived from
//! the additive sums an analytics store computes in one pass ([`MetricSums`], [`RatioSums`]),
//! so results cost the same at ten thousand units as at ten million.
//! - continuous metrics: Welch's t-test and its confidence interval;
//! - conversion metrics: the pooled two-proportion z-test, with the unpooled (Wald) interval;
//! - sample ratio mismatch: a sequential Dirichlet-multinomial test against the allocation,
//!   valid however often it is checked, beside Pearson's chi-square ([`sample_ratio`]);
//! - multiple comparisons: Holm (family-wise) or Benjamini-Hochberg (false discovery rate);
//! - peeking: the mixture sequential probability ratio test (mSPRT, Johari et al. 2017), whose
//!   p-value stays valid however often it is looked at;
//! - ratio metrics (a numerator and a denominator per unit) by the delta method
//!   ([`ratio_comparison`]), also under CUPED ([`ratio_covariates`]);
//! - variance reduction with pre-exposure data (CUPED, [`cuped`]);
//! - a Bayesian reading of each comparison ([`bayesian`]);
//! - power and duration: units needed for a minimum detectable effect ([`power`]).
//!
//! Functions answer `None` where a statistic is undefined (too few units, zero variance), so
//! a caller shows "not enough data" instead of a NaN.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

mod bayesian;
mod cuped;
pub mod power;
mod ratio;
mod srm;
mod sums;

pub use bayesian::{bayesian, Bayesian};
pub use cuped::{cuped, Adjustment, CovariateSummary};
pub use ratio::{
    linearised_comparison, ratio_comparison, ratio_covariates, ratio_summary,
    RatioCovariateMoments, RatioMoments,
};
pub use srm::{sample_ratio, SampleRatio, SRM_ALPHA, SRM_PRIOR_CONCENTRATION};
pub use sums::{MetricSums, RatioSums};

/// Scale of the mSPRT mixing distribution, as a share of the metric's standard deviation:
/// the prior puts most weight on effects up to about a tenth of a standard deviation, the
/// range product experiments usually move, which keeps power for small effects.
pub const MIXTURE_SD_SHARE: f64 = 0.1;

/// One variant's summary of one metric: units, mean and sample variance (divisor `n - 1`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub units: u64,
    pub mean: f64,
    pub variance: f64,
}

/// Treatment against control (camelCase, as the admin API shows it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Treatment mean minus control mean.
    pub difference: f64,
    /// `difference / control mean`, when the control mean is not zero.
    pub relative: Option<f64>,
    /// Two-sided confidence interval of `difference` at `1 - alpha`.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Two-sided fixed-horizon p-value.
    pub p_value: f64,
    /// Always-valid p-value of the mSPRT.
    pub sequential_p_value: f64,
    /// The mSPRT's always-valid confidence sequence for `difference` at `1 - alpha`: it covers
    /// the true difference at every look at once, so it can be read daily (the interval above
    /// only holds for one look). It excludes 0 exactly when `sequential_p_value < alpha`.
    pub sequential_ci_low: f64,
    pub sequential_ci_high: f64,
}

#[allow(clippy::cast_precision_loss)]
fn float(n: u64) -> f64 {
    n as f64
}

/// Welch's unequal-variance t-test of `treatment - control`.
pub fn welch(control: &Summary, treatment: &Summary, alpha: f64) -> Option<Comparison> {
    if control.units < 2 || treatment.units < 2 {
        return None;
    }
    let (nc, nt) = (float(control.units), float(treatment.units));
    let (vc, vt) = (control.variance / nc, treatment.variance / nt);
    let v = vc + vt;
    if !positive(v) {
        return None;
    }
    let se = v.sqrt();
    let df = v * v / (vc * vc / (nc - 1.0) + vt * vt / (nt - 1.0));
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let difference = treatment.mean - control.mean;
    let p_value = 2.0 * t.sf((difference / se).abs());
    let margin = t.inverse_cdf(1.0 - alpha / 2.0) * se;
    let tau2 = mixture_variance(control.variance);
    Some(assemble(
        difference,
        control.mean,
        margin,
        p_value,
        v,
        tau2,
        alpha,
    ))
}

/// Pooled two-proportion z-test of `treatment - control` conversion rates, with the unpooled
/// interval (the pair statsmodels' `proportions_ztest` and Wald `confint_proportions_2indep`
/// give).
pub fn two_proportions(
    control_conversions: u64,
    control_units: u64,
    treatment_conversions: u64,
    treatment_units: u64,
    alpha: f64,
) -> Option<Comparison> {
    if control_units == 0 || treatment_units == 0 {
        return None;
    }
    let (nc, nt) = (float(control_units), float(treatment_units));
    let (pc, pt) = (
        float(control_conversions) / nc,
        float(treatment_conversions) / nt,
    );
    let pooled = float(control_conversions + treatment_conversions) / (nc + nt);
    let pooled_se = (pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt)).sqrt();
    let v = pc * (1.0 - pc) / nc + pt * (1.0 - pt) / nt;
    if !positive(pooled_se) || !positive(v) {
        return None;
    }
    let normal = standard_normal()?;
    let difference = pt - pc;
    let p_value = 2.0 * normal.sf((difference / pooled_se).abs());
    let margin = normal.inverse_cdf(1.0 - alpha / 2.0) * v.sqrt();
    let tau2 = mixture_variance(pooled * (1.0 - pooled));
    Some(assemble(difference, pc, margin, p_value, v, tau2, alpha))
}

/// A comparison from its parts: the difference, the control's level (for the relative lift),
/// the fixed-horizon margin and p-value, the estimate's variance `v` and the mSPRT's `tau2`.
fn assemble(
    difference: f64,
    base: f64,
    margin: f64,
    p_value: f64,
    v: f64,
    tau2: f64,
    alpha: f64,
) -> Comparison {
    let sequential_margin = msprt_margin(v, tau2, alpha);
    Comparison {
        difference,
        relative: relative(difference, base),
        ci_low: difference - margin,
        ci_high: difference + margin,
        p_value: p_value.clamp(0.0, 1.0),
        sequential_p_value: msprt_p_value(difference, v, tau2),
        sequential_ci_low: difference - sequential_margin,
        sequential_ci_high: difference + sequential_margin,
    }
}

/// `x > 0`, false for NaN.
fn positive(x: f64) -> bool {
    x > 0.0
}

fn relative(difference: f64, base: f64) -> Option<f64> {
    (base != 0.0).then(|| difference / base)
}

fn standard_normal() -> Option<Normal> {
    Normal::new(0.0, 1.0).ok()
}

/// The mSPRT mixing variance for a metric whose per-unit variance is `unit_variance`.
fn mixture_variance(unit_variance: f64) -> f64 {
    MIXTURE_SD_SHARE * MIXTURE_SD_SHARE * unit_variance
}

/// Always-valid p-value of the normal-mixture SPRT for an observed `difference` whose
/// estimate has variance `v`, with mixing variance `tau2`:
/// `Λ = sqrt(v / (v + τ²)) · exp(τ² d² / (2 v (v + τ²)))`, `p = min(1, 1/Λ)`.
/// Rejecting whenever `p ≤ α`, at any look, keeps the false-positive rate at `α` (Ville's
/// inequality), so the experiment can be checked daily.
pub fn msprt_p_value(difference: f64, v: f64, tau2: f64) -> f64 {
    if !positive(v) || !positive(tau2) {
        return 1.0;
    }
    let log_lambda =
        0.5 * (v / (v + tau2)).ln() + tau2 * difference * difference / (2.0 * v * (v + tau2));
    (-log_lambda).exp().clamp(0.0, 1.0)
}

/// Half-width of the mSPRT's confidence sequence: the differences `δ` the test would not
/// reject at `alpha` (`Λ(d - δ) < 1/α`), i.e.
/// `|d - δ| < sqrt(v (v + τ²) / τ² · (2 ln(1/α) + ln((v + τ²) / v)))`.
/// Infinite when the variance is unknown, so nothing is excluded.
pub fn msprt_margin(v: f64, tau2: f64, alpha: f64) -> f64 {
    if !(positive(v) && positive(tau2) && alpha > 0.0 && alpha < 1.0) {
        return f64::INFINITY;
    }
    (v * (v + tau2) / tau2 * (2.0 * (1.0 / alpha).ln() + ((v + tau2) / v).ln())).sqrt()
}

/// Which family-wise correction to apply across variants and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm-Bonferroni: controls the family-wise error rate.
    #[default]
    Holm,
    /// Benjamini-Hochberg: controls the false discovery rate.
    BenjaminiHochberg,
}

/// Adjusted p-values, in the order given.
pub fn adjust(p_values: &[f64], correction: Correction) -> Vec<f64> {
    match correction {
        Correction::Holm => holm(p_values),
        Correction::BenjaminiHochberg => benjamini_hochberg(p_values),
    }
}

/// Indices of `p` sorted by p-value, ascending.
fn ascending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    order
}

/// Holm's step-down adjustment: `max over j ≤ i of (m - j) · p_(j)`, capped at 1.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut out = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in ascending(p).iter().enumerate() {
        running = running.max(float((m - rank) as u64) * p[i]);
        out[i] = running.min(1.0);
    }
    out
}

/// Benjamini-Hochberg step-up adjustment: `min over j ≥ i of m · p_(j) / j`, capped at 1.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut out = vec![1.0; m];
    let mut running: f64 = 1.0;
    for (rank, &i) in ascending(p).iter().enumerate().rev() {
        running = running.min(float(m as u64) * p[i] / float(rank as u64 + 1));
        out[i] = running.min(1.0);
    }
    out
}

#[cfg(test)]
mod tests;
