//! Targeting (DESIGN §4): conditions are checked and prepared once per snapshot, then evaluated
//! per request against string attributes without allocating.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::problems::Problems;
use crate::snapshot::{Condition, Operator, Rule};
use crate::time::parse_rfc3339_ms;

/// Request attributes by name. Values are strings: query parameters always are, and JSON
/// context values that are not strings are kept as their JSON text.
pub type Attributes = BTreeMap<String, String>;

/// Attribute namespaces only the edge may fill in; request-supplied names in them are ignored.
pub const RESERVED_NAMESPACES: [&str; 3] = ["cf.", "url.", "ua."];

/// Whether `name` lies in a namespace the request cannot set.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMESPACES.iter().any(|ns| name.starts_with(ns))
}

/// A condition ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct PreparedCondition {
    attribute: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Eq(String),
    Neq(String),
    /// Sorted, so membership is a binary search.
    In(Vec<String>),
    NotIn(Vec<String>),
    Contains(String),
    NotContains(String),
    StartsWith(String),
    EndsWith(String),
    Compare(NumberOrder, f64),
    Before(i64),
    After(i64),
    Exists,
    NotExists,
}

#[derive(Debug, Clone, Copy)]
enum NumberOrder {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A rule (AND of conditions).
pub(crate) type PreparedRule = Vec<PreparedCondition>;

/// Prepares OR-ed `rules`, recording every problem under `path`.
pub(crate) fn prepare_rules(
    rules: &[Rule],
    path: &str,
    problems: &mut Problems,
) -> Vec<PreparedRule> {
    rules
        .iter()
        .enumerate()
        .map(|(r, rule)| {
            rule.conditions
                .iter()
                .enumerate()
                .filter_map(|(c, cond)| {
                    // Built only when a problem is found.
                    let at = || format!("{path}.targeting[{r}].conditions[{c}]");
                    prepare(cond, &at, problems)
                })
                .collect()
        })
        .collect()
}

/// True when any rule matches; an empty rule list matches everyone.
pub(crate) fn matches(rules: &[PreparedRule], attributes: &Attributes) -> bool {
    rules.is_empty()
        || rules
            .iter()
            .any(|rule| rule.iter().all(|cond| cond.holds(attributes)))
}

fn prepare(
    cond: &Condition,
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Option<PreparedCondition> {
    if cond.attribute.is_empty() {
        problems.push(format!("{}.attribute", path()), "attribute name is empty");
    }
    let value = &cond.value;
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
    let test = match &cond.operator {
        Operator::Eq => Test::Eq(scalar(problems)?),
        Operator::Neq => Test::Neq(scalar(problems)?),
        Operator::Contains => Test::Contains(scalar(problems)?),
        Operator::NotContains => Test::NotContains(scalar(problems)?),
        Operator::StartsWith => Test::StartsWith(scalar(problems)?),
        Operator::EndsWith => Test::EndsWith(scalar(problems)?),
        Operator::In => Test::In(list(value, &value_path, problems)?),
        Operator::NotIn => Test::NotIn(list(value, &value_path, problems)?),
        Operator::Gt => number_test(NumberOrder::Gt, value, &value_path, problems)?,
        Operator::Gte => number_test(NumberOrder::Gte, value, &value_path, problems)?,
        Operator::Lt => number_test(NumberOrder::Lt, value, &value_path, problems)?,
        Operator::Lte => number_test(NumberOrder::Lte, value, &value_path, problems)?,
        Operator::Before => Test::Before(timestamp(value, &value_path, problems)?),
        Operator::After => Test::After(timestamp(value, &value_path, problems)?),
        Operator::Exists => Test::Exists,
        Operator::NotExists => Test::NotExists,
        Operator::Regex
        | Operator::SemverEq
        | Operator::SemverGt
        | Operator::SemverGte
        | Operator::SemverLt
        | Operator::SemverLte => {
            problems.push(
                format!("{}.operator", path()),
                format!(
                    "operator {} is not supported by this engine",
                    cond.operator.name()
                ),
            );
            return None;
        }
        Operator::Unknown(name) => {
            problems.push(
                format!("{}.operator", path()),
                format!("unknown operator {name:?}"),
            );
            return None;
        }
    };
    Some(PreparedCondition {
        attribute: cond.attribute.clone(),
        test,
    })
}

impl PreparedCondition {
    fn holds(&self, attributes: &Attributes) -> bool {
        let Some(actual) = attributes.get(&self.attribute) else {
            return matches!(self.test, Test::NotExists);
        };
        match &self.test {
            Test::Eq(want) => actual == want,
            Test::Neq(want) => actual != want,
            Test::In(set) => set.binary_search(actual).is_ok(),
            Test::NotIn(set) => set.binary_search(actual).is_err(),
            Test::Contains(part) => actual.contains(part.as_str()),
            Test::NotContains(part) => !actual.contains(part.as_str()),
            Test::StartsWith(prefix) => actual.starts_with(prefix.as_str()),
            Test::EndsWith(suffix) => actual.ends_with(suffix.as_str()),
            Test::Compare(order, want) => parse_number(actual).is_some_and(|have| match order {
                NumberOrder::Gt => have > *want,
                NumberOrder::Gte => have >= *want,
                NumberOrder::Lt => have < *want,
                NumberOrder::Lte => have <= *want,
            }),
            Test::Before(at) => attribute_time_ms(actual).is_some_and(|t| t < *at),
            Test::After(at) => attribute_time_ms(actual).is_some_and(|t| t > *at),
            Test::Exists => true,
            Test::NotExists => false,
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

fn list(value: &Value, path: &dyn Fn() -> String, problems: &mut Problems) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        problems.push(path(), format!("expected a list, got {value}"));
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut all_scalar = true;
    for (i, item) in items.iter().enumerate() {
        match scalar_text(item) {
            Some(text) => out.push(text),
            None => {
                all_scalar = false;
                problems.push(
                    format!("{}[{i}]", path()),
                    format!("expected a string, number or boolean, got {item}"),
                );
            }
        }
    }
    out.sort();
    out.dedup();
    all_scalar.then_some(out)
}

fn number_test(
    order: NumberOrder,
    value: &Value,
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Option<Test> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    };
    if number.is_none() {
        problems.push(path(), format!("expected a number, got {value}"));
    }
    Some(Test::Compare(order, number?))
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
fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// An attribute time: RFC 3339, or integer epoch milliseconds.
fn attribute_time_ms(text: &str) -> Option<i64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .or_else(|| parse_rfc3339_ms(text))
}

#[cfg(test)]
mod tests;
