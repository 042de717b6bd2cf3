use serde_json::json;

use super::*;

fn snapshot(experiments: serde_json::Value) -> Snapshot {
    serde_json::from_value(json!({
        "schema": 1, "environment": "test", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "t",
        "experiments": experiments,
    }))
    .unwrap()
}

fn experiment(key: &str) -> serde_json::Value {
    json!({
        "id": format!("id-{key}"), "key": key, "status": "running",
        "variants": [
            {"id": "a", "key": "control", "ranges": [[0, 4999]]},
            {"id": "b", "key": "treatment", "ranges": [[5000, 9999]]}
        ]
    })
}

fn problems_of(experiments: serde_json::Value) -> Vec<String> {
    Engine::new(snapshot(experiments))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn accepts_a_valid_snapshot_and_defaults_fields() {
    let engine = Engine::new(snapshot(json!([experiment("a"), experiment("b")]))).unwrap();
    let exp = engine.experiment("a").unwrap();
    assert_eq!(exp.unit, "user");
    assert_eq!(exp.traffic, 10_000);
    assert_eq!(exp.effective_salt(), "a");
    assert_eq!(engine.running.len(), 2);
}

#[test]
fn reports_every_problem_at_once() {
    let mut bad = experiment("Bad Key");
    bad["traffic"] = json!(10_001);
    bad["unit"] = json!("User");
    bad["start_at"] = json!("yesterday");
    bad["variants"][1]["ranges"] = json!([[4000, 10_000]]);
    bad["variants"][0]["key"] = json!("treatment");
    let mut overlap = experiment("overlap");
    overlap["variants"][1]["ranges"] = json!([[4999, 9999]]);
    let mut empty = experiment("empty");
    empty["variants"] = json!([]);
    let got = problems_of(json!([bad, overlap, empty, experiment("empty")]));
    let want = [
        "experiments[0].key: experiment key \"Bad Key\" does not match",
        "experiments[0].unit: unit type \"User\" does not match",
        "experiments[0].traffic: traffic 10001 is outside 0..=10000",
        "experiments[0].start_at: \"yesterday\" is not an RFC 3339 timestamp",
        "experiments[0].variants[1].key: duplicate variant key \"treatment\"",
        "experiments[0].variants[1].ranges[0]: range [4000, 10000] is outside 0..=9999",
        "experiments[0].variants: bucket ranges of \"treatment\" and \"treatment\" overlap at 4000",
        "experiments[1].variants: bucket ranges of \"control\" and \"treatment\" overlap at 4999",
        "experiments[2].variants: experiment has no variants",
        "experiments[3].key: duplicate experiment key \"empty\" (also experiments[2])",
    ];
    for w in want {
        assert!(
            got.iter().any(|g| g.starts_with(w)),
            "missing {w:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

#[test]
fn refuses_overlapping_layer_slices_of_running_experiments() {
    let layered = |key: &str, ranges: serde_json::Value, status: &str| {
        let mut e = experiment(key);
        e["layer"] = json!({"key": "home", "salt": "home", "ranges": ranges});
        e["status"] = json!(status);
        e
    };
    let got = problems_of(json!([
        layered("a", json!([[0, 5000]]), "running"),
        layered("b", json!([[5000, 9999]]), "running"),
    ]));
    assert_eq!(
        got,
        ["experiments[1].layer.ranges: layer ranges of \"a\" and \"b\" overlap at 5000"]
    );
    // A stopped experiment no longer holds its slice.
    Engine::new(snapshot(json!([
        layered("a", json!([[0, 5000]]), "stopped"),
        layered("b", json!([[5000, 9999]]), "running"),
    ])))
    .unwrap();
}

#[test]
fn refuses_layer_members_that_disagree() {
    let mut a = experiment("a");
    a["layer"] = json!({"key": "home", "salt": "home", "ranges": [[0, 99]]});
    let mut b = experiment("b");
    b["layer"] = json!({"key": "home", "salt": "other", "ranges": [[100, 199]]});
    b["unit"] = json!("account");
    let got = problems_of(json!([a, b]));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0].contains("already uses salt \"home\""));
    assert!(got[1].contains("hashes on unit type \"user\""));
}

#[test]
fn refuses_bad_conditions_and_header_fields() {
    let mut e = experiment("a");
    e["targeting"] = json!([{"conditions": [
        {"attribute": "country", "operator": "in", "value": "US"},
        {"attribute": "age", "operator": "gt", "value": "old"},
        {"attribute": "x", "operator": "shouts", "value": 1},
        {"attribute": "x", "operator": "eq", "value": {"a": 1}},
        {"attribute": "t", "operator": "before", "value": "soon"}
    ]}]);
    let mut s = snapshot(json!([e]));
    s.schema = 2;
    s.version = 0;
    let got: Vec<String> = Engine::new(s)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    let c = "experiments[0].targeting[0].conditions";
    assert_eq!(
        got,
        [
            "schema: unsupported schema 2 (this engine reads 1)".to_owned(),
            "version: version must be at least 1".to_owned(),
            format!("{c}[0].value: expected a list, got \"US\""),
            format!("{c}[1].value: expected a number, got \"old\""),
            format!("{c}[2].operator: unknown operator \"shouts\""),
            format!("{c}[3].value: expected a string, number or boolean, got {{\"a\":1}}"),
            format!("{c}[4].value: expected an RFC 3339 timestamp, got \"soon\""),
        ]
    );
}

#[test]
fn decode_separates_json_errors_from_contract_errors() {
    assert!(matches!(Engine::decode(b"{"), Err(SnapshotError::Json(_))));
    assert!(matches!(Engine::decode(b"[]"), Err(SnapshotError::Json(_))));
    let mut s = snapshot(json!([experiment("a")]));
    s.environment.clear();
    let bytes = serde_json::to_vec(&s).unwrap();
    assert!(matches!(
        Engine::decode(&bytes),
        Err(SnapshotError::Invalid(_))
    ));
}

#[test]
fn serialization_is_deterministic_and_round_trips() {
    let mut e = experiment("a");
    e["variants"][0]["payload"] = json!({"z": 1, "a": {"y": 2, "b": 3}});
    let s = snapshot(json!([e]));
    let text = serde_json::to_string(&s).unwrap();
    assert!(text.contains(r#"{"a":{"b":3,"y":2},"z":1}"#), "{text}");
    let again: Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&again).unwrap(), text);
}

#[test]
fn an_out_of_bounds_range_still_takes_part_in_overlap_checks() {
    let mut e = experiment("a");
    e["variants"][0]["ranges"] = json!([[0, 6000]]);
    e["variants"][1]["ranges"] = json!([[5000, 10_000]]);
    let got = problems_of(json!([e]));
    assert_eq!(
        got,
        [
            "experiments[0].variants[1].ranges[0]: range [5000, 10000] is outside 0..=9999",
            "experiments[0].variants: bucket ranges of \"control\" and \"treatment\" overlap at 5000",
        ]
    );
}
