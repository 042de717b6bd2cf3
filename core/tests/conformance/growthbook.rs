//! GrowthBook `evalCondition` cases (Mongo-style conditions).
//!
//! cleave compares request attributes as text, so a case maps only where that gives
//! GrowthBook's answer: scalars of the same JSON type on both sides, numeric `$gt`-family
//! comparisons, strict SemVer versions for `$v*`, no array or object attributes. `$ne` and
//! `$nin` also match a missing attribute (as in GrowthBook), so they map to "absent, or
//! `neq`/`not_in`". Everything else is listed as unmapped with the operator or shape that
//! has no cleave counterpart.

use std::path::Path;

use cleave_core::snapshot::{Condition, Operator};
use cleave_core::Attributes;
use serde_json::{json, Map, Value};

use super::{evaluate, rule, Case, Outcome};

type Mapped = Result<Condition, String>;

pub fn run(file: &Path) -> Vec<Case> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    doc["evalCondition"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let name = case[0].as_str().unwrap_or("").to_owned();
            let (condition, attrs, expected) = (&case[1], &case[2], case[3].as_bool());
            let outcome = match (map_top(condition, attrs), expected) {
                (_, None) => Outcome::Unmapped("expected result is not a boolean".into()),
                (Err(reason), _) => Outcome::Unmapped(reason),
                (Ok(cond), Some(expected)) => {
                    let (got, refused) = evaluate(&[rule(vec![cond])], &flatten(attrs));
                    if got == expected {
                        Outcome::Passed
                    } else {
                        Outcome::Failed(format!(
                            "got {got}, expected {expected} (refused: {refused:?})"
                        ))
                    }
                }
            };
            Case {
                suite: "growthbook/evalCondition".into(),
                name,
                outcome,
            }
        })
        .collect()
}

fn group(key: &str, parts: Vec<Condition>) -> Condition {
    match key {
        "any" => Condition {
            any: Some(parts),
            ..Condition::default()
        },
        _ => Condition {
            all: Some(parts),
            ..Condition::default()
        },
    }
}

fn not(inner: Condition) -> Condition {
    Condition {
        not: Some(Box::new(inner)),
        ..Condition::default()
    }
}

fn map_top(condition: &Value, attrs: &Value) -> Mapped {
    let Some(fields) = condition.as_object() else {
        return Err("condition is not an object".into());
    };
    let parts = fields
        .iter()
        .map(|(key, value)| match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let items = value.as_array().ok_or("logical operator without a list")?;
                if items.is_empty() && key != "$and" {
                    return Err(format!("empty {key} (cleave refuses an empty any-group)"));
                }
                let mapped = items
                    .iter()
                    .map(|c| map_top(c, attrs))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(match key.as_str() {
                    "$and" => group("all", mapped),
                    "$or" => group("any", mapped),
                    _ => not(group("any", mapped)),
                })
            }
            "$not" => Ok(not(map_top(value, attrs)?)),
            op if op.starts_with('$') => Err(format!("no cleave counterpart for top-level {op}")),
            path => map_attribute(path, value, lookup(attrs, path)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(group("all", parts))
}

/// The attribute at a dot path; `None` when missing or null.
fn lookup<'a>(attrs: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(attrs, |v, part| v.get(part))
        .filter(|v| !v.is_null())
}

fn map_attribute(path: &str, cond: &Value, actual: Option<&Value>) -> Mapped {
    if actual.is_some_and(|a| a.is_array() || a.is_object()) {
        return Err("array or object attribute (cleave attributes are scalars)".into());
    }
    match cond {
        Value::Object(ops) if ops.keys().all(|k| k.starts_with('$')) && !ops.is_empty() => {
            let parts = ops
                .iter()
                .map(|(op, v)| map_operator(path, op, v, actual))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(group("all", parts))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            same_type(cond, actual)?;
            Ok(Condition::test(path, Operator::Eq, cond.clone()))
        }
        Value::Null => Err("null condition (GrowthBook: equals null or missing)".into()),
        _ => Err("deep equality with an array or object".into()),
    }
}

