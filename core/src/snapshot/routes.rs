//! The route fields of the snapshot format: which requests an experiment applies to and what a
//! variant does with them. [`crate::routing`] matches and checks them.

use serde::{Deserialize, Serialize};

/// The requests an experiment applies to: any `include` pattern (all requests when empty) and
/// no `exclude` pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// What a variant does with a matching request, besides labelling it. `redirect` stands alone;
/// `origin` and `rewrite` combine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteAction {
    /// Name of an origin in the snapshot's `origins` allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Path sent upstream instead of the request's; `{path}` stands for the original path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
    /// Where to send the visitor: an absolute http(s) URL or a path on the same host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// Redirect status, 302 (default) or 307.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}
