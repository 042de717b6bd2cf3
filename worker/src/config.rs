//! Typed view of the worker's vars and secrets (docs/contracts.md §5); the one place their names live.

use std::collections::BTreeMap;

use worker::js_sys::Object;
use worker::wasm_bindgen::JsCast;
use worker::Env;

use cleave_core::force::DEFAULT_MAX_LIFETIME_MS;
use cleave_core::signing_keys::SigningKeys;

use crate::rate_limit::{self, ClientKey};

/// KV binding that holds snapshots and pointers.
pub const SNAPSHOTS_BINDING: &str = "SNAPSHOTS";

/// Refresh interval when `CLEAVE_REFRESH_MS` is unset or unreadable.
pub const DEFAULT_REFRESH_MS: u64 = 5_000;

/// First delay before a failed delivery is retried, when `CLEAVE_INGEST_RETRY_SECONDS` is
/// unset.
pub const DEFAULT_INGEST_RETRY_SECONDS: u32 = 10;

/// Settings read from the environment for one request.
#[derive(Debug)]
pub struct Config {
    /// Environment served by proxy mode and the API's default.
    pub environment: String,
    pub origin_url: Option<String>,
    pub refresh_ms: u64,
    /// Per-purpose keys derived from `CLEAVE_SIGNING_KEY` (headers, force tokens, sticky
    /// records); `None` when it is unset.
    pub signing_keys: Option<SigningKeys>,
    /// Longest lifetime a force token may have (`CLEAVE_FORCE_MAX_SECONDS`, default 7 days).
    pub force_max_ms: i64,
    /// Cookies the site's pages do not depend on, which do not keep a request out of the edge
    /// cache (`CLEAVE_EDGE_CACHE_IGNORE_COOKIES=_ga,_gid`, `*` for every cookie).
    pub edge_cache_ignored_cookies: Vec<String>,
    pub admin_token: Option<String>,
    /// Bearer token of trusted servers (`CLEAVE_SERVER_TOKEN`, a secret): a call carrying it
    /// may record exposures and events for any unit it names.
    pub server_token: Option<String>,
    /// Bearer token the admin presents to push pointers (`CLEAVE_PUBLISH_TOKEN`, a secret);
    /// without it no one can.
    pub publish_token: Option<String>,
    /// When set, only snapshots signed by the matching private key are used.
    pub snapshot_public_key: Option<String>,
    /// Whether a `DECIDE_RATE_LIMITER` binding limits the decide API, and per what.
    pub rate_limit: Option<ClientKey>,
    /// Whether pages that depend on assignments are kept in the edge cache per assignment
    /// vector (`CLEAVE_EDGE_CACHE=off` disables it).
    pub edge_cache: bool,
    /// How pages learn their assignments (`CLEAVE_EXPOSE_ASSIGNMENTS=cookie,html`).
    pub expose: Expose,
    /// The admin's `POST /ingest` (`CLEAVE_INGEST_URL`); exposures and events are collected
    /// only when it is set.
    pub ingest_url: Option<String>,
    /// Bearer token of an `ingest` role (`CLEAVE_INGEST_TOKEN`, a secret).
    pub ingest_token: Option<String>,
    /// First retry delay of a failed queue delivery, doubled per attempt
    /// (`CLEAVE_INGEST_RETRY_SECONDS`).
    pub ingest_retry_seconds: u32,
    /// The `CLEAVE_JWT_*` secrets, by name: the keys of HS256 identity sources.
    pub jwt_secrets: BTreeMap<String, Vec<u8>>,
}

/// Ways a proxied page can learn its assignments; all off unless asked for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expose {
    /// A cookie scripts can read, `cleave_assignments=exp=variant&…`.
    pub cookie: bool,
    /// A JSON `<script id="cleave-assignments">` in the page's `<head>`.
    pub html: bool,
}

impl Expose {
    /// Parses a comma-separated list of `cookie` and `html`; anything else is ignored.
    pub fn parse(value: Option<&str>) -> Self {
        let mut expose = Self::default();
        for item in value.unwrap_or("").split(',').map(str::trim) {
            match item {
                "cookie" => expose.cookie = true,
                "html" => expose.html = true,
                _ => {}
            }
        }
        expose
    }
}

impl Config {
    /// Reads the vars and secrets. [`crate::isolate::start`] calls it once per isolate: they
    /// are fixed for its lifetime, and each read crosses into JavaScript.
    pub fn from_env(env: &Env) -> Self {
        let var = |name: &str| {
            env.var(name)
                .ok()
                .map(|v| v.to_string())
                .filter(|v| !v.is_empty())
        };
        let secret = |name: &str| {
            env.secret(name)
                .ok()
                .map(|v| v.to_string())
                .or_else(|| var(name))
                .filter(|v| !v.is_empty())
        };
        Self {
            environment: var("CLEAVE_ENV").unwrap_or_else(|| "prod".to_owned()),
            origin_url: var("ORIGIN_URL"),
            refresh_ms: var("CLEAVE_REFRESH_MS")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_REFRESH_MS),
            signing_keys: secret("CLEAVE_SIGNING_KEY")
                .and_then(|secret| SigningKeys::derive(secret.as_bytes())),
            force_max_ms: var("CLEAVE_FORCE_MAX_SECONDS")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map_or(DEFAULT_MAX_LIFETIME_MS, |s| s.saturating_mul(1000)),
            edge_cache_ignored_cookies: var("CLEAVE_EDGE_CACHE_IGNORE_COOKIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            admin_token: secret("CLEAVE_ADMIN_TOKEN"),
            server_token: secret("CLEAVE_SERVER_TOKEN"),
            publish_token: secret("CLEAVE_PUBLISH_TOKEN"),
            snapshot_public_key: var("CLEAVE_SNAPSHOT_PUBLIC_KEY"),
            rate_limit: rate_limit::is_bound(env)
                .then(|| ClientKey::parse(var("CLEAVE_RATE_LIMIT_KEY").as_deref())),
            edge_cache: var("CLEAVE_EDGE_CACHE").as_deref() != Some("off"),
            expose: Expose::parse(var("CLEAVE_EXPOSE_ASSIGNMENTS").as_deref()),
            ingest_url: var("CLEAVE_INGEST_URL"),
            ingest_token: secret("CLEAVE_INGEST_TOKEN"),
            ingest_retry_seconds: var("CLEAVE_INGEST_RETRY_SECONDS")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_INGEST_RETRY_SECONDS),
            jwt_secrets: jwt_secrets(env, secret),
        }
    }
}

/// Every binding named `CLEAVE_JWT_<NAME>`, as bytes: the snapshot names which source uses
/// which, so they are found by prefix.
fn jwt_secrets(env: &Env, secret: impl Fn(&str) -> Option<String>) -> BTreeMap<String, Vec<u8>> {
    let bindings: &Object = AsRef::<worker::wasm_bindgen::JsValue>::as_ref(env).unchecked_ref();
    cleave_core::order::map_of(
        Object::keys(bindings)
            .iter()
            .filter_map(|name| name.as_string())
            .filter(|name| name.starts_with(cleave_core::identity::SECRET_PREFIX))
            .filter_map(|name| secret(&name).map(|value| (name, value.into_bytes()))),
    )
}
