//! The control plane's operations, shared by the REST API and the CLI, one module per entity.
//! Each runs in one transaction and writes its audit entry in that same transaction.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use cleave_core::Problems;

use crate::error::AdminError;

mod audiences;
mod drafts;
mod environments;
mod experiments;
mod flags;
mod phases;
mod promotion;
mod publishing;
mod status;
mod variants;

pub use crate::context::Ctx;
pub use audiences::{
    audience, create_audience, delete_audience, list_audiences, patch_audience, AudiencePatch,
    NewAudience,
};
pub use drafts::{delete_experiment, delete_variant};
pub use environments::{
    create_environment, environment, environment_named, set_settings, NewEnvironment,
};
pub use experiments::{
    create_experiment, experiment, list_experiments, patch_experiment, ExperimentPatch,
    NewExperiment,
};
pub use flags::{
    create_flag, flag, kill_flag, list_flags, patch_flag, promote_flag, remove_flag, Removed,
};
pub use phases::{list_phases, new_phase, phase_salt};
pub use promotion::promote_experiment;
pub use publishing::{plan, publish};
pub use status::{pause_alone, preview_status, set_status, StatusChange, StatusPreview};
pub use variants::{
    add_variant, patch_variant, set_allocations, Allocations, NewVariant, VariantPatch,
};

/// Distinguishes a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn invalid(path: &str, message: impl Into<String>) -> AdminError {
    let mut problems = Problems::default();
    problems.push(path, message);
    AdminError::Invalid(problems)
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}
