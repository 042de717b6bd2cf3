//! Snapshot v1 wire format (DESIGN §3, normative).
//!
//! These types are what the admin writes and the worker reads. Unknown fields are ignored on
//! decode so newer writers can add fields; output is deterministic (struct field order, and
//! JSON objects inside payloads are sorted maps).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only schema this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A published, versioned configuration for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema: u32,
    pub environment: String,
    pub version: u64,
    pub published_at: String,
    pub published_by: String,
    #[serde(default)]
    pub experiments: Vec<Experiment>,
}

/// Lifecycle state as published; only `running` experiments enrol anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Running,
    Paused,
    Stopped,
    Archived,
}

/// One experiment and its variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub id: String,
    pub key: String,
    pub status: Status,
    /// Unit type the experiment hashes on (`user` unless set).
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Hash seed; the experiment key unless set.
    #[serde(default)]
    pub salt: Option<String>,
    /// Share of eligible units enrolled, in basis points `0..=10000`.
    #[serde(default = "default_traffic")]
    pub traffic: i64,
    #[serde(default)]
    pub start_at: Option<String>,
    #[serde(default)]
    pub end_at: Option<String>,
    #[serde(default)]
    pub layer: Option<LayerSlot>,
    /// Rules OR-ed together; an empty list targets everyone.
    #[serde(default)]
    pub targeting: Vec<Rule>,
    pub variants: Vec<Variant>,
}

impl Experiment {
    /// The seed used for bucketing and gating.
    pub fn effective_salt(&self) -> &str {
        self.salt.as_deref().unwrap_or(&self.key)
    }
}

/// An experiment's place in a mutual-exclusion layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSlot {
    pub key: String,
    pub salt: String,
    /// Inclusive `[start, end]` slices of the layer's bucket space this experiment owns.
    pub ranges: Vec<[i64; 2]>,
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    pub key: String,
    #[serde(default)]
    pub payload: Value,
    /// Inclusive `[start, end]` bucket ranges; buckets in no variant's ranges are not enrolled.
    pub ranges: Vec<[i64; 2]>,
}

/// Conditions AND-ed together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub conditions: Vec<Condition>,
}

/// One test of one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub attribute: String,
    pub operator: Operator,
    #[serde(default)]
    pub value: Value,
}

/// Every operator of DESIGN §4. [`crate::Engine`] refuses the ones it cannot evaluate yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    In,
    NotIn,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    Regex,
    Gt,
    Gte,
    Lt,
    Lte,
    SemverEq,
    SemverGt,
    SemverGte,
    SemverLt,
    SemverLte,
    Before,
    After,
    Exists,
    NotExists,
    /// An operator this build does not know; kept so validation can name it.
    Unknown(String),
}

/// Wire names, in one table for both directions.
const OPERATOR_NAMES: [(&str, Operator); 22] = [
    ("eq", Operator::Eq),
    ("neq", Operator::Neq),
    ("in", Operator::In),
    ("not_in", Operator::NotIn),
    ("contains", Operator::Contains),
    ("not_contains", Operator::NotContains),
    ("starts_with", Operator::StartsWith),
    ("ends_with", Operator::EndsWith),
    ("regex", Operator::Regex),
    ("gt", Operator::Gt),
    ("gte", Operator::Gte),
    ("lt", Operator::Lt),
    ("lte", Operator::Lte),
    ("semver_eq", Operator::SemverEq),
    ("semver_gt", Operator::SemverGt),
    ("semver_gte", Operator::SemverGte),
    ("semver_lt", Operator::SemverLt),
    ("semver_lte", Operator::SemverLte),
    ("before", Operator::Before),
    ("after", Operator::After),
    ("exists", Operator::Exists),
    ("not_exists", Operator::NotExists),
];

impl Operator {
    /// The operator's wire name.
    pub fn name(&self) -> &str {
        match self {
            Self::Unknown(name) => name,
            known => OPERATOR_NAMES
                .iter()
                .find(|(_, op)| op == known)
                .map_or("", |(name, _)| name),
        }
    }

    /// The operator called `name`; unknown names are kept as [`Operator::Unknown`].
    pub fn from_name(name: &str) -> Self {
        OPERATOR_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| Self::Unknown(name.to_owned()), |(_, op)| op.clone())
    }
}

impl Serialize for Operator {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Operator;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an operator name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Operator, E> {
                Ok(Operator::from_name(name))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

fn default_unit() -> String {
    "user".to_owned()
}

fn default_traffic() -> i64 {
    10_000
}

/// The `snapshot:{env}:current` pointer. It may carry more fields (e.g. `sha256`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub version: u64,
}

/// KV key of the immutable body of `version` in `env`.
pub fn body_key(env: &str, version: u64) -> String {
    format!("snapshot:{env}:v{version}")
}

/// KV key of the pointer to the version in service for `env`.
pub fn pointer_key(env: &str) -> String {
    format!("snapshot:{env}:current")
}
