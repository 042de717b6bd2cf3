//! Sample ratio mismatch: are units split as the allocation says?
//!
//! Results are looked at every day, so a fixed-horizon test checked continuously raises false
//! alarms far more often than its level. The flag rests on a sequential test instead (Lindon &
//! Malek 2022, "Anytime-valid inference for multinomial count data"): the Bayes factor of a
//! Dirichlet-multinomial alternative centred on the allocation against the allocation itself.
//! Under the allocation it is a non-negative martingale, so `min(1, 1/BF)` is a p-value that
//! stays valid at every look (Ville's inequality). Pearson's chi-square is kept beside it for
//! a reader who checks once.

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};
use statrs::function::gamma::ln_gamma;

use super::{float, positive};

/// A mismatch is flagged when the sequential p-value falls below this: a split that far off is
/// a bug in assignment or logging, not chance, and a false alarm sends people hunting one.
pub const SRM_ALPHA: f64 = 0.001;

/// Concentration of the Dirichlet prior on the variants' shares, centred on the allocation:
/// a 50/50 share then has a prior standard deviation of about 1.6 points, the size of the
/// mismatches that logging bugs produce, which keeps the test sensitive to them.
pub const SRM_PRIOR_CONCENTRATION: f64 = 1000.0;

/// Units against the allocation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleRatio {
    /// Pearson's chi-square and its p-value: valid for a single, planned look.
    pub chi_square: f64,
    pub p_value: f64,
    /// Always-valid p-value of the sequential test.
    pub sequential_p_value: f64,
    /// `sequential_p_value < SRM_ALPHA`.
    pub mismatch: bool,
}

/// Sample ratio mismatch test: `observed[i]` units where `weights[i]` (any positive scale,
/// e.g. allocated buckets) says how many were expected.
pub fn sample_ratio(observed: &[u64], weights: &[f64]) -> Option<SampleRatio> {
    if observed.len() != weights.len() || observed.len() < 2 {
        return None;
    }
    let total: u64 = observed.iter().sum();
    let weight: f64 = weights.iter().sum();
    if total == 0 || !positive(weight) || !weights.iter().all(|w| positive(*w)) {
        return None;
    }
    let shares: Vec<f64> = weights.iter().map(|w| w / weight).collect();
    let chi_square: f64 = observed
        .iter()
        .zip(&shares)
        .map(|(o, share)| {
            let expected = float(total) * share;
            (float(*o) - expected).powi(2) / expected
        })
        .sum();
    let dist = ChiSquared::new(float(observed.len() as u64 - 1)).ok()?;
    let p_value = dist.sf(chi_square).clamp(0.0, 1.0);
    let sequential_p_value = (-log_bayes_factor(observed, &shares)).exp().clamp(0.0, 1.0);
    Some(SampleRatio {
        chi_square,
        p_value,
        sequential_p_value,
        mismatch: sequential_p_value < SRM_ALPHA,
    })
}

/// `ln` of the Dirichlet-multinomial marginal likelihood of `observed` (prior `k · shares`)
/// over the multinomial likelihood at `shares`; the multinomial coefficients cancel.
fn log_bayes_factor(observed: &[u64], shares: &[f64]) -> f64 {
    let k = SRM_PRIOR_CONCENTRATION;
    let n = float(observed.iter().sum());
    let alternative = ln_gamma(k) - ln_gamma(k + n)
        + observed
            .iter()
            .zip(shares)
            .map(|(x, p)| ln_gamma(k * p + float(*x)) - ln_gamma(k * p))
            .sum::<f64>();
    let null: f64 = observed
        .iter()
        .zip(shares)
        .map(|(x, p)| float(*x) * p.ln())
        .sum();
    alternative - null
}
