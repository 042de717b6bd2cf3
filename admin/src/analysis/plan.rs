//! Sample size and duration: before the start from a chosen baseline, and while running from
//! the first primary metric's control so far.

use cleave_core::stats::power;

use super::{moments, to_u64, MetricPlan, MetricResult, Options};
use crate::model::{MetricKind, MetricRole};

/// What a plan before the start is made from.
#[derive(Debug, Clone, Copy)]
pub struct SampleSize {
    /// The control's conversion rate, or its mean for a continuous metric.
    pub baseline: f64,
    /// A continuous metric's per-unit standard deviation; `None` for a conversion rate.
    pub sd: Option<f64>,
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
    pub variants: usize,
    /// Units enrolled a day, for the duration.
    pub daily_units: Option<f64>,
}

/// The plan an experiment will need, with `daysLeft` the days it will run at `daily_units`.
///
/// # Errors
/// A message naming the input out of range.
pub fn sample_size(s: &SampleSize) -> std::result::Result<power::Plan, String> {
    let variance = match s.sd {
        Some(sd) if sd > 0.0 && sd.is_finite() => sd * sd,
        Some(sd) => return Err(format!("sd {sd} must be above 0")),
        None if s.baseline > 0.0 && s.baseline < 1.0 => s.baseline * (1.0 - s.baseline),
        None => {
            return Err(format!(
            "baseline {} is a conversion rate between 0 and 1 (pass sd for a continuous metric)",
            s.baseline
        ))
        }
    };
    if !(s.alpha > 0.0 && s.alpha < 0.5) {
        return Err(format!("alpha {} must be between 0 and 0.5", s.alpha));
    }
    if !(s.power > s.alpha && s.power < 1.0) {
        return Err(format!("power {} must be between alpha and 1", s.power));
    }
    if !(s.mde > 0.0 && s.mde.is_finite()) || s.baseline == 0.0 || !s.baseline.is_finite() {
        return Err(format!(
            "mde {} must be a relative change above 0 of a non-zero baseline",
            s.mde
        ));
    }
    if s.variants < 2 {
        return Err(format!(
            "variants {}: an experiment has at least 2",
            s.variants
        ));
    }
    let mut plan = power::plan(
        s.baseline.abs(),
        variance,
        s.mde,
        s.alpha,
        s.power,
        s.variants,
        None,
    )
    .ok_or_else(|| "no finite sample size detects that effect".to_owned())?;
    if let Some(daily) = s.daily_units {
        if !(daily > 0.0 && daily.is_finite()) {
            return Err(format!("daily_units {daily} must be above 0"));
        }
        plan.days_left = Some(to_f64_u(plan.units_needed) / daily);
    }
    Ok(plan)
}

#[allow(clippy::cast_precision_loss)]
fn to_f64_u(n: u64) -> f64 {
    n as f64
}

/// The sample size plan of the first primary metric, from its control so far.
pub(super) fn plan_for(
    metrics: &[MetricResult],
    control: &str,
    options: Options,
    variants: usize,
    enrolled: i64,
    days: Option<f64>,
) -> Option<MetricPlan> {
    let metric = metrics.iter().find(|m| m.role == MetricRole::Primary)?;
    let base = metric.variants.iter().find(|v| v.variant == control)?;
    if base.units < 2 {
        return None;
    }
    let (mean, variance) = moments(base, metric.kind == MetricKind::Conversion);
    let plan = power::plan(
        mean,
        variance,
        options.mde,
        options.alpha,
        options.power,
        variants,
        days.map(|d| (to_u64(enrolled), d)),
    )?;
    Some(MetricPlan {
        metric: metric.key.clone(),
        plan,
    })
}
