//! Everything the engine needs from a request besides its units: edge attributes (`cf.*`,
//! `url.*`, `ua.*`), whether it comes from a bot, schema attributes read from query, headers
//! and cookies, and a verified force token. Each piece is computed only when the snapshot in
//! service needs it, since every read of the request is a call into JavaScript.

use cleave_core::context::{apply_schema, ContextError, TypedContext};
use cleave_core::force::{self, ForceError, Forced};
use cleave_core::snapshot::AttributeSource;
use cleave_core::{user_agent, Attributes, Engine};
use worker::web_sys::Request;

use crate::config::Config;
use crate::edge::add_edge_attributes;
use crate::identity::cookie_value;
use crate::request_url::RequestUrl;

/// What the request adds to a decision.
pub struct RequestContext {
    pub bot: bool,
    /// Schema attributes as typed values, for echoing.
    pub typed: TypedContext,
}

/// Adds edge and schema attributes to `attributes`. `strict` (the decide API) refuses a
/// missing required or unconvertible schema attribute; proxy mode leaves it out.
/// `recording` says exposures may be recorded: they carry the edge's country, device and
/// browser, so the edge attributes are read even when no experiment targets them.
///
/// # Errors
/// The schema attribute at fault, in strict mode.
pub fn enrich(
    engine: &Engine,
    req: &Request,
    url: &RequestUrl,
    attributes: &mut Attributes,
    strict: bool,
    recording: bool,
) -> Result<RequestContext, ContextError> {
    let edge = engine.uses_edge_attributes() || recording;
    let agent = (edge || engine.needs_bot_check()).then(|| user_agent_of(req));
    let schema = &engine.snapshot().context_schema;
    let typed = if schema.is_empty() {
        TypedContext::new()
    } else {
        let lookup = |source: AttributeSource, key: &str| match source {
            AttributeSource::Query => url
                .query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned()),
            AttributeSource::Header => header(req, key),
            AttributeSource::Cookie => {
                header(req, "cookie").and_then(|c| cookie_value(&c, key).map(str::to_owned))
            }
        };
        apply_schema(schema, attributes, &lookup, strict)?
    };
    // Edge attributes last: nothing the request or schema supplied can overwrite them.
    if edge {
        add_edge_attributes(req, url, attributes);
        if let Some(ua) = agent {
            add_user_agent(ua, attributes);
        }
    }
    Ok(RequestContext {
        bot: agent.is_some_and(|ua| ua.device == "bot"),
        typed,
    })
}

/// Parses the request's User-Agent.
pub fn user_agent_of(req: &Request) -> user_agent::UserAgent {
    user_agent::parse(&header(req, "user-agent").unwrap_or_default())
}

/// Adds `ua.device`, `ua.browser` and `ua.os`.
pub fn add_user_agent(ua: user_agent::UserAgent, attributes: &mut Attributes) {
    for (name, value) in [
        ("ua.device", ua.device),
        ("ua.browser", ua.browser),
        ("ua.os", ua.os),
    ] {
        attributes.insert(name.to_owned(), value.to_owned());
    }
}

/// Verifies a force token for `environment` with the force key derived from
/// `CLEAVE_SIGNING_KEY`, within the configured maximum lifetime.
///
/// # Errors
/// Why the token is refused (no key configured counts as refusal).
pub fn verify_force(
    config: &Config,
    environment: &str,
    token: &str,
    now_ms: i64,
) -> Result<Forced, ForceError> {
    let key = config
        .signing_keys
        .as_ref()
        .map_or(&[][..], |k| &k.force[..]);
    force::verify(key, token, environment, now_ms, config.force_max_ms)
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}
