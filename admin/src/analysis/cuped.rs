//! CUPED: each metric's comparisons again, with the unit's pre-exposure value of the same
//! metric as the covariate (for a ratio, the linearised pre-exposure ratio). The arithmetic is
//! `cleave_core::stats::cuped`.

use cleave_core::stats::{self, CovariateSummary};

use super::{AdjustedComparison, Cuped};

/// The CUPED-adjusted comparisons of one metric from each arm's moments with its covariate
/// (control among them); a ratio's adjusted arms are compared with the z-test.
pub(super) fn adjust(
    present: &[(&str, CovariateSummary)],
    control: &str,
    pre_window_days: i32,
    alpha: f64,
    ratio: bool,
) -> Option<Cuped> {
    let summaries: Vec<CovariateSummary> = present.iter().map(|(_, s)| *s).collect();
    let adjustment = stats::cuped(&summaries)?;
    let at = present.iter().position(|(arm, _)| *arm == control)?;
    let base = adjustment.arms.get(at)?;
    let comparisons = present
        .iter()
        .zip(&adjustment.arms)
        .filter(|((arm, _), _)| *arm != control)
        .filter_map(|((arm, _), adjusted)| {
            let test = if ratio {
                stats::linearised_comparison(base, adjusted, alpha)?
            } else {
                stats::welch(base, adjusted, alpha)?
            };
            Some(AdjustedComparison {
                variant: (*arm).to_owned(),
                test,
            })
        })
        .collect();
    Some(Cuped {
        pre_window_days,
        adjustment,
        comparisons,
    })
}
