//! The context schema (docs/contracts.md §4): named request attributes read from a query parameter,
//! header or cookie, converted to a declared type and defaulted, so targeting compares typed
//! values and a malformed input is caught instead of silently failing to match.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};
use thiserror::Error;

use crate::problems::Problems;
use crate::snapshot::{AttributeSource, AttributeType, ContextAttribute};
use crate::targeting::{is_reserved, parse_number, parse_semver, scalar_text, Attributes};
use crate::user_agent;

/// Why a request's context cannot be used (the decide API answers 400 with this).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContextError {
    #[error("missing required attribute {0:?}")]
    Missing(String),
    #[error("attribute {name:?}: {message}")]
    Invalid { name: String, message: String },
}

/// Longest value a schema attribute may take from a header, cookie or query parameter; the
/// decide API's limit on request attributes is the same.
pub const MAX_VALUE_BYTES: usize = 1024;

/// The attributes the schema produced, typed, for echoing back to the caller.
pub type TypedContext = Map<String, Value>;

/// Reads a raw value from the request: `(source, key) -> value`.
pub type Lookup<'a> = dyn Fn(AttributeSource, &str) -> Option<String> + 'a;

/// Applies `schema` to `attributes` in place. A value the request already supplied under the
/// attribute's name (`ctx.<name>`, `context`, POST `attributes`) wins over its source; then
/// the default applies. Converted values replace the raw text (`"1"` as a bool is `"true"`);
/// a `user_agent` attribute also yields `<name>.device`, `<name>.browser`, `<name>.os`.
///
/// `strict` (the decide API) turns a missing required attribute or a value that does not
/// convert into an error; otherwise (proxy mode) such an attribute is left out, so conditions
/// on it are simply false.
///
/// # Errors
/// The first missing or unconvertible attribute, in strict mode.
pub fn apply_schema(
    schema: &[ContextAttribute],
    attributes: &mut Attributes,
    lookup: &Lookup<'_>,
    strict: bool,
) -> Result<TypedContext, ContextError> {
    let mut typed = TypedContext::new();
    for attr in schema {
        if attr.kind == AttributeType::UserAgent {
            // Derived from the parsed value only, never supplied directly.
            for part in ["device", "browser", "os"] {
                attributes.remove(&format!("{}.{part}", attr.name));
            }
        }
        let raw = attributes
            .remove(&attr.name)
            .or_else(|| lookup(attr.source, &attr.key))
            .or_else(|| attr.default.as_ref().and_then(scalar_text));
        let Some(raw) = raw else {
            if strict && attr.required {
                return Err(ContextError::Missing(attr.name.clone()));
            }
            continue;
        };
        if raw.len() > MAX_VALUE_BYTES {
            if strict {
                return Err(ContextError::Invalid {
                    name: attr.name.clone(),
                    message: format!("value is longer than {MAX_VALUE_BYTES} bytes"),
                });
            }
            // Lenient (proxy mode): an oversized value is dropped, never trusted.
            continue;
        }
        match convert(attr.kind, &raw) {
            Ok(value) => {
                if let Some(ua) = value.user_agent {
                    for (part, text) in [
                        ("device", ua.device),
                        ("browser", ua.browser),
                        ("os", ua.os),
                    ] {
                        attributes.insert(format!("{}.{part}", attr.name), text.to_owned());
                    }
                }
                attributes.insert(attr.name.clone(), value.text);
                typed.insert(attr.name.clone(), value.typed);
            }
            Err(message) if strict => {
                return Err(ContextError::Invalid {
                    name: attr.name.clone(),
                    message,
                })
            }
            Err(_) => {}
        }
    }
    Ok(typed)
}

/// Checks the schema itself: valid, unique names outside the reserved namespaces, a source
/// key, and defaults that convert to the declared type.
pub(crate) fn check_schema(schema: &[ContextAttribute], problems: &mut Problems) {
    let mut seen = BTreeMap::new();
    for (i, attr) in schema.iter().enumerate() {
        let path = || format!("context_schema[{i}]");
        if attr.name.is_empty() || attr.name.len() > 64 || attr.name.contains(char::is_whitespace) {
            problems.push(
                format!("{}.name", path()),
                format!(
                    "attribute name {:?} must be 1-64 characters without spaces",
                    attr.name
                ),
            );
        }
        if is_reserved(&attr.name) || attr.name.starts_with("id.") {
            problems.push(
                format!("{}.name", path()),
                format!(
                    "{:?} is in a reserved namespace (cf., url., ua., id.)",
                    attr.name
                ),
            );
        }
        if let Some(first) = seen.insert(attr.name.as_str(), i) {
            problems.push(
                format!("{}.name", path()),
                format!(
                    "duplicate attribute {:?} (also context_schema[{first}])",
                    attr.name
                ),
            );
        }
        if attr.key.is_empty() {
            problems.push(format!("{}.key", path()), "source key is empty");
        }
        if let Some(default) = &attr.default {
            let converted = scalar_text(default)
                .ok_or_else(|| "expected a string, number or boolean".to_owned())
                .and_then(|text| convert(attr.kind, &text));
            if let Err(message) = converted {
                problems.push(
                    format!("{}.default", path()),
                    format!("default {default}: {message}"),
                );
            }
        }
    }
}

struct Converted {
    /// What targeting compares.
    text: String,
    /// What the decide response echoes.
    typed: Value,
    user_agent: Option<user_agent::UserAgent>,
}

fn convert(kind: AttributeType, raw: &str) -> Result<Converted, String> {
    let plain = |text: String, typed: Value| Converted {
        text,
        typed,
        user_agent: None,
    };
    match kind {
        AttributeType::String => Ok(plain(raw.to_owned(), Value::String(raw.to_owned()))),
        AttributeType::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(plain("true".into(), Value::Bool(true))),
            "false" | "0" | "no" | "off" => Ok(plain("false".into(), Value::Bool(false))),
            _ => Err(format!(
                "{raw:?} is not a boolean (true/false, 1/0, yes/no, on/off)"
            )),
        },
        AttributeType::Number => {
            let n = parse_number(raw).ok_or_else(|| format!("{raw:?} is not a number"))?;
            let number = Number::from_f64(n).ok_or_else(|| format!("{raw:?} is not finite"))?;
            // Integers compare as integers ("42", not "42.0") with `eq` and `in`.
            match integral(n) {
                Some(i) => Ok(plain(
                    itoa::Buffer::new().format(i).to_owned(),
                    Value::from(i),
                )),
                None => Ok(plain(number.to_string(), Value::Number(number))),
            }
        }
        AttributeType::Semver => {
            let version =
                parse_semver(raw).ok_or_else(|| format!("{raw:?} is not a SemVer 2.0 version"))?;
            Ok(plain(
                version.to_string(),
                Value::String(version.to_string()),
            ))
        }
        AttributeType::UserAgent => {
            let ua = user_agent::parse(raw);
            let typed =
                serde_json::json!({"device": ua.device, "browser": ua.browser, "os": ua.os});
            Ok(Converted {
                text: raw.to_owned(),
                typed,
                user_agent: Some(ua),
            })
        }
    }
}

/// `n` as an integer when it is one that an f64 holds exactly (below 2^53 in magnitude).
fn integral(n: f64) -> Option<i64> {
    const EXACT: f64 = 9.0e15;
    // The range check makes the conversion exact, so nothing is truncated.
    #[allow(clippy::cast_possible_truncation)]
    (n.fract() == 0.0 && n.abs() < EXACT).then_some(n as i64)
}

#[cfg(test)]
mod tests;
