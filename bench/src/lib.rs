//! Synthetic workloads for cleave's benchmarks: snapshots with a realistic mix of experiments
//! (some targeted, some in layers, 2-4 variants, partial traffic) and varied subjects, so no
//! cache flatters the numbers. Deterministic: the same `n` always gives the same snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use cleave_core::{Attributes, Units};
use serde_json::{json, Value};

#[cfg(target_arch = "wasm32")]
mod wasm;

/// Countries subjects come from; targeted experiments want the first five.
pub const COUNTRIES: [&str; 8] = ["US", "CA", "GB", "DE", "FR", "JP", "BR", "IN"];
const PLANS: [&str; 3] = ["free", "pro", "internal"];

/// A snapshot of `n` running experiments as JSON.
pub fn snapshot_json(n: usize) -> Value {
    let experiments: Vec<Value> = (0..n).map(experiment).collect();
    json!({
        "schema": 1, "environment": "bench", "version": 1,
        "published_at": "2026-11-21T00:00:00Z", "published_by": "bench",
        "experiments": experiments,
    })
}

/// The `n`-experiment snapshot as a worker reads it: its binary sidecar, or its JSON body.
pub fn snapshot_bytes(n: usize, binary: bool) -> Vec<u8> {
    let json = serde_json::to_vec(&snapshot_json(n)).unwrap();
    if !binary {
        return json;
    }
    let snapshot: cleave_core::snapshot::Snapshot = serde_json::from_slice(&json).unwrap();
    cleave_core::snapshot::encode_binary(&snapshot)
}

fn experiment(i: usize) -> Value {
    let key = format!("exp-{i:04}");
    let variants = 2 + i % 3;
    let width = 10_000 / variants;
    let variant_list: Vec<Value> = (0..variants)
        .map(|v| {
            let start = v * width;
            let end = if v + 1 == variants { 9_999 } else { start + width - 1 };
            json!({"id": format!("{key}-v{v}"), "key": format!("v{v}"), "payload": {"n": v}, "ranges": [[start, end]]})
        })
        .collect();
    let targeting = match i % 3 {
        0 => json!([]),
        1 => {
            json!([{"conditions": [{"attribute": "country", "operator": "in", "value": ["US", "CA", "GB", "DE", "FR"]}]}])
        }
        _ => json!([{"conditions": [
            {"attribute": "country", "operator": "in", "value": ["US", "CA", "GB"]},
            {"attribute": "plan", "operator": "neq", "value": "internal"}
        ]}]),
    };
    // Every fifth block of four experiments shares a layer, split in four slices.
    let layer = if (i / 4).is_multiple_of(5) {
        let slot = i % 4;
        json!({"key": format!("layer-{}", i / 4), "salt": format!("layer-{}", i / 4), "ranges": [[slot * 2500, slot * 2500 + 2499]]})
    } else {
        Value::Null
    };
    let traffic = [10_000, 5_000, 2_000, 10_000][i % 4];
    json!({
        "id": format!("id-{key}"), "key": key, "status": "running", "unit": "user",
        "traffic": traffic, "layer": layer, "targeting": targeting, "variants": variant_list,
    })
}

/// The `k`-th subject: a distinct user with varied country and plan.
pub fn subject(k: usize) -> (Units, Attributes) {
    let units = BTreeMap::from([("user".to_owned(), format!("user-{k}"))]);
    let attributes = BTreeMap::from([
        (
            "country".to_owned(),
            COUNTRIES[k % COUNTRIES.len()].to_owned(),
        ),
        ("plan".to_owned(), PLANS[(k / 7) % PLANS.len()].to_owned()),
    ]);
    (units, attributes)
}
