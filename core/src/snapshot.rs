//! Snapshot v1 wire format (docs/contracts.md §3, normative).
//!
//! These types are what the admin writes and the worker reads. Unknown fields are ignored on
//! decode so newer writers can add fields; output is deterministic (struct field order, and
//! JSON objects inside payloads are sorted maps).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

mod flags;
mod identity;
mod operator;
mod routes;
pub use flags::{
    ExperimentServe, Flag, FlagRule, FlagType, FlagVariant, OfrepAccess, Rollout, Serve, Split,
};
pub use identity::{IdentitySource, JwtAlgorithm, JwtCheck, PublicJwk};
pub use operator::{Operand, Operator};
pub use routes::{RouteAction, Routes};

mod binary;

pub use binary::{decode_binary, encode_binary, BinaryError, BINARY_FORMAT};

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
    /// Named targeting segments that conditions reference as `{"audience": key}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<Audience>,
    /// How request headers, cookies and query parameters become typed attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_schema: Vec<ContextAttribute>,
    /// A slice of units kept out of every experiment, as a long-term control group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
    /// What happens to requests whose User-Agent is a crawler.
    #[serde(default, skip_serializing_if = "BotPolicy::is_default")]
    pub bot_policy: BotPolicy,
    /// Origins variants may route requests to, by name: the environment's allow-list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub origins: BTreeMap<String, String>,
    /// Whose exposures and events a caller without the server token may record.
    #[serde(default, skip_serializing_if = "AnonymousExposures::is_default")]
    pub anonymous_exposures: AnonymousExposures,
    /// Feature flags, in the experiments' key space.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "binary::flags_field"
    )]
    pub flags: Vec<Flag>,
    /// Who may call the OFREP endpoints, and from which sites.
    #[serde(default, skip_serializing_if = "OfrepAccess::is_default")]
    pub ofrep: OfrepAccess,
    /// The signal without which the edge identifies and records nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// Where requests carry the ids of unit types other than the edge's `user`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "binary::identity_field"
    )]
    pub identity: Vec<IdentitySource>,
}

/// Where consent is read and what happens without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// `cookie` or `header`.
    pub source: AttributeSource,
    /// The cookie or header name.
    pub name: String,
    /// The value that means yes.
    pub value: String,
    #[serde(default)]
    pub without: WithoutConsent,
}

/// What a proxied page of a visitor without consent is assigned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithoutConsent {
    /// Each running experiment's control variant.
    #[default]
    Control,
    /// Nothing: no assignment header.
    None,
}

/// Which variant is the control, among variant keys in order: the one keyed `control`, else
/// the first. Bots under [`BotPolicy::Control`] see it, and results compare against it.
pub fn control_position<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> Option<usize> {
    keys.clone()
        .into_iter()
        .position(|k| k == "control")
        .or_else(|| keys.into_iter().next().map(|_| 0))
}

/// Whose exposures and events a caller without `CLEAVE_SERVER_TOKEN` may record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonymousExposures {
    /// Only the units the caller is bound to: its own `cleave_uid`, verified identities.
    #[default]
    Bound,
    /// Any unit the caller names: for cross-site browser clients, at the price that anyone
    /// can write exposures and events under any unit id.
    Any,
}

impl AnonymousExposures {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A reusable targeting segment; experiments reference it by key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audience {
    pub key: String,
    /// Rules OR-ed together, like an experiment's targeting. Audiences do not nest.
    pub targeting: Vec<Rule>,
}

/// One named request attribute and where it comes from (docs/contracts.md §4 context schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextAttribute {
    pub name: String,
    pub source: AttributeSource,
    /// Query parameter, header or cookie name the value is read from.
    pub key: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Used when the request does not carry the attribute.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "binary::optional_value_field"
    )]
    pub default: Option<Value>,
    /// The decide API answers 400 when a required attribute is missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// Where a context attribute is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeSource {
    Query,
    Header,
    Cookie,
}

/// What a context attribute's text is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    String,
    Bool,
    Number,
    Semver,
    /// Parsed into `<name>.device`, `<name>.browser` and `<name>.os`.
    UserAgent,
}

/// Environment-wide holdout: units whose `bucket("holdout:" ++ salt, unit)` falls in
/// `ranges` are enrolled in no experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdout {
    pub salt: String,
    /// Unit type the holdout hashes on.
    #[serde(default = "default_unit")]
    pub unit: String,
    pub ranges: Vec<[i64; 2]>,
}

