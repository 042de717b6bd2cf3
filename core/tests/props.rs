//! Invariants of bucketing and assignment that must hold for every input.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use cleave_core::bucket::{draw, BUCKETS};
use cleave_core::snapshot::Snapshot;
use cleave_core::{Attributes, Engine, Subject};
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

/// A running two-variant experiment with the given traffic and variant split point.
fn engine(traffic: u16, split: u16, ranges_end: u16) -> Engine {
    let snapshot: Snapshot = serde_json::from_value(json!({
        "schema": 1, "environment": "p", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "p",
        "experiments": [{
            "id": "e", "key": "exp", "status": "running", "traffic": traffic,
            "variants": [
                {"id": "a", "key": "a", "ranges": [[0, split]]},
                {"id": "b", "key": "b", "ranges": [[split + 1, ranges_end]]}
            ]
        }]
    }))
    .unwrap();
    Engine::new(snapshot).unwrap()
}

fn variant_of(engine: &Engine, unit: &str) -> Option<String> {
    let units = BTreeMap::from([("user".to_owned(), unit.to_owned())]);
    let attributes = Attributes::new();
    let subject = Subject::new(&units, &attributes, 0);
    engine
        .assign(&subject)
        .first()
        .map(|a| a.variant.key.clone())
}

proptest! {
    #[test]
    fn bucket_and_gate_are_in_range(seed in any::<String>(), unit in any::<String>()) {
        let d = draw(&seed, &unit);
        prop_assert!(d.bucket < BUCKETS && d.gate < BUCKETS);
    }

    #[test]
    fn drawing_follows_the_documented_digest(seed in ".{0,40}", unit in ".{0,40}") {
        // bucket = u64_be(d[0..8]) mod 10000, gate = u64_be(d[8..16]) mod 10000, where
        // d = sha256(seed ":" unit): computed here independently of core's code.
        let d = Sha256::digest(format!("{seed}:{unit}").as_bytes());
        let word = |at: usize| u64::from_be_bytes(d[at..at + 8].try_into().unwrap()) % 10_000;
        let got = draw(&seed, &unit);
        prop_assert_eq!((u64::from(got.bucket), u64::from(got.gate)), (word(0), word(8)));
    }

    #[test]
    fn raising_traffic_never_moves_an_enrolled_unit(
        unit in "[a-z0-9-]{1,24}",
        low in 0u16..=10_000,
        raise in 0u16..=10_000,
        split in 0u16..9_998,
    ) {
        let high = low.saturating_add(raise).min(10_000);
        let before = variant_of(&engine(low, split, 9_999), &unit);
        let after = variant_of(&engine(high, split, 9_999), &unit);
        if before.is_some() {
            prop_assert_eq!(before, after);
        }
    }

    #[test]
    fn every_bucket_maps_to_at_most_one_variant(
        cuts in proptest::collection::btree_set(0u16..10_000, 1..6),
    ) {
        // Contiguous ranges cut at arbitrary points, alternating with gaps.
        let mut variants = Vec::new();
        let mut start = 0u16;
        for (i, cut) in cuts.iter().enumerate() {
            if i % 2 == 0 {
                variants.push(json!({"id": format!("v{i}"), "key": format!("v{i}"), "ranges": [[start, *cut]]}));
            }
            start = cut + 1;
        }
        let snapshot: Snapshot = serde_json::from_value(json!({
            "schema": 1, "environment": "p", "version": 1,
            "published_at": "2026-11-21T10:00:00Z", "published_by": "p",
            "experiments": [{"id": "e", "key": "exp", "status": "running", "variants": variants}]
        })).unwrap();
        let engine = Engine::new(snapshot.clone()).unwrap();
        let ranges: Vec<(i64, i64, &str)> = snapshot.experiments[0].variants.iter()
            .flat_map(|v| v.ranges.iter().map(move |[s, e]| (*s, *e, v.key.as_str())))
            .collect();
        for unit in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            let bucket = i64::from(draw("exp", unit).bucket);
            let owners: Vec<&str> = ranges.iter()
                .filter(|(s, e, _)| (*s..=*e).contains(&bucket))
                .map(|(_, _, k)| *k)
                .collect();
            prop_assert!(owners.len() <= 1);
            let got = variant_of(&engine, unit);
            prop_assert_eq!(got.as_deref(), owners.first().copied());
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Engine::decode(&bytes);
    }

    #[test]
    fn decoding_mangled_snapshots_never_panics(
        cut in 0usize..2000,
        byte in any::<u8>(),
    ) {
        let mut text = include_bytes!("../../tests/fixtures/assignment-snapshot.json").to_vec();
        let at = cut % text.len();
        text[at] = byte;
        let _ = Engine::decode(&text);
        text.truncate(at);
        let _ = Engine::decode(&text);
    }
}
