//! Feature flags as the REST API shows them.

use cleave_core::snapshot::{self, FlagRule, FlagType, FlagVariant, Serve};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a flag serves: its type, values and rules. Rules, serves and targeting use the
/// snapshot's own shapes, so what is stored is what the worker reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagSpec {
    #[serde(rename = "type")]
    pub kind: FlagType,
    /// The kill switch: `false` serves the off variant to everyone.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// A draft goes out in snapshots but serves only a force token's preview; launching it
    /// (`draft: false`) is for good.
    #[serde(default)]
    pub draft: bool,
    #[serde(default = "user")]
    pub unit: String,
    #[serde(default)]
    pub salt: Option<String>,
    pub variants: Vec<FlagVariant>,
    pub off_variant: String,
    #[serde(default)]
    pub rules: Vec<FlagRule>,
    pub fallthrough: Serve,
}

fn enabled() -> bool {
    true
}

fn user() -> String {
    "user".to_owned()
}

impl FlagSpec {
    /// The flag as a snapshot carries it.
    pub fn to_snapshot(&self, key: &str) -> snapshot::Flag {
        snapshot::Flag {
            key: key.to_owned(),
            kind: self.kind,
            enabled: self.enabled,
            draft: self.draft,
            unit: self.unit.clone(),
            salt: self.salt.clone(),
            variants: self.variants.clone(),
            off_variant: self.off_variant.clone(),
            rules: self.rules.clone(),
            fallthrough: self.fallthrough.clone(),
        }
    }
}

/// A feature flag of one environment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub key: String,
    pub name: String,
    pub description: String,
    #[serde(flatten)]
    pub spec: FlagSpec,
    pub archived: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