/// Treatment of crawler traffic (`ua.device = "bot"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotPolicy {
    /// Bots are enrolled in nothing, so they never skew results.
    #[default]
    Exclude,
    /// Bots see each experiment's control variant (`control`, else the first listed).
    Control,
    /// Bots are bucketed like anyone else.
    Include,
}

impl BotPolicy {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
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
    /// Unit type hashed when the request has no `unit` id (e.g. an anonymous cookie id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_unit: Option<String>,
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
    /// Enrol only units that other experiments assigned to one of the listed variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// Requests the experiment applies to (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Routes>,
    /// Whether variants' routing actions also apply to methods other than GET and HEAD.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub route_all_methods: bool,
    pub variants: Vec<Variant>,
}

/// "Only for units assigned one of `variants` in `experiment`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prerequisite {
    pub experiment: String,
    pub variants: Vec<String>,
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
    pub payload: Payload,
    /// Inclusive `[start, end]` bucket ranges; buckets in no variant's ranges are not enrolled.
    /// Almost every variant holds one contiguous range, which is stored without allocating.
    pub ranges: Ranges,
    /// Unit ids that always get this variant (QA accounts, staff), whatever their bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Where this variant sends its visitors' requests, if anywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteAction>,
}

/// A variant's bucket ranges.
pub type Ranges = smallvec::SmallVec<[[i64; 2]; 1]>;

/// A variant's payload: any JSON value, kept as its JSON text. The worker only copies it into
/// responses, so decoding a snapshot copies one string per payload instead of building a tree
/// of maps and strings (the largest share of a snapshot's allocations).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

/// From JSON: the value's text, as it stands. From a binary sidecar: a string of JSON text,
/// checked like any other.
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            Box::<RawValue>::deserialize(deserializer).map(Self)
        } else {
            Self::from_json(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
        }
    }
}

impl Payload {
    /// The payload holding `value`.
    pub fn new(value: &Value) -> Self {
        // A `Value` always serialises; `null` is the fallback the type system asks for.
        Self(serde_json::value::to_raw_value(value).unwrap_or_default())
    }

    /// The payload whose JSON text is `json`, which is checked but not copied.
    ///
    /// # Errors
    /// When `json` is not one JSON value.
    pub fn from_json(json: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json).map(Self)
    }

    /// The payload as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(self.0.get().as_bytes()).unwrap_or(Value::Null)
    }

    /// The payload's JSON text, exactly as published.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The payload as a raw JSON value, for serialising it verbatim.
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }
}

/// Payloads are equal when their JSON text is: published payloads are written canonically
/// (object keys sorted, no insignificant whitespace).
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self::new(&value)
    }
}

/// Conditions AND-ed together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub conditions: Vec<Condition>,
}

/// One node of a targeting expression, in exactly one of four forms:
/// a test `{"attribute", "operator", "value"}`, a group `{"all": [...]}` or `{"any": [...]}`,
/// a negation `{"not": {...}}`, or a reference `{"audience": "key"}`.
///
/// One flat struct rather than an untagged enum: it decodes in one pass and validation can
/// name exactly what is wrong with a malformed node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    #[serde(
        default,
        skip_serializing_if = "Value::is_null",
        deserialize_with = "binary::value_field"
    )]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

impl Condition {
    /// A test of one attribute.
    pub fn test(attribute: &str, operator: Operator, value: Value) -> Self {
        Self {
            attribute: attribute.to_owned(),
            operator: Some(operator),
            value,
            ..Self::default()
        }
    }
}

fn default_unit() -> String {
    "user".to_owned()
}

fn default_traffic() -> i64 {
    10_000
}

pub use crate::pointer::Pointer;

/// KV key of the immutable body of `version` in `env`.
pub fn body_key(env: &str, version: u64) -> String {
    format!("snapshot:{env}:v{version}")
}

/// KV key of the binary sidecar of `version` in `env` (see [`encode_binary`]).
pub fn binary_key(env: &str, version: u64) -> String {
    format!("snapshot:{env}:v{version}.bin")
}

/// KV key of the pointer to the version in service for `env`.
pub fn pointer_key(env: &str) -> String {
    format!("snapshot:{env}:current")
}
