//! Turns stored experiments into cleave-core snapshot types and checks them with core's own
//! validation, so whatever admin accepts is exactly what the worker can run.

use cleave_core::keys::is_valid_key;
use cleave_core::snapshot::{self, LayerSlot, Snapshot, SCHEMA_VERSION};
use cleave_core::{Engine, Problems};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;

use crate::model::{Experiment, Status};

/// Experiments a snapshot carries: running ones enrol units; paused ones stay visible.
pub fn is_published(status: Status) -> bool {
    matches!(status, Status::Running | Status::Paused)
}

/// The snapshot form of one experiment.
pub fn to_snapshot_experiment(e: &Experiment) -> snapshot::Experiment {
    let variants = e
        .variants
        .iter()
        .map(|v| snapshot::Variant {
            id: v.id.to_string(),
            key: v.key.clone(),
            payload: v.payload.clone(),
            ranges: e
                .allocations
                .iter()
                .filter(|a| a.variant_id == v.id)
                .map(|a| [a.range_start, a.range_end])
                .collect(),
        })
        .collect();
    snapshot::Experiment {
        id: e.id.to_string(),
        key: e.key.clone(),
        status: e.status.to_snapshot(),
        unit: e.unit.clone(),
        salt: Some(e.salt.clone()),
        traffic: i64::from(e.traffic),
        start_at: e.start_at.and_then(|t| t.format(&Rfc3339).ok()),
        end_at: e.end_at.and_then(|t| t.format(&Rfc3339).ok()),
        layer: e.layer.as_ref().map(|l| LayerSlot {
            key: l.key.clone(),
            salt: l.salt.clone().unwrap_or_else(|| l.key.clone()),
            ranges: l.ranges.clone(),
        }),
        targeting: e.targeting_rules.clone(),
        variants,
    }
}

/// The published experiments of an environment, in key order, and their content hash.
pub fn content(experiments: &[Experiment]) -> (Vec<snapshot::Experiment>, String) {
    let mut published: Vec<snapshot::Experiment> = experiments
        .iter()
        .filter(|e| is_published(e.status))
        .map(to_snapshot_experiment)
        .collect();
    published.sort_by(|a, b| a.key.cmp(&b.key));
    let bytes = serde_json::to_vec(&published).unwrap_or_default();
    (published, hex::encode(Sha256::digest(bytes)))
}

/// Builds and validates a snapshot; problems name experiments by key.
pub fn build(
    environment: &str,
    version: i64,
    published_at: &str,
    published_by: &str,
    experiments: Vec<snapshot::Experiment>,
) -> Result<Snapshot, Problems> {
    let keys: Vec<String> = experiments.iter().map(|e| e.key.clone()).collect();
    let snapshot = Snapshot {
        schema: SCHEMA_VERSION,
        environment: environment.to_owned(),
        version: u64::try_from(version).unwrap_or(0),
        published_at: published_at.to_owned(),
        published_by: published_by.to_owned(),
        experiments,
    };
    match Engine::new(snapshot.clone()) {
        Ok(_) => Ok(snapshot),
        Err(problems) => Err(name_by_key(problems, &keys)),
    }
}

/// Checks an experiment being edited, as if it were running, next to the running or paused
/// experiments of its layer. A draft may lack variants; everything else must already hold.
pub fn check_edit(edited: &Experiment, others: &[Experiment]) -> Result<(), Problems> {
    let mut subject = to_snapshot_experiment(edited);
    subject.status = snapshot::Status::Running;
    let mut experiments = vec![subject];
    let layer = edited.layer.as_ref().map(|l| l.key.as_str());
    for other in others
        .iter()
        .filter(|o| o.id != edited.id && is_published(o.status))
    {
        if layer.is_some() && other.layer.as_ref().map(|l| l.key.as_str()) == layer {
            let mut sibling = to_snapshot_experiment(other);
            sibling.status = snapshot::Status::Running;
            experiments.push(sibling);
        }
    }
    let keys: Vec<String> = experiments.iter().map(|e| e.key.clone()).collect();
    let snapshot = Snapshot {
        schema: SCHEMA_VERSION,
        environment: "check".to_owned(),
        version: 1,
        published_at: String::new(),
        published_by: String::new(),
        experiments,
    };
    let Err(problems) = Engine::new(snapshot) else {
        return Ok(());
    };
    let mut problems = name_by_key(problems, &keys);
    if edited.status == Status::Draft {
        problems.retain(|p| !p.message.ends_with("has no variants"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Checks the fields of a new experiment.
pub fn check_new(key: &str, unit: &str, salt: &str) -> Result<(), Problems> {
    let mut problems = Problems::default();
    if !is_valid_key(key) {
        problems.push(
            "key",
            format!("{key:?} does not match [a-z][a-z0-9_.-]{{0,63}}"),
        );
    }
    if !is_valid_key(unit) {
        problems.push(
            "unit",
            format!("{unit:?} does not match [a-z][a-z0-9_.-]{{0,63}}"),
        );
    }
    if salt.is_empty() || salt.len() > 256 {
        problems.push("salt", "salt must be 1 to 256 bytes");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Rewrites `experiments[i]` paths to `experiments[<key>]` so problems point at something a
/// user recognises.
fn name_by_key(problems: Problems, keys: &[String]) -> Problems {
    let mut out = Problems::default();
    for p in problems.iter() {
        let mut path = p.path.clone();
        for (i, key) in keys.iter().enumerate() {
            let prefix = format!("experiments[{i}]");
            if let Some(rest) = p.path.strip_prefix(&prefix) {
                path = format!("experiments[{key}]{rest}");
                break;
            }
        }
        out.push(path, p.message.clone());
    }
    out
}
