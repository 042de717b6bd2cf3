//! Snapshot builders and assertions shared by the enrolment and sticky tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;

use cleave_core::bucket::draw;
use cleave_core::{Engine, Explanation, Subject, Units};
use serde_json::{json, Value};

pub fn snapshot(extra: Value, experiments: Value) -> cleave_core::Snapshot {
    let mut doc = json!({
        "schema": 1, "environment": "test", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "t",
        "experiments": experiments,
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    serde_json::from_value(doc).unwrap()
}

pub fn engine(extra: Value, experiments: Value) -> Engine {
    Engine::new(snapshot(extra, experiments)).unwrap()
}

pub fn problems(extra: Value, experiments: Value) -> Vec<String> {
    Engine::new(snapshot(extra, experiments))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

pub fn exp(key: &str, more: Value) -> Value {
    let mut e = json!({
        "id": format!("id-{key}"), "key": key, "status": "running",
        "variants": [
            {"id": "a", "key": "control", "ranges": [[0, 4999]]},
            {"id": "b", "key": "treatment", "ranges": [[5000, 9999]]}
        ]
    });
    if let (Some(e), Some(more)) = (e.as_object_mut(), more.as_object()) {
        e.extend(more.clone());
    }
    e
}

pub fn units(pairs: &[(&str, &str)]) -> Units {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn assigned(engine: &Engine, subject: &Subject<'_>) -> BTreeMap<String, String> {
    engine
        .assign(subject)
        .into_iter()
        .map(|a| (a.experiment.key.clone(), a.variant.key.clone()))
        .collect()
}

pub fn why<'e>(engine: &'e Engine, subject: &Subject<'_>, key: &str) -> Explanation<'e> {
    engine
        .explain(subject)
        .into_iter()
        .find(|(e, _)| e.key == key)
        .map(|(_, w)| w)
        .unwrap()
}

pub fn variant_by_bucket(seed: &str, unit: &str) -> &'static str {
    if draw(seed, unit).bucket < 5000 {
        "control"
    } else {
        "treatment"
    }
}
