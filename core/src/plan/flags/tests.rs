#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use super::*;

fn snapshot(flags: Value) -> Snapshot {
    serde_json::from_value(json!({
        "schema": 1, "environment": "t", "version": 1, "published_at": "", "published_by": "",
        "experiments": [], "flags": flags
    }))
    .unwrap()
}

fn nav(traffic: i64, extra: Value) -> Value {
    let mut flag = json!({
        "key": "new-nav", "type": "boolean", "off_variant": "off",
        "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
        "rules": [
            {"targeting": [{"conditions": [{"attribute": "plan", "operator": "eq", "value": "staff"}]}],
             "serve": {"variant": "on"}},
            {"serve": {"rollout": {"traffic": traffic, "split": [{"variant": "on", "weight": 10000}]}}}
        ],
        "fallthrough": {"variant": "off"}
    });
    flag.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    flag
}

fn plan(before: Value, after: Value) -> Vec<FlagChange> {
    plan_flags(Some(&snapshot(json!([before]))), &snapshot(json!([after])))
}

/// The untargeted unit's value changes at this many cells, counted one cell in ten each way.
fn brute(before: &Value, after: &Value) -> u64 {
    let (o, n) = (snapshot(json!([before])), snapshot(json!([after])));
    let (o, n) = (&o.flags[0], &n.flags[0]);
    let mut changed = 0;
    for g in (0..BUCKETS).step_by(10) {
        for b in (0..BUCKETS).step_by(10) {
            if untargeted(Some(o), g, b) != untargeted(Some(n), g, b) {
                changed += 100;
            }
        }
    }
    changed
}

#[test]
fn a_ramp_from_10_to_20_percent_changes_exactly_10_percent() {
    let (before, after) = (nav(1000, json!({})), nav(2000, json!({})));
    let changes = plan(before.clone(), after.clone());
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(c.kind, FlagChangeKind::Changed);
    assert_eq!(c.changed_cells, Some(FLAG_CELLS / 10));
    assert_eq!(c.changed_share, Some(0.1));
    assert_eq!(c.rules, vec![Some(0.0), Some(0.1)]);
    assert_eq!(c.changed_cells, Some(brute(&before, &after)));
    assert!(plan(after.clone(), after).is_empty(), "no change, no entry");
}

#[test]
fn the_kill_switch_changes_who_had_it_on() {
    let before = nav(2000, json!({}));
    let after = nav(2000, json!({"enabled": false}));
    let c = &plan(before.clone(), after.clone())[0];
    assert_eq!(c.kind, FlagChangeKind::Killed);
    assert_eq!(c.changed_share, Some(0.2));
    assert_eq!(
        c.rules,
        vec![Some(1.0), Some(1.0)],
        "every rule now serves off"
    );
    assert_eq!(c.changed_cells, Some(brute(&before, &after)));
    assert_eq!(plan(after, before)[0].kind, FlagChangeKind::Revived);
}

#[test]
fn moving_a_split_counts_the_moved_slice() {
    let split = |on: i64| {
        nav(
            10_000,
            json!({"rules": [], "fallthrough": {"rollout": {"traffic": 5000, "split": [
            {"variant": "on", "weight": on}, {"variant": "off", "weight": 10000 - on}]}}}),
        )
    };
    let (before, after) = (split(5000), split(6000));
    let c = &plan(before.clone(), after.clone())[0];
    // Half the units are in the rollout, a tenth of those move from off to on.
    assert_eq!(c.changed_cells, Some(FLAG_CELLS / 20));
    assert_eq!(c.changed_cells, Some(brute(&before, &after)));
}

#[test]
fn what_cannot_be_counted_says_so() {
    let served = nav(
        1000,
        json!({"fallthrough": {"experiment": {"key": "x", "variants": {}}}}),
    );
    let c = &plan(nav(1000, json!({})), served)[0];
    assert_eq!(
        (c.changed_share, c.changed_cells),
        (None, None),
        "an experiment decides"
    );
    let retargeted = nav(1000, json!({"rules": [{"serve": {"variant": "on"}}]}));
    let c = &plan(nav(1000, json!({})), retargeted)[0];
    assert_eq!(c.also_changed, vec!["targeting"]);
    assert!(c.rules.is_empty());
    let salted = nav(1000, json!({"salt": "again"}));
    let c = &plan(nav(1000, json!({})), salted)[0];
    assert_eq!((c.kind, c.changed_share), (FlagChangeKind::NewPhase, None));
    let added = plan_flags(
        Some(&snapshot(json!([]))),
        &snapshot(json!([nav(1000, json!({}))])),
    );
    assert_eq!(
        (added[0].kind, added[0].changed_share),
        (FlagChangeKind::Added, Some(1.0))
    );
}
