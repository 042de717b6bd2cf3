//! Feature flags in the snapshot: typed values served by ordered rules, additive to schema 1.
//!
//! A flag shares the experiments' key space. Its rules are tried in order; the first that
//! serves the unit decides, and the fallthrough serves everyone else. A rule serves one of
//! three ways: a fixed variant, a percentage rollout (bucketed like experiments, ramp-stable)
//! or an experiment whose variants map to flag variants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Payload, Rule};

/// The type every value of a flag has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagType {
    Boolean,
    String,
    Number,
    /// A JSON object.
    Json,
}

impl FlagType {
    /// The word the snapshot and the admin use for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Number => "number",
            Self::Json => "json",
        }
    }
}

/// One feature flag of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: FlagType,
    /// The kill switch: a disabled flag serves its off variant to everyone.
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub enabled: bool,
    /// A draft serves nobody: it is evaluated only for a force token naming one of its
    /// variants (the draft preview).
    #[serde(default, skip_serializing_if = "is_not_draft")]
    pub draft: bool,
    /// Unit type rollouts hash on (`user` unless set).
    #[serde(default = "super::default_unit")]
    pub unit: String,
    /// Seed of rollouts; the flag key unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    pub variants: Vec<FlagVariant>,
    /// Served when the flag is disabled, and to units a fallthrough rollout or experiment
    /// does not take.
    pub off_variant: String,
    /// Tried in order; the first that serves the unit decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<FlagRule>,
    /// What everyone no rule served gets.
    pub fallthrough: Serve,
}

fn enabled() -> bool {
    true
}

fn is_enabled(value: &bool) -> bool {
    *value
}

fn is_not_draft(value: &bool) -> bool {
    !*value
}

impl Flag {
    /// The seed rollouts hash with.
    pub fn effective_salt(&self) -> &str {
        self.salt.as_deref().unwrap_or(&self.key)
    }
}

/// One value a flag can serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagVariant {
    pub key: String,
    pub value: Payload,
}

/// Units matching `targeting` (everyone, when empty) are served by `serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagRule {
    /// Rules OR-ed, conditions AND-ed, as for experiments.
    #[serde(default)]
    pub targeting: Vec<Rule>,
    pub serve: Serve,
}

/// How a rule (or the fallthrough) picks a variant: exactly one of `variant`, `rollout` and
/// `experiment`. One flat struct, like a targeting condition, so validation can say which
/// part is wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Serve {
    /// This variant, to every unit the rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentServe>,
}

/// A percentage rollout: `gate(salt, unit) < traffic` takes the unit in, and
/// `bucket(salt, unit)` picks its variant from `split`, whose weights fill the bucket space in
/// order. The gate and the bucket are the experiments' (docs/contracts.md §2), so raising
/// `traffic` never moves a unit already in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// Basis points of matching units taken in, `0..=10000`.
    #[serde(default = "super::default_traffic")]
    pub traffic: i64,
    /// Weights in basis points, summing to 10000.
    pub split: Vec<Split>,
}

/// One variant's share of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub variant: String,
    pub weight: i64,
}

/// The flag variant each variant of a running experiment stands for: the experiment's
/// assignment decides, and its exposures and results are the experiment's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentServe {
    pub key: String,
    /// Experiment variant key to flag variant key, for every variant of the experiment.
    pub variants: BTreeMap<String, String>,
}

/// Who may call an environment's OFREP endpoints from where. Nothing is open by default: no
/// other site's page may read answers, and no key is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfrepAccess {
    /// Origins (`https://app.example.com`) whose pages may call from the browser (CORS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// SHA-256 (hex) of the client keys callers must present (`X-API-Key` or
    /// `Authorization: Bearer`); empty asks for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_key_hashes: Vec<String>,
}

impl OfrepAccess {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
