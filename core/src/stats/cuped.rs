//! CUPED (Deng et al. 2013): each unit's value of the same metric before its first exposure
//! as a covariate. With the pooled within-variant slope `θ`, an arm's adjusted mean is
//! `ȳ - θ (x̄ - x̄_all)` and its per-unit variance `var(y) - 2θ cov(x, y) + θ² var(x)`, so the
//! difference between arms is the regression-adjusted one (the treatment coefficient of
//! `y ~ arm + x`) and its variance shrinks by about `1 - ρ²`. Units without pre-period data
//! count with a covariate of zero.

use serde::Serialize;

use super::{float, positive, Summary};

/// One arm's moments of the metric `y` and its pre-period covariate `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CovariateSummary {
    pub units: u64,
    pub mean: f64,
    pub variance: f64,
    pub covariate_mean: f64,
    pub covariate_variance: f64,
    /// Sample covariance of `x` and `y` (divisor `n - 1`).
    pub covariance: f64,
}

/// The adjustment of a set of arms.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Adjustment {
    /// The pooled within-arm slope of `y` on `x`.
    pub theta: f64,
    /// `1 - adjusted variance / unadjusted variance`, pooled over the arms.
    pub variance_reduction: f64,
    /// The arms' adjusted summaries, in the order given.
    #[serde(skip)]
    pub arms: Vec<Summary>,
}

/// Adjusts `arms`; `None` when the covariate does not vary (no pre-period data at all).
pub fn cuped(arms: &[CovariateSummary]) -> Option<Adjustment> {
    let dof = |a: &CovariateSummary| float(a.units.saturating_sub(1));
    let sxx: f64 = arms.iter().map(|a| dof(a) * a.covariate_variance).sum();
    let sxy: f64 = arms.iter().map(|a| dof(a) * a.covariance).sum();
    let syy: f64 = arms.iter().map(|a| dof(a) * a.variance).sum();
    if !positive(sxx) || !positive(syy) {
        return None;
    }
    let theta = sxy / sxx;
    let units: f64 = arms.iter().map(|a| float(a.units)).sum();
    let x_all = arms
        .iter()
        .map(|a| float(a.units) * a.covariate_mean)
        .sum::<f64>()
        / units;
    let adjusted: Vec<Summary> = arms
        .iter()
        .map(|a| Summary {
            units: a.units,
            mean: a.mean - theta * (a.covariate_mean - x_all),
            variance: (a.variance - 2.0 * theta * a.covariance
                + theta * theta * a.covariate_variance)
                .max(0.0),
        })
        .collect();
    let syy_adjusted: f64 = adjusted
        .iter()
        .map(|s| float(s.units.saturating_sub(1)) * s.variance)
        .sum();
    Some(Adjustment {
        theta,
        variance_reduction: 1.0 - syy_adjusted / syy,
        arms: adjusted,
    })
}

#[cfg(test)]
mod tests;
