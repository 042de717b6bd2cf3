use serde_json::json;

use super::*;
use crate::snapshot::Rule;

fn check(operator: &str, value: serde_json::Value, attributes: &[(&str, &str)]) -> bool {
    let rule: Rule = serde_json::from_value(json!({"conditions": [
        {"attribute": "a", "operator": operator, "value": value}
    ]}))
    .unwrap();
    Targeting::prepare(&[rule])
        .unwrap()
        .matches(&attrs(attributes))
}

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn problems(rules: serde_json::Value) -> Vec<String> {
    let rules: Vec<Rule> = serde_json::from_value(rules).unwrap();
    Targeting::prepare(&rules)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn string_operators_are_case_sensitive() {
    assert!(check("eq", json!("US"), &[("a", "US")]));
    assert!(!check("eq", json!("US"), &[("a", "us")]));
    assert!(check("neq", json!("US"), &[("a", "us")]));
    assert!(check("contains", json!("ell"), &[("a", "hello")]));
    assert!(!check("not_contains", json!("ell"), &[("a", "hello")]));
    assert!(check("starts_with", json!("he"), &[("a", "hello")]));
    assert!(check("ends_with", json!("lo"), &[("a", "hello")]));
}

#[test]
fn non_strings_compare_by_json_text() {
    assert!(check("eq", json!(42), &[("a", "42")]));
    assert!(check("eq", json!(true), &[("a", "true")]));
    assert!(check("in", json!([1.5, "x"]), &[("a", "1.5")]));
    assert!(!check("in", json!([1.5, "x"]), &[("a", "y")]));
    assert!(check("not_in", json!(["x"]), &[("a", "y")]));
}

#[test]
fn missing_attribute_is_false_except_not_exists() {
    for (op, value) in [
        ("eq", json!("x")),
        ("neq", json!("x")),
        ("in", json!(["x"])),
        ("not_in", json!(["x"])),
        ("gt", json!(1)),
        ("exists", json!(null)),
    ] {
        assert!(!check(op, value, &[("b", "x")]), "{op}");
    }
    assert!(check("not_exists", json!(null), &[("b", "x")]));
    assert!(!check("not_exists", json!(null), &[("a", "")]));
    assert!(check("exists", json!(null), &[("a", "")]));
}

#[test]
fn numeric_operators_parse_strings_and_refuse_non_numbers() {
    assert!(check("gt", json!(10), &[("a", "10.5")]));
    assert!(!check("gt", json!(10), &[("a", "10")]));
    assert!(check("gte", json!("10"), &[("a", "10")]));
    assert!(check("lt", json!(-1), &[("a", "-2")]));
    assert!(check("lte", json!(2), &[("a", " 2 ")]));
    assert!(!check("lt", json!(5), &[("a", "abc")]));
    assert!(!check("gte", json!(5), &[("a", "NaN")]));
    assert!(!check("lt", json!(5), &[("a", "-inf")]));
    // Numbers, not strings: "9" < "10" as numbers even though "9" > "10" as text.
    assert!(check("lt", json!(10), &[("a", "9")]));
}

#[test]
fn dates_accept_rfc3339_and_epoch_millis() {
    let at = json!("2026-01-01T00:00:00Z");
    assert!(check(
        "before",
        at.clone(),
        &[("a", "2025-12-31T23:59:59Z")]
    ));
    assert!(!check(
        "before",
        at.clone(),
        &[("a", "2026-01-01T00:00:00Z")]
    ));
    assert!(check("after", at.clone(), &[("a", "1767225600001")]));
    assert!(!check("after", at.clone(), &[("a", "1767225600000")]));
    assert!(check(
        "after",
        at.clone(),
        &[("a", "2026-01-01T01:00:00+00:30")]
    ));
    assert!(!check("after", at, &[("a", "tomorrow")]));
}

#[test]
fn rules_are_or_of_ands_and_empty_targets_everyone() {
    let rules: Vec<Rule> = serde_json::from_value(json!([
        {"conditions": [
            {"attribute": "country", "operator": "eq", "value": "US"},
            {"attribute": "plan", "operator": "eq", "value": "pro"}
        ]},
        {"conditions": [{"attribute": "staff", "operator": "exists"}]}
    ]))
    .unwrap();
    let prepared = Targeting::prepare(&rules).unwrap();
    assert!(prepared.matches(&attrs(&[("country", "US"), ("plan", "pro")])));
    assert!(!prepared.matches(&attrs(&[("country", "US"), ("plan", "free")])));
    assert!(prepared.matches(&attrs(&[("staff", "1")])));
    assert!(Targeting::prepare(&[]).unwrap().matches(&attrs(&[])));
}

#[test]
fn groups_nest_all_any_and_not() {
    // country in (US, CA) AND NOT (plan = free OR beta exists)
    let rules: Vec<Rule> = serde_json::from_value(json!([{"conditions": [
        {"attribute": "country", "operator": "in", "value": ["US", "CA"]},
        {"not": {"any": [
            {"attribute": "plan", "operator": "eq", "value": "free"},
            {"all": [{"attribute": "beta", "operator": "exists"}]}
        ]}}
    ]}]))
    .unwrap();
    let t = Targeting::prepare(&rules).unwrap();
    assert!(t.matches(&attrs(&[("country", "US"), ("plan", "pro")])));
    assert!(!t.matches(&attrs(&[("country", "US"), ("plan", "free")])));
    assert!(!t.matches(&attrs(&[("country", "CA"), ("beta", "1")])));
    assert!(!t.matches(&attrs(&[("country", "FR")])));
    // `not` of a test on a missing attribute is true.
    assert!(check_not_missing());
}

fn check_not_missing() -> bool {
    let rules: Vec<Rule> = serde_json::from_value(json!([{"conditions": [
        {"not": {"attribute": "plan", "operator": "eq", "value": "free"}}
    ]}]))
    .unwrap();
    Targeting::prepare(&rules).unwrap().matches(&attrs(&[]))
}

#[test]
fn regex_matches_anywhere_unless_anchored() {
    assert!(check(
        "regex",
        json!("^[a-z]+@example\\.com$"),
        &[("a", "ann@example.com")]
    ));
    assert!(!check(
        "regex",
        json!("^[a-z]+@example\\.com$"),
        &[("a", "ann@example.com.evil")]
    ));
    assert!(check("regex", json!("beta"), &[("a", "x-beta-y")]));
    assert!(check("regex", json!("(?i)BETA"), &[("a", "beta")]));
    assert!(!check("regex", json!("beta"), &[("b", "beta")]));
}

#[test]
fn a_pathological_regex_is_linear_or_refused() {
    // Catastrophic for a backtracking engine; linear here.
    let input = format!("{}!", "a".repeat(50_000));
    assert!(!check("regex", json!("^(a+)+$"), &[("a", &input)]));
    // Too large to compile into a fast matcher: refused when the snapshot is checked.
    let huge = problems(json!([{"conditions": [
        {"attribute": "a", "operator": "regex", "value": "(?:\\w{1000}){100}"}
    ]}]));
    assert_eq!(huge.len(), 1, "{huge:?}");
    assert!(huge[0].contains("exceeded size limit"), "{huge:?}");
}

#[test]
fn semver_compares_by_precedence() {
    assert!(check("semver_gt", json!("1.9.0"), &[("a", "1.10.0")]));
    assert!(check("semver_lt", json!("1.0.0"), &[("a", "1.0.0-rc.1")]));
    assert!(check(
        "semver_lt",
        json!("1.0.0-beta.11"),
        &[("a", "1.0.0-beta.2")]
    ));
    assert!(check(
        "semver_eq",
        json!("1.0.0+build.1"),
        &[("a", "1.0.0+build.2")]
    ));
    assert!(check("semver_gte", json!("2.0.0"), &[("a", "2.0.0")]));
    assert!(check("semver_lte", json!("2.0.0"), &[("a", "1.99.99")]));
    assert!(!check("semver_gt", json!("1.0.0"), &[("a", "2.0")]));
    assert!(!check("semver_lt", json!("1.0.0"), &[("a", "v0.9.0")]));
}

#[test]
fn values_are_checked_against_their_operator() {
    let found = problems(json!([{"conditions": [
        {"attribute": "a", "operator": "regex", "value": "(unclosed"},
        {"attribute": "a", "operator": "semver_gt", "value": "1.2"},
        {"attribute": "a", "operator": "gt", "value": "ten"},
        {"attribute": "a", "operator": "in", "value": "US"},
        {"attribute": "a", "operator": "before", "value": "yesterday"},
        {"attribute": "a", "operator": "eq", "value": {"x": 1}},
        {"attribute": "a", "operator": "matches_glob", "value": "x"},
        {"attribute": "", "operator": "exists"},
        {"attribute": "a"},
        {"attribute": "a", "operator": "eq", "value": "x", "any": []},
        {"any": []},
        {"audience": "beta"}
    ]}]));
    let expect = [
        "conditions[0].value: invalid regex",
        "conditions[1].value: expected a SemVer",
        "conditions[2].value: expected a number",
        "conditions[3].value: expected a list",
        "conditions[4].value: expected an RFC 3339",
        "conditions[5].value: expected a string, number or boolean",
        "conditions[6].operator: unknown operator \"matches_glob\"",
        "conditions[7].attribute: attribute name is empty",
        "conditions[8].operator: operator is missing",
        "conditions[9]: a condition needs exactly one of",
        "conditions[10].any: an empty any-group",
        "conditions[11].audience: audiences cannot reference",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (got, want) in found.iter().zip(expect) {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
}

#[test]
fn reserved_namespaces() {
    assert!(is_reserved("cf.country"));
    assert!(is_reserved("url.path"));
    assert!(is_reserved("ua.device"));
    assert!(!is_reserved("country"));
    assert!(!is_reserved("cfx"));
}

/// What `Operator::operand` declares is what preparing a condition accepts: a value of the
/// declared shape passes, and every operator that takes a value refuses the wrong shape.
#[test]
fn each_operators_declared_operand_is_what_it_accepts() {
    use crate::snapshot::{Operand, Operator};
    let sample = |operand: Operand| match operand {
        Operand::Text => json!("x"),
        Operand::List => json!(["x", "y"]),
        Operand::Pattern => json!("^x+$"),
        Operand::Number => json!(3),
        Operand::Version => json!("1.2.3"),
        Operand::Time => json!("2026-12-01T00:00:00Z"),
        Operand::Nothing => serde_json::Value::Null,
    };
    let prepared = |operator: &Operator, value: serde_json::Value| {
        let rule: Rule = serde_json::from_value(json!({"conditions": [
            {"attribute": "a", "operator": operator.name(), "value": value}
        ]}))
        .unwrap();
        Targeting::prepare(&[rule]).is_ok()
    };
    let mut seen = 0;
    for operator in Operator::known() {
        let operand = operator.operand().unwrap();
        assert!(
            prepared(operator, sample(operand)),
            "{} refuses its own {operand:?}",
            operator.name()
        );
        if !matches!(operand, Operand::Text | Operand::Nothing) {
            // An object fits no operand but text's scalars and nothing's absence.
            assert!(
                !prepared(operator, json!({"k": 1})),
                "{} takes an object",
                operator.name()
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 22, "the contract names 22 operators");
    assert_eq!(Operator::from_name("nope").operand(), None);
}
