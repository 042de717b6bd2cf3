//! Parsing a decide request (GET query or POST JSON, docs/contracts.md §5) into core inputs. Pure: no
//! worker types, so every rule here is unit-tested natively.

use std::collections::BTreeSet;

use cleave_core::exposure::Expose;
use cleave_core::keys::is_valid_key;
use cleave_core::targeting::{is_reserved, scalar_text};
use cleave_core::{Attributes, Units};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Input bounds; a request over one is refused with a 400 naming it.
pub mod limits {
    pub const QUERY_BYTES: usize = 8 * 1024;
    pub const BODY_BYTES: usize = 64 * 1024;
    pub const CONTEXT_BYTES: usize = 8 * 1024;
    pub const UNITS: usize = 16;
    pub const UNIT_ID_BYTES: usize = 256;
    pub const ATTRIBUTES: usize = 64;
    pub const ATTRIBUTE_NAME_BYTES: usize = 64;
    pub const ATTRIBUTE_VALUE_BYTES: usize = cleave_core::context::MAX_VALUE_BYTES;
    pub const EXPERIMENT_FILTER: usize = 256;
    /// The `url` a decision is asked for.
    pub const URL_BYTES: usize = 2 * 1024;
    /// Force and sticky tokens; a sticky token for 32 experiments stays under 2 KiB.
    pub const TOKEN_BYTES: usize = 4 * 1024;
    /// Arrays and objects nested inside one context attribute.
    pub const CONTEXT_DEPTH: usize = 8;
}

/// What a decide call asks for.
#[derive(Debug, Default, PartialEq)]
pub struct DecideRequest {
    pub units: Units,
    /// `None` = the worker's `CLEAVE_ENV`.
    pub environment: Option<String>,
    pub attributes: Attributes,
    /// `None` = all experiments; `Some(empty)` = none.
    pub experiments: Option<BTreeSet<String>>,
    pub explain: bool,
    pub force: Option<String>,
    /// The visitor's sticky token from an earlier decision.
    pub sticky: Option<String>,
    /// The page the decision is for: only experiments whose routes include it apply.
    pub url: Option<PageUrl>,
    /// Whether the assignments are exposures (`expose=all|none`; by default a call naming
    /// experiments records them and a bulk call records nothing).
    pub expose: Expose,
}

/// A page a decision is asked for: `host` is `None` for a bare path (the worker's own host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageUrl {
    pub host: Option<String>,
    pub path: String,
}

/// Parses `url=`: an absolute http(s) URL or a path starting with `/`.
fn page_url(text: &str) -> Result<PageUrl, BadRequest> {
    if text.len() > limits::URL_BYTES {
        return Err(bad(format!(
            "url is longer than {} bytes",
            limits::URL_BYTES
        )));
    }
    if text.starts_with('/') && !text.starts_with("//") {
        let path = text.split(['?', '#']).next().unwrap_or(text);
        return Ok(PageUrl {
            host: None,
            path: path.to_owned(),
        });
    }
    let parsed = parse_absolute(text).filter(|(scheme, host, _)| {
        matches!(scheme.as_str(), "http:" | "https:") && !host.is_empty()
    });
    match parsed {
        Some((_, host, path)) => Ok(PageUrl {
            host: Some(host),
            path,
        }),
        None => Err(bad(format!(
            "url {text:?} is neither an http(s) URL nor a path starting with /"
        ))),
    }
}

/// (scheme with its colon, host, path) by the WHATWG URL rules. In the worker that is the
/// runtime's own `URL`, so no URL parser (and no IDNA tables) is compiled into the bundle;
/// natively (tests, fuzzing) the `url` crate, which implements the same standard.
#[cfg(target_arch = "wasm32")]
fn parse_absolute(text: &str) -> Option<(String, String, String)> {
    let u = web_sys::Url::new(text).ok()?;
    Some((u.protocol(), u.hostname(), u.pathname()))
}

#[cfg(not(target_arch = "wasm32"))]
fn parse_absolute(text: &str) -> Option<(String, String, String)> {
    let u = url::Url::parse(text).ok()?;
    let host = u.host_str().unwrap_or_default().to_owned();
    Some((format!("{}:", u.scheme()), host, u.path().to_owned()))
}

/// A request the API refuses with 400; the message says what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRequest(pub String);

fn bad(message: impl Into<String>) -> BadRequest {
    BadRequest(message.into())
}

/// Parses a GET query string (without the leading `?`).
///
/// # Errors
/// [`BadRequest`] naming the offending parameter, or when no identifier is given.
pub fn from_query(query: &str) -> Result<DecideRequest, BadRequest> {
    parse_query(query).and_then(require_identifier)
}

