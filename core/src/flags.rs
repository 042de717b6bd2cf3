//! Feature flags: what evaluating one yields (value, variant, reason), and who may ask over
//! OFREP (access, bulk ETags). Evaluation itself is the engine's (`engine/flags.rs`):
//!
//! Per flag: a disabled flag serves its off variant (`Disabled`). Otherwise the rules are tried
//! in order; a rule whose targeting matches serves its variant (`TargetingMatch`), or, for a
//! rollout or an experiment, the variant the unit draws (`Split`) — a unit the rollout's gate
//! or the experiment does not take goes on to the next rule. The fallthrough serves everyone
//! else: its variant (`Static`), or its rollout or experiment, with the off variant for units
//! those do not take.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::decision::Assignment;
use crate::problems::Problems;
use crate::snapshot::{Flag, FlagVariant, OfrepAccess};

/// Why a flag has the value it has (OpenFeature's resolution reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// No rule applied: the fallthrough's fixed variant. (OFREP's schema has no `DEFAULT`;
    /// OpenFeature SDKs report `DEFAULT` themselves when they fall back to the code's default.)
    Static,
    /// A rule's targeting matched and it served its fixed variant.
    TargetingMatch,
    /// Drawn by a rollout or assigned by an experiment.
    Split,
    /// The kill switch is on.
    Disabled,
}

impl Reason {
    /// OpenFeature's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::TargetingMatch => "TARGETING_MATCH",
            Self::Split => "SPLIT",
            Self::Disabled => "DISABLED",
        }
    }
}

/// A flag's value for one subject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlagValue<'a> {
    pub flag: &'a Flag,
    pub variant: &'a FlagVariant,
    pub reason: Reason,
    /// The experiment assignment that decided the value, when an experiment did: its
    /// exposure is what a single-flag evaluation records.
    pub assignment: Option<Assignment<'a>>,
}

/// A flag evaluated, or why it could not be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlagOutcome<'a> {
    Value(FlagValue<'a>),
    /// A rollout was reached and the subject has no id of the flag's unit type.
    TargetingKeyMissing(&'a Flag),
}

impl<'a> FlagOutcome<'a> {
    pub fn flag(&self) -> &'a Flag {
        match self {
            Self::Value(v) => v.flag,
            Self::TargetingKeyMissing(flag) => flag,
        }
    }
}
/// Checks who may call OFREP: origins as a browser sends them (`https://host[:port]`, no
/// path), key hashes as 64 hex digits.
pub(crate) fn check_access(access: &OfrepAccess, problems: &mut Problems) {
    for (i, origin) in access.allowed_origins.iter().enumerate() {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let fine = rest.is_some_and(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
        if !fine {
            problems.push(
                format!("ofrep.allowed_origins[{i}]"),
                format!("{origin:?} is not an origin like https://app.example.com (scheme and host, no path)"),
            );
        }
    }
    for (i, hash) in access.client_key_hashes.iter().enumerate() {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(
                format!("ofrep.client_key_hashes[{i}]"),
                "not a SHA-256 in hex (64 digits)",
            );
        }
    }
}

/// Whether `presented` is one of the client keys `access` lists (by hash).
pub fn is_client_key(access: &OfrepAccess, presented: &str) -> bool {
    let hash = hex::encode(Sha256::digest(presented.as_bytes()));
    access
        .client_key_hashes
        .iter()
        .any(|h| crate::secrets_equal(h.to_ascii_lowercase().as_bytes(), hash.as_bytes()))
}

/// The `ETag` of a bulk evaluation: it changes with the environment's snapshot version and
/// with the evaluation context (as canonical JSON), and with nothing else, so a client that
/// revalidates learns of a publish on its next poll.
pub fn bulk_etag(environment: &str, version: u64, context: &str) -> String {
    let digest = Sha256::new()
        .chain_update(environment.as_bytes())
        .chain_update(b"\n")
        .chain_update(context.as_bytes())
        .finalize();
    format!(
        "\"{version}-{}\"",
        hex::encode(digest.get(..8).unwrap_or_default())
    )
}
#[cfg(test)]
mod tests;