/// cleave compares as text: `2` and `"2"` are equal there, not in GrowthBook.
fn same_type(expected: &Value, actual: Option<&Value>) -> Result<(), String> {
    let kind = |v: &Value| std::mem::discriminant(v);
    match actual {
        Some(a) if kind(a) != kind(expected) => {
            Err("comparison across JSON types (cleave compares text)".into())
        }
        _ => Ok(()),
    }
}

fn map_operator(path: &str, op: &str, v: &Value, actual: Option<&Value>) -> Mapped {
    let test = |operator: Operator, value: Value| Condition::test(path, operator, value);
    let absent_or = |c: Condition| group("any", vec![test(Operator::NotExists, Value::Null), c]);
    let scalars = |list: &Value| -> Result<Vec<Value>, String> {
        let items = list.as_array().ok_or("expected a list")?;
        for item in items {
            if !(item.is_string() || item.is_number() || item.is_boolean()) {
                return Err("non-scalar list member".into());
            }
            same_type(item, actual)?;
        }
        Ok(items.clone())
    };
    match op {
        "$eq" | "$ne" => {
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                return Err(format!("{op} with a non-scalar"));
            }
            same_type(v, actual)?;
            Ok(if op == "$eq" {
                test(Operator::Eq, v.clone())
            } else {
                absent_or(test(Operator::Neq, v.clone()))
            })
        }
        "$in" => Ok(test(Operator::In, Value::Array(scalars(v)?))),
        "$nin" => Ok(absent_or(test(Operator::NotIn, Value::Array(scalars(v)?)))),
        "$gt" | "$gte" | "$lt" | "$lte" => {
            if !v.is_number() || actual.is_some_and(|a| !a.is_number()) {
                return Err(
                    "ordering of strings (GrowthBook compares text; cleave numbers)".into(),
                );
            }
            if actual.is_none() {
                return Err("ordering against a missing attribute (JavaScript orders null as 0; in cleave it is false)".into());
            }
            let operator = Operator::from_name(op.trim_start_matches('$'));
            Ok(test(operator, v.clone()))
        }
        "$regex" | "$regexi" | "$notRegex" | "$notRegexi" => {
            let pattern = v.as_str().ok_or("regex is not a string")?;
            let pattern = if op.ends_with('i') {
                format!("(?i){pattern}")
            } else {
                pattern.to_owned()
            };
            let matches = test(Operator::Regex, json!(pattern));
            Ok(if op.starts_with("$not") {
                not(matches)
            } else {
                matches
            })
        }
        "$exists" => match v {
            Value::Bool(true) => Ok(test(Operator::Exists, Value::Null)),
            Value::Bool(false) => Ok(test(Operator::NotExists, Value::Null)),
            _ => Err("$exists without a boolean".into()),
        },
        "$not" => Ok(not(map_attribute(path, v, actual)?)),
        "$veq" | "$vne" | "$vgt" | "$vgte" | "$vlt" | "$vlte" => {
            let strict = |s: &str| semver::Version::parse(s).is_ok();
            let ok = v.as_str().is_some_and(strict)
                && actual.is_none_or(|a| a.as_str().is_some_and(strict));
            if !ok {
                return Err(
                    "version that is not strict SemVer 2.0 (GrowthBook pads and strips v)".into(),
                );
            }
            let name = format!("semver_{}", op.trim_start_matches("$v"));
            Ok(match op {
                "$vne" => not(test(Operator::SemverEq, v.clone())),
                _ => test(Operator::from_name(&name), v.clone()),
            })
        }
        other => Err(format!("no cleave counterpart for {other}")),
    }
}

/// Scalar leaves as text under their dot paths; nulls, arrays and objects are not attributes.
fn flatten(attrs: &Value) -> Attributes {
    fn walk(prefix: &str, value: &Map<String, Value>, out: &mut Attributes) {
        for (k, v) in value {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Object(inner) => walk(&path, inner, out),
                other => {
                    if let Some(text) = cleave_core::targeting::scalar_text(other) {
                        out.insert(path, text);
                    }
                }
            }
        }
    }
    let mut out = Attributes::new();
    if let Some(map) = attrs.as_object() {
        walk("", map, &mut out);
    }
    out
}
