//! One attribute test: the operator's value is checked and prepared once per snapshot (lists
//! sorted, numbers and timestamps parsed, regexes compiled), so a request only compares.

use std::cmp::Ordering;

use regex_lite::{Regex, RegexBuilder};
use serde_json::Value;

use crate::problems::Problems;
use crate::snapshot::Operator;
use crate::time::parse_rfc3339_ms;

/// Compiled-program limit: a pattern that needs more is refused when the snapshot is checked,
/// so no pattern can make a request slow. Matching is linear in the input either way:
/// `regex-lite` (from the `regex` project, chosen for its size in wasm) never backtracks
/// without bound.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Eq(String),
    Neq(String),
    In(TextSet),
    NotIn(TextSet),
    Contains(String),
    NotContains(String),
    StartsWith(String),
    EndsWith(String),
    Regex(Regex),
    Number(Order, f64),
    Semver(Order, semver::Version),
    Before(i64),
    After(i64),
    Exists,
    NotExists,
}

/// `actual <op> wanted` for the ordered operators.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Order {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Order {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Self::Eq => ordering.is_eq(),
            Self::Gt => ordering.is_gt(),
            Self::Gte => ordering.is_ge(),
            Self::Lt => ordering.is_lt(),
            Self::Lte => ordering.is_le(),
        }
    }
}

/// Prepares `operator` applied to `value`; records a problem (under `path()`) and returns
/// `None` when the value does not fit the operator.
pub(crate) fn prepare_test(
    operator: &Operator,
    value: &Value,
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Option<Test> {
    let value_path = || format!("{}.value", path());
    let scalar = |problems: &mut Problems| {
        let text = scalar_text(value);
        if text.is_none() {
            problems.push(
                value_path(),
                format!("expected a string, number or boolean, got {value}"),
            );
        }
        text
    };
    Some(match operator {
        Operator::Eq => Test::Eq(scalar(problems)?),
        Operator::Neq => Test::Neq(scalar(problems)?),
        Operator::Contains => Test::Contains(scalar(problems)?),
        Operator::NotContains => Test::NotContains(scalar(problems)?),
        Operator::StartsWith => Test::StartsWith(scalar(problems)?),
        Operator::EndsWith => Test::EndsWith(scalar(problems)?),
        Operator::In => Test::In(list(value, &value_path, problems)?),
        Operator::NotIn => Test::NotIn(list(value, &value_path, problems)?),
        Operator::Regex => Test::Regex(regex(value, &value_path, problems)?),
        Operator::Gt => Test::Number(Order::Gt, number(value, &value_path, problems)?),
        Operator::Gte => Test::Number(Order::Gte, number(value, &value_path, problems)?),
        Operator::Lt => Test::Number(Order::Lt, number(value, &value_path, problems)?),
        Operator::Lte => Test::Number(Order::Lte, number(value, &value_path, problems)?),
        Operator::SemverEq => Test::Semver(Order::Eq, version(value, &value_path, problems)?),
        Operator::SemverGt => Test::Semver(Order::Gt, version(value, &value_path, problems)?),
        Operator::SemverGte => Test::Semver(Order::Gte, version(value, &value_path, problems)?),
        Operator::SemverLt => Test::Semver(Order::Lt, version(value, &value_path, problems)?),
        Operator::SemverLte => Test::Semver(Order::Lte, version(value, &value_path, problems)?),
        Operator::Before => Test::Before(timestamp(value, &value_path, problems)?),
        Operator::After => Test::After(timestamp(value, &value_path, problems)?),
        Operator::Exists => Test::Exists,
        Operator::NotExists => Test::NotExists,
        Operator::Unknown(name) => {
            problems.push(
                format!("{}.operator", path()),
                format!("unknown operator {name:?}"),
            );
            return None;
        }
    })
}

impl Test {
    /// The test applied to an attribute's value (`None` when the request lacks it).
    pub(crate) fn holds(&self, actual: Option<&str>) -> bool {
        let Some(actual) = actual else {
            return matches!(self, Self::NotExists);
        };
        match self {
            Self::Eq(want) => actual == want,
            Self::Neq(want) => actual != want,
            Self::In(set) => set.contains(actual),
            Self::NotIn(set) => !set.contains(actual),
            Self::Contains(part) => actual.contains(part.as_str()),
            Self::NotContains(part) => !actual.contains(part.as_str()),
            Self::StartsWith(prefix) => actual.starts_with(prefix.as_str()),
            Self::EndsWith(suffix) => actual.ends_with(suffix.as_str()),
            Self::Regex(pattern) => pattern.is_match(actual),
            Self::Number(order, want) => parse_number(actual)
                .and_then(|have| have.partial_cmp(want))
                .is_some_and(|o| order.accepts(o)),
            Self::Semver(order, want) => parse_semver(actual)
                .is_some_and(|have| order.accepts(semver_precedence(&have, want))),
            Self::Before(at) => attribute_time_ms(actual).is_some_and(|t| t < *at),
            Self::After(at) => attribute_time_ms(actual).is_some_and(|t| t > *at),
            Self::Exists => true,
            Self::NotExists => false,
        }
    }
}

/// The string a scalar JSON value compares as: strings as themselves, others as JSON text.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A list's values, sorted and deduplicated, in one buffer: preparing a list costs two
/// allocations however long it is, and membership is a binary search.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextSet {
    text: String,
    /// `(start, end)` byte offsets into `text`, sorted by the text they mark.
    spans: Vec<(usize, usize)>,
}

