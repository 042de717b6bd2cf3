//! Replays the shared fixtures in `tests/fixtures/` (the same files the end-to-end suite
//! replays over HTTP). Runs natively and, through wasm-bindgen-test, on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use cleave_core::bucket::{draw, draw_all};
use cleave_core::time::parse_rfc3339_ms;
use cleave_core::{Engine, Subject};
use serde::Deserialize;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const VECTORS: &str = include_str!("../../tests/fixtures/bucket-vectors.json");
const SNAPSHOT: &str = include_str!("../../tests/fixtures/assignment-snapshot.json");
const CASES: &str = include_str!("../../tests/fixtures/assignment-cases.json");

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    seed: String,
    unit: String,
    bucket: u16,
    gate: u16,
}

#[derive(Deserialize)]
struct Cases {
    now: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    units: BTreeMap<String, String>,
    attributes: BTreeMap<String, String>,
    experiments: Option<BTreeSet<String>>,
    expected: BTreeMap<String, String>,
}

#[test]
fn bucket_vectors_match_the_contract() {
    let vectors: Vectors = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(vectors.vectors.len(), 6);
    for v in vectors.vectors {
        let d = draw(&v.seed, &v.unit);
        assert_eq!(
            (d.bucket, d.gate),
            (v.bucket, v.gate),
            "{:?}/{:?}",
            v.seed,
            v.unit
        );
    }
}

/// Batched draws (several digests at once where the target allows) against one at a time:
/// the contract's vectors, then keys of every length either side of one SHA-256 block, in
/// batches that do and do not fill the lanes.
#[test]
fn batched_draws_are_the_contracts_draws() {
    let vectors: Vectors = serde_json::from_str(VECTORS).unwrap();
    let pairs: Vec<(&str, &str)> = vectors
        .vectors
        .iter()
        .map(|v| (v.seed.as_str(), v.unit.as_str()))
        .collect();
    let expected: Vec<(u16, u16)> = vectors.vectors.iter().map(|v| (v.bucket, v.gate)).collect();
    let got: Vec<(u16, u16)> = draw_all(&pairs)
        .iter()
        .map(|d| (d.bucket, d.gate))
        .collect();
    assert_eq!(got, expected);
    let units: Vec<String> = (0..70)
        .map(|n| "ü".repeat(n / 2) + &"u".repeat(n % 2))
        .collect();
    for seed in ["", "checkout", "layer:a-rather-long-layer-salt-0123456789"] {
        for count in [1, 7, 8, 9, 70] {
            let pairs: Vec<(&str, &str)> = units
                .iter()
                .take(count)
                .map(|u| (seed, u.as_str()))
                .collect();
            let one_by_one: Vec<_> = pairs.iter().map(|(s, u)| draw(s, u)).collect();
            assert_eq!(draw_all(&pairs), one_by_one, "seed {seed:?}, {count} pairs");
        }
    }
}

/// The fixture snapshot, its cases and the instant they were computed for.
fn fixtures() -> (Engine, Cases, i64) {
    let engine = Engine::decode(SNAPSHOT.as_bytes()).unwrap();
    let cases: Cases = serde_json::from_str(CASES).unwrap();
    let now_ms = parse_rfc3339_ms(&cases.now).unwrap();
    (engine, cases, now_ms)
}

fn subject(case: &Case, now_ms: i64) -> Subject<'_> {
    Subject {
        only: case.experiments.as_ref(),
        ..Subject::new(&case.units, &case.attributes, now_ms)
    }
}

#[test]
fn assignment_cases_match_the_reference() {
    let (engine, cases, now_ms) = fixtures();
    assert!(cases.cases.len() > 50);
    for case in &cases.cases {
        let subject = subject(case, now_ms);
        let got: BTreeMap<String, String> = engine
            .assign(&subject)
            .into_iter()
            .map(|a| (a.experiment.key.clone(), a.variant.key.clone()))
            .collect();
        assert_eq!(got, case.expected, "case {:?}", case.name);
    }
}

#[test]
fn explain_agrees_with_assign() {
    use cleave_core::Explanation;
    let (engine, cases, now_ms) = fixtures();
    for case in &cases.cases {
        let explained = engine.explain(&subject(case, now_ms));
        let assigned: BTreeSet<&str> = explained
            .iter()
            .filter(|(_, why)| matches!(why, Explanation::Assigned { .. }))
            .map(|(e, _)| e.key.as_str())
            .collect();
        let expected: BTreeSet<&str> = case.expected.keys().map(String::as_str).collect();
        assert_eq!(assigned, expected, "case {:?}", case.name);
        let paused = explained.iter().find(|(e, _)| e.key == "paused");
        if case.experiments.is_none() {
            assert_eq!(paused.map(|p| p.1), Some(Explanation::NotRunning));
        }
    }
}