/// Parses a GET query string without requiring an identifier.
///
/// # Errors
/// [`BadRequest`] naming the offending parameter.
pub fn parse_query(query: &str) -> Result<DecideRequest, BadRequest> {
    if query.len() > limits::QUERY_BYTES {
        return Err(bad(format!(
            "query string is longer than {} bytes",
            limits::QUERY_BYTES
        )));
    }
    let mut req = DecideRequest::default();
    let mut user_key = None;
    let mut ctx = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if let Some(unit_type) = name.strip_prefix("id.") {
            insert_unit(&mut req.units, unit_type, &value)?;
        } else if let Some(attr) = name.strip_prefix("ctx.") {
            ctx.push((attr.to_owned(), value.into_owned()));
        } else {
            match name.as_ref() {
                "user_key" => user_key = Some(value.into_owned()),
                "env" => req.environment = Some(environment(&value)?),
                "context" => req.attributes = context_object(&value)?,
                "experiments" => req.experiments = Some(experiment_filter(value.split(','))?),
                "explain" => req.explain = matches!(value.as_ref(), "1" | "true"),
                "force" => req.force = Some(token("force", value.into_owned())?),
                "sticky" => req.sticky = Some(token("sticky", value.into_owned())?),
                "url" => req.url = Some(page_url(&value)?),
                "expose" => req.expose = Expose::parse(&value).map_err(bad)?,
                _ => {}
            }
        }
    }
    if let Some(user) = user_key {
        if !req.units.contains_key("user") {
            insert_unit(&mut req.units, "user", &user)?;
        }
    }
    // ctx.<name> wins over the same name inside `context`.
    for (name, value) in ctx {
        insert_attribute(&mut req.attributes, &name, value)?;
    }
    Ok(req)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    #[serde(default)]
    units: Map<String, Value>,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    attributes: Option<Value>,
    #[serde(default)]
    experiments: Option<Vec<String>>,
    #[serde(default)]
    explain: bool,
    #[serde(default)]
    force: Option<String>,
    #[serde(default)]
    sticky: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    expose: Option<String>,
}

/// Parses a POST JSON body.
///
/// # Errors
/// [`BadRequest`] for malformed JSON, wrong shapes or limits exceeded, or when no identifier
/// is given.
pub fn from_json(body: &[u8]) -> Result<DecideRequest, BadRequest> {
    parse_json(body).and_then(require_identifier)
}

/// Parses a POST JSON body without requiring an identifier.
///
/// # Errors
/// [`BadRequest`] for malformed JSON, wrong shapes or limits exceeded.
pub fn parse_json(body: &[u8]) -> Result<DecideRequest, BadRequest> {
    if body.len() > limits::BODY_BYTES {
        return Err(bad(format!(
            "request body is longer than {} bytes",
            limits::BODY_BYTES
        )));
    }
    let parsed: DecideBody =
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON body: {e}")))?;
    let mut req = DecideRequest {
        explain: parsed.explain,
        force: parsed.force.map(|t| token("force", t)).transpose()?,
        sticky: parsed.sticky.map(|t| token("sticky", t)).transpose()?,
        url: parsed.url.as_deref().map(page_url).transpose()?,
        expose: match parsed.expose.as_deref() {
            Some(text) => Expose::parse(text).map_err(bad)?,
            None => Expose::default(),
        },
        ..DecideRequest::default()
    };
    for (unit_type, value) in &parsed.units {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(bad(format!("units.{unit_type} must be a string"))),
        };
        insert_unit(&mut req.units, unit_type, &text)?;
    }
    if let Some(env) = parsed.env {
        req.environment = Some(environment(&env)?);
    }
    match parsed.attributes {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => req.attributes = attributes_from_map(map)?,
        Some(_) => return Err(bad("attributes must be a JSON object")),
    }
    if let Some(list) = parsed.experiments {
        req.experiments = Some(experiment_filter(list.iter().map(String::as_str))?);
    }
    Ok(req)
}

/// A confirmation (`POST /_cleave/v1/exposures`) must name what it confirms.
///
/// # Errors
/// [`BadRequest`] when `experiments` is missing or empty.
pub fn naming_experiments(req: DecideRequest) -> Result<DecideRequest, BadRequest> {
    if req.experiments.as_ref().is_none_or(BTreeSet::is_empty) {
        return Err(bad(
            "experiments: name the experiments whose variants were rendered",
        ));
    }
    Ok(req)
}

/// A decision needs at least one unit: named by the caller or read from an identity source.
///
/// # Errors
/// [`BadRequest`] when the request has no unit at all.
pub fn check_identifier(req: &DecideRequest) -> Result<(), BadRequest> {
    if req.units.is_empty() {
        return Err(bad(
            "no identifier: pass id.<type>=<value> (or user_key=<value>)",
        ));
    }
    Ok(())
}

