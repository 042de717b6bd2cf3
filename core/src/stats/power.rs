//! How many units an experiment needs, and how long that takes: the two-sided z-test's power
//! for two equal arms (the function statsmodels' `NormalIndPower` evaluates), solved for the
//! sample size.

use serde::Serialize;
use statrs::distribution::ContinuousCDF;

use super::{positive, standard_normal};

/// Power of the two-sided test at `alpha` to detect a standardized effect `effect_size`
/// (difference / per-unit standard deviation) with `units_per_arm` units in each of two arms.
/// Both tails count, as in statsmodels.
pub fn power(effect_size: f64, units_per_arm: f64, alpha: f64) -> Option<f64> {
    let normal = standard_normal()?;
    let crit = normal.inverse_cdf(1.0 - alpha / 2.0);
    let shift = effect_size.abs() * (units_per_arm / 2.0).sqrt();
    Some(normal.sf(crit - shift) + normal.cdf(-crit - shift))
}

/// Units each arm needs for `power` against `effect_size` at `alpha` (fractional: round it
/// up to plan). `None` for a zero effect or a power outside `(alpha, 1)`.
pub fn units_per_arm(effect_size: f64, alpha: f64, power_wanted: f64) -> Option<f64> {
    if !(positive(effect_size.abs()) && power_wanted > alpha && power_wanted < 1.0) {
        return None;
    }
    let at = |n: f64| power(effect_size, n, alpha).unwrap_or(0.0);
    // Power rises with n: bracket the answer, then bisect it to far below a unit.
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    while at(high) < power_wanted {
        low = high;
        high *= 2.0;
        if high > 1e15 {
            return None;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if at(mid) < power_wanted {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-9 * high {
            break;
        }
    }
    Some(high)
}

/// The sample size plan for a metric against its control.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The smallest relative change worth detecting.
    pub minimum_detectable_effect: f64,
    pub power: f64,
    /// Units each variant needs, rounded up.
    pub units_per_variant: u64,
    /// Units all variants need together.
    pub units_needed: u64,
    /// Days until enrolment reaches `units_needed` at the rate so far; `None` before start,
    /// `Some(0.0)` once reached.
    pub days_left: Option<f64>,
}

/// A plan for detecting a relative change `mde` of a metric whose control has `baseline`
/// mean and per-unit `variance`, over `variants` arms (control included); with enrolment so
/// far (`enrolled` units in `days` days) it says how many days are left.
pub fn plan(
    baseline: f64,
    variance: f64,
    mde: f64,
    alpha: f64,
    power_wanted: f64,
    variants: usize,
    enrolled: Option<(u64, f64)>,
) -> Option<Plan> {
    if !positive(variance) {
        return None;
    }
    let effect_size = mde * baseline / variance.sqrt();
    let per_arm = units_per_arm(effect_size, alpha, power_wanted)?.ceil();
    if !per_arm.is_finite() || per_arm >= 9.0e15 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let units_per_variant = per_arm as u64;
    let units_needed = units_per_variant.checked_mul(u64::try_from(variants).ok()?)?;
    let days_left = enrolled.and_then(|(units, days)| days_left(units_needed, units, days));
    Some(Plan {
        minimum_detectable_effect: mde,
        power: power_wanted,
        units_per_variant,
        units_needed,
        days_left,
    })
}

/// Days until `needed` units at the rate `enrolled / days`; `None` without a rate.
pub fn days_left(needed: u64, enrolled: u64, days: f64) -> Option<f64> {
    if enrolled >= needed {
        return Some(0.0);
    }
    if enrolled == 0 || !positive(days) {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let (needed, enrolled) = (needed as f64, enrolled as f64);
    Some((needed - enrolled) / (enrolled / days))
}

#[cfg(test)]
mod tests;
