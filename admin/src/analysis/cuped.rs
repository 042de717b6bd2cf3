//! CUPED: each metric's comparisons again, with the unit's pre-exposure value of the same
//! metric as the covariate. The arithmetic is `cleave_core::stats::cuped`.

use cleave_core::stats::{self, CovariateSummary};

use super::{to_u64, AdjustedComparison, Cuped};
use crate::db::analysis as store;

/// The CUPED-adjusted comparisons of one metric, arms in `arms` order (control first found).
pub(super) fn adjust(
    arms: &[&str],
    sums: &[store::MetricSums],
    control: &str,
    pre_window_days: i32,
    alpha: f64,
) -> Option<Cuped> {
    let present: Vec<(&str, CovariateSummary)> = arms
        .iter()
        .filter_map(|arm| {
            let s = sums.iter().find(|s| s.variant == *arm)?;
            Some((
                *arm,
                CovariateSummary {
                    units: to_u64(s.units),
                    mean: s.mean,
                    variance: s.variance,
                    covariate_mean: s.covariate_mean,
                    covariate_variance: s.covariate_variance,
                    covariance: s.covariance,
                },
            ))
        })
        .collect();
    let summaries: Vec<CovariateSummary> = present.iter().map(|(_, s)| *s).collect();
    let adjustment = stats::cuped(&summaries)?;
    let at = present.iter().position(|(arm, _)| *arm == control)?;
    let base = adjustment.arms.get(at)?;
    let comparisons = present
        .iter()
        .zip(&adjustment.arms)
        .filter(|((arm, _), _)| *arm != control)
        .filter_map(|((arm, _), adjusted)| {
            Some(AdjustedComparison {
                variant: (*arm).to_owned(),
                test: stats::welch(base, adjusted, alpha)?,
            })
        })
        .collect();
    Some(Cuped {
        pre_window_days,
        adjustment,
        comparisons,
    })
}
