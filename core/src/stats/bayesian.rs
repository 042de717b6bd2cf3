//! The Bayesian reading of a comparison, under the normal approximations the anchors use: a
//! flat prior on the relative lift `treatment mean / control mean - 1`, whose posterior is then
//! normal with the delta-method variance of that ratio. Closed forms throughout.

use serde::Serialize;
use statrs::distribution::{Continuous, ContinuousCDF};

use super::{positive, standard_normal};

/// Treatment against control, read as a posterior on the relative lift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bayesian {
    /// Posterior probability that the lift is above zero.
    pub chance_to_beat_control: f64,
    /// Posterior mean of the relative lift.
    pub lift: f64,
    /// Central credible interval of the lift at `1 - alpha`.
    pub lift_ci_low: f64,
    pub lift_ci_high: f64,
    /// Expected lift given up by shipping the treatment, `E[max(0, -lift)]`.
    pub expected_loss: f64,
    /// Expected lift given up by keeping the control, `E[max(0, lift)]`.
    pub control_expected_loss: f64,
}

/// The posterior of the relative lift from each arm's mean and the variance of that mean
/// (`variance / units`). `None` when the control mean is zero or nothing varies.
pub fn bayesian(
    control_mean: f64,
    control_mean_variance: f64,
    treatment_mean: f64,
    treatment_mean_variance: f64,
    alpha: f64,
) -> Option<Bayesian> {
    if control_mean == 0.0 || !control_mean.is_finite() || !treatment_mean.is_finite() {
        return None;
    }
    let lift = treatment_mean / control_mean - 1.0;
    // Delta method for the ratio of two independent means.
    let c2 = control_mean * control_mean;
    let variance = treatment_mean_variance / c2
        + treatment_mean * treatment_mean * control_mean_variance / (c2 * c2);
    if !positive(variance) {
        return None;
    }
    let sd = variance.sqrt();
    let normal = standard_normal()?;
    let z = lift / sd;
    let margin = normal.inverse_cdf(1.0 - alpha / 2.0) * sd;
    let density = normal.pdf(z);
    Some(Bayesian {
        chance_to_beat_control: normal.cdf(z),
        lift,
        lift_ci_low: lift - margin,
        lift_ci_high: lift + margin,
        expected_loss: sd * density - lift * normal.cdf(-z),
        control_expected_loss: sd * density + lift * normal.cdf(z),
    })
}

#[cfg(test)]
mod tests;
