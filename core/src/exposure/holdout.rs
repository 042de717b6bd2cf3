//! The environment holdout's own exposures: the record that a unit was counted for the
//! holdout's report, held out or not.
//!
//! The report compares held-out units against everyone else, so both groups must be recorded
//! by one rule that does not depend on which group a unit is in: every decision that records
//! exposures (a proxied page, a decide call naming experiments, a confirmation) records the
//! unit's holdout exposure too, whether or not any experiment enrolled it. Recording only
//! units with assignments would compare the held out against the enrolled, a different and
//! more engaged population.

use super::{exposure_id, utc_day, Binding, Excluded, Exposure, SliceAttributes, Source};
use crate::engine::{Engine, Subject};

/// The experiment key of holdout exposures: outside the key grammar, so no experiment can
/// share it.
pub const HOLDOUT_EXPERIMENT: &str = "$holdout";
/// The holdout report's variants: units the holdout keeps out of every experiment, and the
/// rest.
pub const HELD_OUT: &str = "held_out";
pub const REST: &str = "rest";

/// The unit's holdout exposure, when the environment has a holdout, the request carries its
/// unit and `binding` lets the caller record it. Crawlers and force-token requests are marked
/// excluded, as for experiments.
pub fn holdout_exposure(
    environment: &str,
    engine: &Engine,
    subject: &Subject<'_>,
    source: Source,
    binding: &Binding<'_>,
) -> Option<Exposure> {
    let holdout = engine.snapshot().holdout.as_ref()?;
    let held_out = engine.held_out(subject.units)?;
    let unit_type = holdout.unit.as_str();
    let unit = subject.units.get(unit_type)?.as_str();
    if !binding.allows(unit_type, unit) {
        return None;
    }
    let day = utc_day(subject.now_ms)?;
    let variant = if held_out { HELD_OUT } else { REST };
    let excluded = if subject.forced.is_some() {
        Some(Excluded::Forced)
    } else if subject.bot {
        Some(Excluded::Bot)
    } else {
        None
    };
    Some(Exposure {
        id: exposure_id(
            environment,
            HOLDOUT_EXPERIMENT,
            &holdout.salt,
            variant,
            unit_type,
            unit,
            &day,
        ),
        experiment: HOLDOUT_EXPERIMENT.to_owned(),
        variant: variant.to_owned(),
        unit_type: unit_type.to_owned(),
        unit: unit.to_owned(),
        salt: holdout.salt.clone(),
        day,
        at_ms: subject.now_ms,
        excluded,
        source: Some(source),
        slice: SliceAttributes::of(subject.attributes),
    })
}
