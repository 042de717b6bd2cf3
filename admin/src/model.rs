//! The control plane's entities as the REST API shows them (camelCase, docs/contracts.md §6).

mod flags;
mod metrics;
pub use flags::{Flag, FlagSpec};
pub use metrics::{Decision, Direction, MetricKind, MetricRole, Verdict};

use std::collections::BTreeMap;

use cleave_core::snapshot::{
    AnonymousExposures, BotPolicy, ContextAttribute, Holdout, Prerequisite, RouteAction, Routes,
    Rule, Status as SnapshotStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub id: Uuid,
    pub name: String,
    pub current_version: Option<i64>,
    pub settings: EnvironmentSettings,
    /// One line per identity source a client can set, so no one mistakes it for a verified
    /// one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identity_warnings: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What an environment's snapshots carry besides experiments. Inner objects use the
/// snapshot's own (snake_case) shapes, so what is stored is what the worker reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSettings {
    #[serde(default)]
    pub holdout: Option<Holdout>,
    #[serde(default)]
    pub bot_policy: BotPolicy,
    #[serde(default)]
    pub context_schema: Vec<ContextAttribute>,
    /// Origins variants may send requests to, by name: the only URLs a routing action can
    /// reach. Publishing refuses a variant naming any other.
    #[serde(default)]
    pub origins: BTreeMap<String, String>,
    /// Whose exposures and events a caller without the server token may record: `bound`
    /// (its own `cleave_uid`, the default) or `any` (any unit it names).
    #[serde(default)]
    pub anonymous_exposures: AnonymousExposures,
    /// Who may call the environment's OFREP endpoints, and from which sites.
    #[serde(default)]
    pub ofrep: OfrepSettings,
    /// The consent signal (`{"source": "cookie", "name", "value", "without": "control"}`)
    /// without which the edge identifies and records nobody; none by default.
    #[serde(default)]
    pub consent: Option<cleave_core::snapshot::Consent>,
    /// Where requests carry the ids of unit types other than `user`: a header, a cookie, or
    /// a verified JWT claim (`{"unit", "source", "name", "jwt"?}`, the snapshot's shape).
    #[serde(default)]
    pub identity: Vec<cleave_core::snapshot::IdentitySource>,
}

impl EnvironmentSettings {
    /// What the dashboard and API say of each unverified identity source.
    pub fn identity_warnings(&self) -> Vec<String> {
        self.identity
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_verified())
            .map(|(i, s)| {
                format!(
                    "identity[{i}]: `{}` from the {} {:?} is unverified: any client can set it, \
                     so it assigns but records no exposure or event for it unless \
                     anonymousExposures is `any` (add a jwt check to verify it)",
                    s.unit,
                    match s.source {
                        cleave_core::snapshot::AttributeSource::Cookie => "cookie",
                        _ => "header",
                    },
                    s.name
                )
            })
            .collect()
    }
}

/// OFREP access: browser origins allowed to call (CORS) and the client keys callers must
/// present. Snapshots carry the keys' SHA-256 only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfrepSettings {
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub client_keys: Vec<String>,
}

impl OfrepSettings {
    /// As the snapshot carries it.
    pub fn to_snapshot(&self) -> cleave_core::snapshot::OfrepAccess {
        use sha2::{Digest, Sha256};
        cleave_core::snapshot::OfrepAccess {
            allowed_origins: self.allowed_origins.clone(),
            client_key_hashes: self
                .client_keys
                .iter()
                .map(|k| hex::encode(Sha256::digest(k.as_bytes())))
                .collect(),
        }
    }
}

/// A reusable targeting segment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: String,
    pub targeting_rules: Vec<Rule>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Lifecycle: DRAFT -> RUNNING <-> PAUSED -> STOPPED -> ARCHIVED (RUNNING may also stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Draft,
    Running,
    Paused,
    Stopped,
    Archived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Stopped => "STOPPED",
            Self::Archived => "ARCHIVED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Draft,
            Self::Running,
            Self::Paused,
            Self::Stopped,
            Self::Archived,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// The states a transition to `self` may start from.
    pub fn allowed_from(self) -> &'static [Status] {
        match self {
            Self::Draft => &[],
            Self::Running => &[Self::Draft, Self::Paused],
            Self::Paused => &[Self::Running],
            Self::Stopped => &[Self::Running, Self::Paused],
            Self::Archived => &[Self::Stopped],
        }
    }

    pub fn to_snapshot(self) -> SnapshotStatus {
        match self {
            Self::Draft => SnapshotStatus::Draft,
            Self::Running => SnapshotStatus::Running,
            Self::Paused => SnapshotStatus::Paused,
            Self::Stopped => SnapshotStatus::Stopped,
            Self::Archived => SnapshotStatus::Archived,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub key: String,
    pub name: String,
    pub description: String,
    pub unit: String,
    /// Unit type hashed when the request lacks `unit` (e.g. an anonymous id).
    pub fallback_unit: Option<String>,
    pub salt: String,
    pub status: Status,
    pub traffic: i32,
    pub targeting_rules: Vec<Rule>,
    pub prerequisites: Vec<Prerequisite>,
    pub layer: Option<LayerPlacement>,
    /// URL patterns the experiment applies to; `None` = every request.
    pub routes: Option<Routes>,
    /// Whether variants' routing actions also apply to methods other than GET and HEAD.
    pub route_all_methods: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub end_at: Option<OffsetDateTime>,
    pub variants: Vec<Variant>,
    pub allocations: Vec<Allocation>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An experiment's slice of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LayerPlacement {
    pub key: String,
    /// The layer's salt; defaults to its key when the layer is first used.
    #[serde(default)]
    pub salt: Option<String>,
    pub ranges: Vec<[i64; 2]>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub payload: Value,
    /// Unit ids that always get this variant.
    pub allow: Vec<String>,
    /// Where this variant sends its visitors' requests, if anywhere else.
    pub route: Option<RouteAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Allocation {
    pub variant_id: Uuid,
    pub range_start: i64,
    pub range_end: i64,
}

/// One published version of an environment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    pub environment: String,
    pub version: i64,
    pub sha256: String,
    /// False when the content was unchanged and the current version was kept.
    pub changed: bool,
    /// What this version changed for units already bucketed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<cleave_core::plan::Plan>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_follows_the_design() {
        use Status::*;
        let allowed = |from: Status, to: Status| to.allowed_from().contains(&from);
        assert!(allowed(Draft, Running));
        assert!(allowed(Running, Paused));
        assert!(allowed(Paused, Running));
        assert!(allowed(Paused, Stopped));
        assert!(allowed(Running, Stopped));
        assert!(allowed(Stopped, Archived));
        for (from, to) in [
            (Running, Running),
            (Draft, Paused),
            (Draft, Stopped),
            (Stopped, Running),
            (Archived, Running),
            (Running, Draft),
            (Running, Archived),
        ] {
            assert!(!allowed(from, to), "{from:?} -> {to:?}");
        }
    }
}
