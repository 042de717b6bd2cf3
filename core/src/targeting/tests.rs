use serde_json::json;

use super::*;

fn check(operator: &str, value: serde_json::Value, attributes: &[(&str, &str)]) -> bool {
    let rule: Rule = serde_json::from_value(json!({"conditions": [
        {"attribute": "a", "operator": operator, "value": value}
    ]}))
    .unwrap();
    let mut problems = Problems::default();
    let rules = prepare_rules(&[rule], "t", &mut problems);
    assert!(problems.is_empty(), "{problems}");
    let attrs: Attributes = attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    matches(&rules, &attrs)
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
    let mut problems = Problems::default();
    let prepared = prepare_rules(&rules, "t", &mut problems);
    let attrs = |pairs: &[(&str, &str)]| -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert!(matches(
        &prepared,
        &attrs(&[("country", "US"), ("plan", "pro")])
    ));
    assert!(!matches(
        &prepared,
        &attrs(&[("country", "US"), ("plan", "free")])
    ));
    assert!(matches(&prepared, &attrs(&[("staff", "1")])));
    assert!(matches(&[], &attrs(&[])));
}

#[test]
fn reserved_namespaces() {
    assert!(is_reserved("cf.country"));
    assert!(is_reserved("url.path"));
    assert!(is_reserved("ua.device"));
    assert!(!is_reserved("country"));
    assert!(!is_reserved("cfx"));
}
