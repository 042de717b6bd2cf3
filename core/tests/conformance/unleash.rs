//! Unleash client-specification: features, strategies and constraints.
//!
//! A feature is on when enabled and any strategy holds (no strategies: always). A `default`
//! strategy is its constraints AND-ed; `userWithId` adds `userId in [...]`. Each strategy
//! becomes one cleave rule. Constraint mapping: `IN` -> `in`; `NOT_IN` -> absent or
//! `not_in` (Unleash treats a missing field as "not in"); `STR_*` with several values ->
//! `any` of one test per value, `caseInsensitive` -> an anchored `(?i)` regex of the escaped
//! value; `NUM_EQ` -> `gte` and `lte`; `NUM_*`, `DATE_*`, `SEMVER_*`, `REGEX` -> the same
//! cleave operator; `inverted` -> `not`. `currentTime` defaults to a fixed present-day instant.

use std::path::Path;

use cleave_core::snapshot::{Condition, Operator, Rule};
use cleave_core::Attributes;
use serde_json::{json, Value};

use super::{evaluate, rule, Case, Outcome};

pub fn run(dir: &Path) -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let suite = format!("unleash/{}", file.file_name().unwrap().to_string_lossy());
        let features = doc["state"]["features"].as_array().unwrap();
        for test in doc["tests"].as_array().unwrap() {
            let toggle = test["toggleName"].as_str().unwrap();
            let expected = test["expectedResult"].as_bool().unwrap();
            let feature = features.iter().find(|f| f["name"] == toggle);
            let outcome = match feature.map(feature_rules) {
                None => Outcome::Unmapped("toggle not defined in the state".into()),
                Some(Err(reason)) => Outcome::Unmapped(reason),
                Some(Ok(None)) => verdict(false, expected, None),
                Some(Ok(Some(rules))) => {
                    let (got, refused) = evaluate(&rules, &attributes(&test["context"]));
                    verdict(got, expected, refused)
                }
            };
            out.push(Case {
                suite: suite.clone(),
                name: test["description"].as_str().unwrap_or(toggle).to_owned(),
                outcome,
            });
        }
    }
    out
}

fn verdict(got: bool, expected: bool, refused: Option<String>) -> Outcome {
    if got == expected {
        Outcome::Passed
    } else {
        Outcome::Failed(format!(
            "got {got}, expected {expected} (refused: {refused:?})"
        ))
    }
}

/// `None` when the feature is disabled outright.
fn feature_rules(feature: &Value) -> Result<Option<Vec<Rule>>, String> {
    if feature["enabled"] != json!(true) {
        return Ok(None);
    }
    let strategies = feature["strategies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if strategies.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mut rules = Vec::new();
    for strategy in &strategies {
        let mut conditions = Vec::new();
        match strategy["name"].as_str() {
            Some("default") => {}
            Some("userWithId") => {
                let ids: Vec<Value> = strategy["parameters"]["userIds"]
                    .as_str()
                    .unwrap_or("")
                    .split(',')
                    .map(|s| json!(s.trim()))
                    .collect();
                conditions.push(Condition::test("userId", Operator::In, Value::Array(ids)));
            }
            Some(other) => {
                return Err(format!(
                    "strategy {other:?} uses Unleash's own rollout hashing"
                ))
            }
            None => return Err("strategy without a name".into()),
        }
        for c in strategy["constraints"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            conditions.push(constraint(&c));
        }
        rules.push(rule(conditions));
    }
    Ok(Some(rules))
}

fn constraint(c: &Value) -> Condition {
    let name = c["contextName"].as_str().unwrap_or("");
    let values: Vec<Value> = match (&c["values"], &c["value"]) {
        (Value::Array(vs), _) => vs.clone(),
        (_, Value::Null) => Vec::new(),
        (_, v) => vec![v.clone()],
    };
    let single = values.first().cloned().unwrap_or(Value::Null);
    let insensitive = c["caseInsensitive"] == json!(true);
    let test = |op: Operator, v: Value| Condition::test(name, op, v);
    let per_value = |make: &dyn Fn(&str) -> Condition| Condition {
        any: Some(
            values
                .iter()
                .map(|v| make(v.as_str().unwrap_or("")))
                .collect(),
        ),
        ..Condition::default()
    };
    let op = c["operator"].as_str().unwrap_or("");
    let mapped = match op {
        "IN" => test(Operator::In, Value::Array(values.clone())),
        "NOT_IN" => Condition {
            any: Some(vec![
                test(Operator::NotExists, Value::Null),
                test(Operator::NotIn, Value::Array(values.clone())),
            ]),
            ..Condition::default()
        },
        "STR_STARTS_WITH" | "STR_ENDS_WITH" | "STR_CONTAINS" => per_value(&|v| {
            if insensitive {
                let escaped = regex_escape(v);
                let pattern = match op {
                    "STR_STARTS_WITH" => format!("(?i)^{escaped}"),
                    "STR_ENDS_WITH" => format!("(?i){escaped}$"),
                    _ => format!("(?i){escaped}"),
                };
                test(Operator::Regex, json!(pattern))
            } else {
                let operator = match op {
                    "STR_STARTS_WITH" => Operator::StartsWith,
                    "STR_ENDS_WITH" => Operator::EndsWith,
                    _ => Operator::Contains,
                };
                test(operator, json!(v))
            }
        }),
        "NUM_EQ" => Condition {
            all: Some(vec![
                test(Operator::Gte, single.clone()),
                test(Operator::Lte, single.clone()),
            ]),
            ..Condition::default()
        },
        "REGEX" => {
            let pattern = single.as_str().unwrap_or("");
            let pattern = if insensitive {
                format!("(?i){pattern}")
            } else {
                pattern.to_owned()
            };
            test(Operator::Regex, json!(pattern))
        }
        other => {
            let operator = match other {
                "NUM_GT" => Operator::Gt,
                "NUM_GTE" => Operator::Gte,
                "NUM_LT" => Operator::Lt,
                "NUM_LTE" => Operator::Lte,
                "DATE_AFTER" => Operator::After,
                "DATE_BEFORE" => Operator::Before,
                "SEMVER_EQ" => Operator::SemverEq,
                "SEMVER_GT" => Operator::SemverGt,
                "SEMVER_LT" => Operator::SemverLt,
                "SEMVER_GTE" => Operator::SemverGte,
                "SEMVER_LTE" => Operator::SemverLte,
                unknown => Operator::Unknown(unknown.to_owned()),
            };
            test(operator, single)
        }
    };
    if c["inverted"] == json!(true) {
        Condition {
            not: Some(Box::new(mapped)),
            ..Condition::default()
        }
    } else {
        mapped
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|ch| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(ch);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(ch))
        })
        .collect()
}

/// Unleash context fields and properties as string attributes; nulls are absent.
fn attributes(context: &Value) -> Attributes {
    let mut out = Attributes::new();
    let mut add = |key: &str, value: &Value| {
        if let Some(text) = cleave_core::targeting::scalar_text(value) {
            out.insert(key.to_owned(), text);
        }
    };
    if let Some(fields) = context.as_object() {
        for (k, v) in fields {
            if k != "properties" {
                add(k, v);
            }
        }
    }
    if let Some(props) = context["properties"].as_object() {
        for (k, v) in props {
            add(k, v);
        }
    }
    if !out.contains_key("currentTime") {
        // Unleash defaults `currentTime` to the clock; the cases are written for any
        // present-day instant.
        out.insert("currentTime".into(), "2026-11-21T00:00:00Z".into());
    }
    out
}
