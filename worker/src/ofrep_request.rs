//! Reading an OFREP evaluation request (docs/contracts.md §9): which environment and flag the
//! path names, and the evaluation context of the body. Pure, so every rule is unit-tested
//! natively.

use cleave_core::keys::is_valid_key;
use cleave_core::{Attributes, Units};
use serde_json::{Map, Value};

use crate::decide_request::{attributes_from_map, insert_unit, limits, BadRequest};

/// What an OFREP path names: the environment (`None` = `CLEAVE_ENV`) and, for a single-flag
/// evaluation, the flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfrepPath<'a> {
    pub environment: Option<&'a str>,
    /// `None` for the bulk evaluation.
    pub key: Option<&'a str>,
}

const EVALUATE: &str = "ofrep/v1/evaluate/flags";

/// The OFREP call `path` names: `/_cleave/ofrep/v1/evaluate/flags[/{key}]` or
/// `/_cleave/env/{env}/ofrep/v1/evaluate/flags[/{key}]`. `None` for any other path.
pub fn ofrep_path(path: &str) -> Option<OfrepPath<'_>> {
    let rest = path.strip_prefix("/_cleave/")?;
    let (environment, rest) = match rest.strip_prefix("env/") {
        Some(scoped) => {
            let (env, rest) = scoped.split_once('/')?;
            (Some(env), rest)
        }
        None => (None, rest),
    };
    let tail = rest.strip_prefix(EVALUATE)?;
    let key = match tail {
        "" => None,
        _ => Some(tail.strip_prefix('/').filter(|k| !k.is_empty())?),
    };
    Some(OfrepPath { environment, key })
}

/// Why an evaluation request is refused, as OFREP codes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextProblem {
    /// The body is not JSON.
    Parse(String),
    /// The body is JSON but its context is not one cleave can use.
    Invalid(String),
}

impl ContextProblem {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Parse(_) => "PARSE_ERROR",
            Self::Invalid(_) => "INVALID_CONTEXT",
        }
    }

    pub fn details(&self) -> &str {
        match self {
            Self::Parse(m) | Self::Invalid(m) => m,
        }
    }
}

/// An evaluation context: `targetingKey` as the `user` unit, the other fields as request
/// attributes (reserved namespaces dropped, as for the decide API).
#[derive(Debug, Default, PartialEq)]
pub struct OfrepContext {
    pub units: Units,
    pub attributes: Attributes,
    /// The context as sent, in canonical JSON (keys sorted), which bulk answers' `ETag`
    /// covers.
    pub canonical: String,
}

/// Parses an evaluation request body `{"context": {...}}`.
///
/// # Errors
/// [`ContextProblem`] saying what is wrong.
pub fn context_of(body: &[u8]) -> Result<OfrepContext, ContextProblem> {
    if body.len() > limits::BODY_BYTES {
        return Err(ContextProblem::Invalid(format!(
            "request body is longer than {} bytes",
            limits::BODY_BYTES
        )));
    }
    std::str::from_utf8(body)
        .map_err(|_| ContextProblem::Parse("request body is not UTF-8".to_owned()))?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ContextProblem::Parse(format!("request body is not JSON: {e}")))?;
    let Value::Object(top) = value else {
        return Err(ContextProblem::Invalid(
            "request body must be a JSON object with a \"context\" object".to_owned(),
        ));
    };
    let context = top
        .into_iter()
        .find_map(|(k, v)| (k == "context").then_some(v));
    let context: Map<String, Value> = match context {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(ContextProblem::Invalid(
                "context must be a JSON object".to_owned(),
            ))
        }
    };
    // serde_json's map keeps keys sorted: this is canonical.
    let canonical = serde_json::to_string(&context).unwrap_or_default();
    let mut units = Units::new();
    let mut rest = Map::new();
    for (name, value) in context {
        if name != "targetingKey" {
            rest.insert(name, value);
            continue;
        }
        match value {
            Value::Null => {}
            Value::String(key) if key.is_empty() => {}
            Value::String(key) => insert_unit(&mut units, "user", &key).map_err(invalid)?,
            _ => {
                return Err(ContextProblem::Invalid(
                    "targetingKey must be a string".to_owned(),
                ))
            }
        }
    }
    let attributes = attributes_from_map(rest).map_err(invalid)?;
    Ok(OfrepContext {
        units,
        attributes,
        canonical,
    })
}