fn require_identifier(req: DecideRequest) -> Result<DecideRequest, BadRequest> {
    check_identifier(&req).map(|()| req)
}

pub(crate) fn insert_unit(
    units: &mut Units,
    unit_type: &str,
    value: &str,
) -> Result<(), BadRequest> {
    if !is_valid_key(unit_type) {
        return Err(bad(cleave_core::keys::key_message("unit type", unit_type)));
    }
    if value.len() > limits::UNIT_ID_BYTES {
        return Err(bad(format!(
            "id.{unit_type} is longer than {} bytes",
            limits::UNIT_ID_BYTES
        )));
    }
    if value.is_empty() {
        return Ok(());
    }
    if units.len() >= limits::UNITS && !units.contains_key(unit_type) {
        return Err(bad(format!("more than {} unit ids", limits::UNITS)));
    }
    units.insert(unit_type.to_owned(), value.to_owned());
    Ok(())
}

fn environment(name: &str) -> Result<String, BadRequest> {
    if is_valid_key(name) {
        Ok(name.to_owned())
    } else {
        Err(bad(cleave_core::keys::key_message("env", name)))
    }
}

/// Parses the `context` parameter: a JSON object of attributes.
fn context_object(text: &str) -> Result<Attributes, BadRequest> {
    if text.len() > limits::CONTEXT_BYTES {
        return Err(bad(format!(
            "context is longer than {} bytes",
            limits::CONTEXT_BYTES
        )));
    }
    match serde_json::from_slice(text.as_bytes()) {
        Ok(Value::Object(map)) => attributes_from_map(map),
        Ok(_) => Err(bad("malformed context: expected a JSON object")),
        Err(e) => Err(bad(format!("malformed context: {e}"))),
    }
}

/// A force or sticky token, refused when longer than any the worker issues.
fn token(kind: &str, value: String) -> Result<String, BadRequest> {
    if value.len() > limits::TOKEN_BYTES {
        return Err(bad(format!(
            "{kind} token is longer than {} bytes",
            limits::TOKEN_BYTES
        )));
    }
    Ok(value)
}

/// Levels of arrays and objects in `value` (a scalar is 0).
fn depth(value: &Value) -> usize {
    let inner = match value {
        Value::Array(items) => items.iter().map(depth).max(),
        Value::Object(map) => map.values().map(depth).max(),
        _ => return 0,
    };
    1 + inner.unwrap_or(0)
}

pub(crate) fn attributes_from_map(map: Map<String, Value>) -> Result<Attributes, BadRequest> {
    let mut attributes = Attributes::new();
    for (name, value) in map {
        if depth(&value) > limits::CONTEXT_DEPTH {
            return Err(bad(format!(
                "attribute {name:?} nests deeper than {} levels",
                limits::CONTEXT_DEPTH
            )));
        }
        // A non-string value compares by its JSON text; null means "not given".
        let text = match &value {
            Value::Null => continue,
            Value::Array(_) | Value::Object(_) => value.to_string(),
            scalar => scalar_text(scalar).unwrap_or_default(),
        };
        insert_attribute(&mut attributes, &name, text)?;
    }
    Ok(attributes)
}

fn insert_attribute(
    attributes: &mut Attributes,
    name: &str,
    value: String,
) -> Result<(), BadRequest> {
    if name.is_empty() || name.len() > limits::ATTRIBUTE_NAME_BYTES {
        return Err(bad(format!(
            "attribute name {name:?} must be 1 to {} bytes",
            limits::ATTRIBUTE_NAME_BYTES
        )));
    }
    if value.len() > limits::ATTRIBUTE_VALUE_BYTES {
        return Err(bad(format!(
            "attribute {name:?} is longer than {} bytes",
            limits::ATTRIBUTE_VALUE_BYTES
        )));
    }
    // Reserved namespaces belong to the edge; a request cannot set them.
    if is_reserved(name) {
        return Ok(());
    }
    if attributes.len() >= limits::ATTRIBUTES && !attributes.contains_key(name) {
        return Err(bad(format!("more than {} attributes", limits::ATTRIBUTES)));
    }
    attributes.insert(name.to_owned(), value);
    Ok(())
}

fn experiment_filter<'a>(
    keys: impl Iterator<Item = &'a str>,
) -> Result<BTreeSet<String>, BadRequest> {
    let mut set = BTreeSet::new();
    for key in keys.map(str::trim).filter(|k| !k.is_empty()) {
        if set.len() >= limits::EXPERIMENT_FILTER {
            return Err(bad(format!(
                "more than {} experiments in the filter",
                limits::EXPERIMENT_FILTER
            )));
        }
        set.insert(key.to_owned());
    }
    Ok(set)
}

#[cfg(test)]
mod tests;