impl TextSet {
    fn at(&self, (start, end): (usize, usize)) -> &str {
        self.text.get(start..end).unwrap_or("")
    }

    fn contains(&self, wanted: &str) -> bool {
        self.spans
            .binary_search_by(|span| self.at(*span).cmp(wanted))
            .is_ok()
    }
}

fn list(value: &Value, path: &dyn Fn() -> String, problems: &mut Problems) -> Option<TextSet> {
    let Value::Array(items) = value else {
        problems.push(path(), format!("expected a list, got {value}"));
        return None;
    };
    let mut set = TextSet {
        text: String::with_capacity(items.iter().map(|i| i.as_str().map_or(8, str::len)).sum()),
        spans: Vec::with_capacity(items.len()),
    };
    let mut all_scalar = true;
    for (i, item) in items.iter().enumerate() {
        let start = set.text.len();
        match item {
            Value::String(s) => set.text.push_str(s),
            Value::Number(n) => set.text.push_str(&n.to_string()),
            Value::Bool(b) => set.text.push_str(if *b { "true" } else { "false" }),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                all_scalar = false;
                problems.push(
                    format!("{}[{i}]", path()),
                    format!("expected a string, number or boolean, got {item}"),
                );
            }
        }
        set.spans.push((start, set.text.len()));
    }
    let mut spans = std::mem::take(&mut set.spans);
    crate::order::sort_by(&mut spans, |a, b| set.at(*a).cmp(set.at(*b)));
    spans.dedup_by(|a, b| set.at(*a) == set.at(*b));
    set.spans = spans;
    all_scalar.then_some(set)
}

fn regex(value: &Value, path: &dyn Fn() -> String, problems: &mut Problems) -> Option<Regex> {
    let Some(pattern) = value.as_str() else {
        problems.push(
            path(),
            format!("expected a regex pattern string, got {value}"),
        );
        return None;
    };
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| problems.push(path(), format!("invalid regex {pattern:?}: {e}")))
        .ok()
}

fn number(value: &Value, path: &dyn Fn() -> String, problems: &mut Problems) -> Option<f64> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    };
    if number.is_none() {
        problems.push(path(), format!("expected a number, got {value}"));
    }
    number
}

fn version(
    value: &Value,
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Option<semver::Version> {
    let parsed = value.as_str().and_then(parse_semver);
    if parsed.is_none() {
        problems.push(
            path(),
            format!("expected a SemVer 2.0 version such as \"1.4.0\", got {value}"),
        );
    }
    parsed
}

fn timestamp(value: &Value, path: &dyn Fn() -> String, problems: &mut Problems) -> Option<i64> {
    let parsed = value.as_str().and_then(parse_rfc3339_ms);
    if parsed.is_none() {
        problems.push(
            path(),
            format!("expected an RFC 3339 timestamp, got {value}"),
        );
    }
    parsed
}

/// Parses a finite number; query parameters arrive as strings.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses a SemVer 2.0 version (surrounding whitespace allowed, nothing else).
pub(crate) fn parse_semver(text: &str) -> Option<semver::Version> {
    semver::Version::parse(text.trim()).ok()
}

/// SemVer 2.0 precedence: build metadata does not count (the `semver` crate's `Ord` orders
/// by it too, to be total).
fn semver_precedence(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// An attribute time: RFC 3339, or integer epoch milliseconds.
fn attribute_time_ms(text: &str) -> Option<i64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .or_else(|| parse_rfc3339_ms(text))
}