fn invalid(BadRequest(message): BadRequest) -> ContextProblem {
    ContextProblem::Invalid(message)
}

/// Whether `key` could name a flag or experiment at all.
pub fn is_flag_key(key: &str) -> bool {
    is_valid_key(key)
}

/// Whether an `If-None-Match` header value lists `etag` (or is `*`).
pub fn none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_bases_and_both_calls_are_recognised() {
        let at = |p| ofrep_path(p).map(|o| (o.environment, o.key));
        assert_eq!(at("/_cleave/ofrep/v1/evaluate/flags"), Some((None, None)));
        assert_eq!(
            at("/_cleave/ofrep/v1/evaluate/flags/new-nav"),
            Some((None, Some("new-nav")))
        );
        assert_eq!(
            at("/_cleave/env/staging/ofrep/v1/evaluate/flags"),
            Some((Some("staging"), None))
        );
        assert_eq!(
            at("/_cleave/env/staging/ofrep/v1/evaluate/flags/a.b"),
            Some((Some("staging"), Some("a.b")))
        );
        for other in [
            "/_cleave/ofrep/v1/evaluate/flags/",
            "/_cleave/ofrep/v1/evaluate/flagsx",
            "/_cleave/v1/decide",
            "/_cleave/env/staging",
            "/ofrep/v1/evaluate/flags",
        ] {
            assert_eq!(at(other), None, "{other}");
        }
    }

    #[test]
    fn the_context_becomes_a_unit_and_attributes() {
        let c = context_of(
            br#"{"context": {"targetingKey": "u-1", "plan": "pro", "age": 30, "cf.country": "XX", "beta": true}}"#,
        )
        .unwrap();
        assert_eq!(c.units.get("user").map(String::as_str), Some("u-1"));
        assert_eq!(c.attributes.get("plan").map(String::as_str), Some("pro"));
        assert_eq!(c.attributes.get("age").map(String::as_str), Some("30"));
        assert_eq!(c.attributes.get("beta").map(String::as_str), Some("true"));
        assert!(
            !c.attributes.contains_key("cf.country"),
            "reserved: the edge's own"
        );
        assert!(!c.attributes.contains_key("targetingKey"));
        assert_eq!(
            c.canonical,
            r#"{"age":30,"beta":true,"cf.country":"XX","plan":"pro","targetingKey":"u-1"}"#
        );
        assert!(context_of(br#"{"context": {}}"#).unwrap().units.is_empty());
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        assert_eq!(context_of(b"{nope").unwrap_err().code(), "PARSE_ERROR");
        for (body, says) in [
            (&br#"[1]"#[..], "JSON object"),
            (br#"{"context": 3}"#, "context must be"),
            (
                br#"{"context": {"targetingKey": 7}}"#,
                "targetingKey must be a string",
            ),
            (
                br#"{"context": {"targetingKey": "u", "": 1}}"#,
                "attribute name",
            ),
        ] {
            let problem = context_of(body).unwrap_err();
            assert_eq!(problem.code(), "INVALID_CONTEXT");
            assert!(problem.details().contains(says), "{}", problem.details());
        }
    }

    #[test]
    fn if_none_match_reads_lists_and_weak_tags() {
        assert!(none_match("\"a\", \"b\"", "\"b\""));
        assert!(none_match("W/\"b\"", "\"b\""));
        assert!(none_match("*", "\"b\""));
        assert!(!none_match("\"a\"", "\"b\""));
    }
}
