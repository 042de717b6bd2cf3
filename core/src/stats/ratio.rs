//! Ratio metrics: per unit a numerator `n` and a denominator `d` (revenue and orders, say),
//! read per arm as the ratio of means `R = n̄ / d̄`. The unit is what was randomised, not the
//! order, so the variance comes from the delta method on the unit's linearisation
//! `R + (n - R d) / d̄`: per unit `(var n - 2 R cov(n, d) + R² var d) / d̄²`. Comparisons use the
//! normal approximation. Under CUPED the covariate is the same linearisation of the unit's
//! pre-exposure numerator and denominator, with the ratio of all arms together.

use statrs::distribution::ContinuousCDF;

use super::{
    assemble, mixture_variance, positive, standard_normal, Comparison, CovariateSummary, Summary,
};

/// One arm's moments of a ratio metric's numerator and denominator (sample variances and
/// covariance, divisor `n - 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioMoments {
    pub units: u64,
    pub numerator_mean: f64,
    pub denominator_mean: f64,
    pub numerator_variance: f64,
    pub denominator_variance: f64,
    pub covariance: f64,
}

/// One arm's ratio and the per-unit variance of its linearisation (so `variance / units` is
/// the delta-method variance of the ratio); `None` below 2 units or without a denominator.
pub fn ratio_summary(m: &RatioMoments) -> Option<Summary> {
    if m.units < 2 || !positive(m.denominator_mean.abs()) {
        return None;
    }
    let r = m.numerator_mean / m.denominator_mean;
    let variance = (m.numerator_variance - 2.0 * r * m.covariance + r * r * m.denominator_variance)
        / (m.denominator_mean * m.denominator_mean);
    Some(Summary {
        units: m.units,
        mean: r,
        variance: variance.max(0.0),
    })
}

/// The z-test of `treatment - control` ratios with delta-method variances.
pub fn ratio_comparison(
    control: &RatioMoments,
    treatment: &RatioMoments,
    alpha: f64,
) -> Option<Comparison> {
    let (c, t) = (ratio_summary(control)?, ratio_summary(treatment)?);
    linearised_comparison(&c, &t, alpha)
}

/// The z-test of two linearised ratio arms (plain or CUPED-adjusted).
pub fn linearised_comparison(c: &Summary, t: &Summary, alpha: f64) -> Option<Comparison> {
    let v = c.variance / super::float(c.units) + t.variance / super::float(t.units);
    if !positive(v) {
        return None;
    }
    let normal = standard_normal()?;
    let difference = t.mean - c.mean;
    let p_value = 2.0 * normal.sf((difference / v.sqrt()).abs());
    let margin = normal.inverse_cdf(1.0 - alpha / 2.0) * v.sqrt();
    let tau2 = mixture_variance(c.variance);
    Some(assemble(
        difference, c.mean, margin, p_value, v, tau2, alpha,
    ))
}

/// One arm's moments of a ratio metric and its pre-exposure values, in the order numerator,
/// denominator, pre-period numerator, pre-period denominator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioCovariateMoments {
    pub units: u64,
    pub means: [f64; 4],
    /// Sample covariances (divisor `n - 1`) of the four.
    pub covariance: [[f64; 4]; 4],
}

/// Each arm's linearised ratio with its linearised pre-period ratio as the covariate, ready
/// for [`super::cuped`]; `None` without any pre-period denominator or an arm without units or
/// denominator.
pub fn ratio_covariates(arms: &[RatioCovariateMoments]) -> Option<Vec<CovariateSummary>> {
    let units: f64 = arms.iter().map(|a| super::float(a.units)).sum();
    let weighted = |i: usize| -> f64 {
        arms.iter()
            .map(|a| super::float(a.units) * a.means[i])
            .sum::<f64>()
    };
    let pre_denominator = weighted(3) / units;
    if !positive(pre_denominator) {
        return None;
    }
    let pre_ratio = weighted(2) / weighted(3);
    arms.iter()
        .map(|a| {
            let [n, d, n_pre, d_pre] = a.means;
            let c = &a.covariance;
            if a.units < 2 || !positive(d.abs()) {
                return None;
            }
            let r = n / d;
            Some(CovariateSummary {
                units: a.units,
                mean: r,
                variance: (c[0][0] - 2.0 * r * c[0][1] + r * r * c[1][1]) / (d * d),
                covariate_mean: pre_ratio + (n_pre - pre_ratio * d_pre) / pre_denominator,
                covariate_variance: (c[2][2] - 2.0 * pre_ratio * c[2][3]
                    + pre_ratio * pre_ratio * c[3][3])
                    / (pre_denominator * pre_denominator),
                covariance: (c[0][2] - pre_ratio * c[0][3] - r * c[1][2] + r * pre_ratio * c[1][3])
                    / (d * pre_denominator),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
