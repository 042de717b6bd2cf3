use serde_json::{json, Value};

use super::*;

fn snapshot(experiments: Value) -> Snapshot {
    serde_json::from_value(json!({
        "schema": 1, "environment": "t", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "t",
        "experiments": experiments,
    }))
    .unwrap()
}

fn exp(traffic: i64, variants: Value, layer: Value) -> Value {
    json!({"id": "e", "key": "e", "status": "running", "traffic": traffic,
           "layer": layer, "variants": variants})
}

/// Brute force: the variant (or none) of every (layer bucket, gate, bucket) cell, counted by
/// walking all 10,000 buckets and every gate and layer value.
fn brute_force(old: &Experiment, new: &Experiment) -> Counts {
    let variant = |e: &Experiment, b: i64| {
        e.variants
            .iter()
            .find(|v| v.ranges.iter().any(|[s, t]| (*s..=*t).contains(&b)))
            .map(|v| v.key.clone())
    };
    let in_layer = |e: &Experiment, l: i64| {
        e.layer
            .as_ref()
            .is_none_or(|slot| slot.ranges.iter().any(|[s, t]| (*s..=*t).contains(&l)))
    };
    // Per-bucket variants, then (layer, gate) counted exactly per pair of variants.
    let mut counts = Counts::default();
    let mut admitted = [[0u64; 2]; 2]; // [old admitted][new admitted] -> number of (l, g) cells
    for l in 0..10_000 {
        let (lo, ln) = (in_layer(old, l), in_layer(new, l));
        for g in 0..10_000 {
            let ao = lo && g < old.traffic;
            let an = ln && g < new.traffic;
            admitted[usize::from(ao)][usize::from(an)] += 1;
        }
    }
    for b in 0..10_000 {
        let (vo, vn) = (variant(old, b), variant(new, b));
        for (ao, row) in admitted.iter().enumerate() {
            for (an, cells) in row.iter().enumerate() {
                let o = vo.as_ref().filter(|_| ao == 1);
                let n = vn.as_ref().filter(|_| an == 1);
                match (o, n) {
                    (Some(x), Some(y)) if x != y => counts.moved += cells,
                    (Some(_), None) => counts.left += cells,
                    (None, Some(_)) => counts.entered += cells,
                    _ => {}
                }
            }
        }
    }
    counts
}

fn check(old: Value, new: Value) -> Change {
    let (o, n) = (snapshot(json!([old])), snapshot(json!([new])));
    let p = plan(Some(&o), &n);
    let c = p.changes.first().cloned().unwrap();
    let brute = brute_force(&o.experiments[0], &n.experiments[0]);
    assert_eq!(
        (c.moved_cells, c.entered_cells, c.left_cells),
        (brute.moved, brute.entered, brute.left)
    );
    c
}

fn two(split: i64) -> Value {
    json!([
        {"id": "a", "key": "control", "ranges": [[0, split - 1]]},
        {"id": "b", "key": "treatment", "ranges": [[split, 9999]]}
    ])
}

#[test]
fn moving_the_split_moves_exactly_the_shifted_buckets() {
    let c = check(
        exp(10_000, two(5000), Value::Null),
        exp(10_000, two(6000), Value::Null),
    );
    assert_eq!(c.kind, ChangeKind::Changed);
    assert!((c.moved_share - 0.10).abs() < 1e-12, "{c:?}");
    assert_eq!(c.entered_cells + c.left_cells, 0);
}

#[test]
fn ramping_traffic_moves_nobody() {
    let c = check(
        exp(2_000, two(5000), Value::Null),
        exp(5_000, two(5000), Value::Null),
    );
    assert_eq!(c.moved_cells, 0);
    assert!((c.changed_share - 0.30).abs() < 1e-12, "{c:?}");
    let p = plan(
        Some(&snapshot(json!([exp(2_000, two(5000), Value::Null)]))),
        &snapshot(json!([exp(5_000, two(5000), Value::Null)])),
    );
    assert!(p.needs_confirmation.is_empty());
}

#[test]
fn mixed_changes_agree_with_brute_force() {
    let gappy = json!([
        {"id": "a", "key": "control", "ranges": [[0, 999], [3000, 4999]]},
        {"id": "b", "key": "treatment", "ranges": [[5000, 7999]]}
    ]);
    let reshaped = json!([
        {"id": "a", "key": "control", "ranges": [[0, 2999]]},
        {"id": "b", "key": "treatment", "ranges": [[3000, 3999], [6000, 9999]]}
    ]);
    let layer_a = json!({"key": "l", "salt": "l", "ranges": [[0, 4999]]});
    let layer_b = json!({"key": "l", "salt": "l", "ranges": [[2500, 7499]]});
    let c = check(exp(7_300, gappy, layer_a), exp(4_100, reshaped, layer_b));
    assert!(
        c.moved_cells > 0 && c.entered_cells > 0 && c.left_cells > 0,
        "{c:?}"
    );
}

#[test]
fn a_move_needs_confirmation_unless_the_salt_rotates() {
    let old = snapshot(json!([exp(10_000, two(5000), Value::Null)]));
    let new = snapshot(json!([exp(10_000, two(2000), Value::Null)]));
    assert_eq!(
        plan(Some(&old), &new).needs_confirmation,
        vec!["e".to_owned()]
    );
    let mut rotated = new.clone();
    rotated.experiments[0].salt = Some("e-phase-2".into());
    let p = plan(Some(&old), &rotated);
    assert!(p.needs_confirmation.is_empty());
    assert_eq!(p.changes[0].kind, ChangeKind::NewPhase);
}

#[test]
fn starting_and_stopping_and_unchanged() {
    let running = snapshot(json!([exp(10_000, two(5000), Value::Null)]));
    let p = plan(None, &running);
    assert_eq!(p.changes[0].kind, ChangeKind::Started);
    assert!((p.changes[0].changed_share - 1.0).abs() < 1e-12);
    assert!(plan(Some(&running), &running).changes.is_empty());
    let stopped = snapshot(json!([]));
    let p = plan(Some(&running), &stopped);
    assert_eq!(p.changes[0].kind, ChangeKind::Stopped);
    assert!(p.needs_confirmation.is_empty());
}
