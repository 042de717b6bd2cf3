//! Timing harness compiled to wasm32 and run in V8 (Node), where the worker's code runs.

use cleave_core::{Engine, Subject};
use wasm_bindgen::prelude::wasm_bindgen;

/// `performance.now()`: sub-millisecond, where `Date.now()` would quantise a 5 ms decode to
/// whole milliseconds.
fn now_ms() -> f64 {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"performance".into())
        .and_then(|perf| {
            let now: js_sys::Function = js_sys::Reflect::get(&perf, &"now".into())?.into();
            now.call0(&perf)
        })
        .ok()
        .and_then(|t| t.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

/// Nanoseconds per decode of an `n`-experiment snapshot, over `rounds` decodes: of its binary
/// sidecar (what a worker reads) or, with `json`, of its JSON body (the fallback). Engines are
/// dropped after the clock stops: a worker releases the previous version's engine when it next
/// swaps, not while it decodes the new one ([`drop_ns`] times that release).
#[wasm_bindgen]
pub fn decode_ns(n: usize, rounds: u32, json: bool) -> f64 {
    let bytes = crate::snapshot_bytes(n, !json);
    let decode = if json {
        Engine::decode
    } else {
        Engine::decode_binary
    };
    let mut engines = Vec::with_capacity(rounds as usize);
    let start = now_ms();
    for _ in 0..rounds {
        engines.push(decode(&bytes).unwrap());
    }
    (now_ms() - start) * 1e6 / f64::from(rounds)
}

/// Nanoseconds to drop an engine decoded from an `n`-experiment snapshot.
#[wasm_bindgen]
pub fn drop_ns(n: usize, rounds: u32) -> f64 {
    let bytes = crate::snapshot_bytes(n, true);
    let engines: Vec<Engine> = (0..rounds)
        .map(|_| Engine::decode_binary(&bytes).unwrap())
        .collect();
    let start = now_ms();
    drop(engines);
    (now_ms() - start) * 1e6 / f64::from(rounds)
}

/// Nanoseconds per `assign` (one subject, all experiments) of an `n`-experiment snapshot.
#[wasm_bindgen]
pub fn assign_ns(n: usize, rounds: u32) -> f64 {
    let engine = Engine::new(serde_json::from_value(crate::snapshot_json(n)).unwrap()).unwrap();
    let subjects: Vec<_> = (0..1024).map(crate::subject).collect();
    let start = now_ms();
    for r in 0..rounds {
        let (units, attributes) = &subjects[r as usize % subjects.len()];
        let subject = Subject::new(units, attributes, 0);
        std::hint::black_box(engine.assign(&subject));
    }
    (now_ms() - start) * 1e6 / f64::from(rounds)
}

/// Size in bytes of the `n`-experiment snapshot: its sidecar, or with `json` its JSON body.
#[wasm_bindgen]
pub fn snapshot_bytes(n: usize, json: bool) -> usize {
    crate::snapshot_bytes(n, !json).len()
}

/// Nanoseconds per bucketing draw (one SHA-256 of a short key), the unit in which the assign
/// budget is set: on a slower or busier machine both move together.
#[wasm_bindgen]
pub fn draw_ns(rounds: u32) -> f64 {
    let units: Vec<String> = (0..1024).map(|i| format!("user-{i}")).collect();
    let start = now_ms();
    for r in 0..rounds {
        let unit = &units[r as usize % units.len()];
        std::hint::black_box(cleave_core::bucket::draw("checkout-button-color", unit));
    }
    (now_ms() - start) * 1e6 / f64::from(rounds)
}

/// Nanoseconds per draw when a hundred are drawn at once (eight digests at a time with SIMD).
#[wasm_bindgen]
pub fn draw_all_ns(rounds: u32) -> f64 {
    let units: Vec<String> = (0..1024).map(|i| format!("user-{i}")).collect();
    let seeds: Vec<String> = (0..100).map(|i| format!("experiment-{i}")).collect();
    let start = now_ms();
    for r in 0..rounds {
        let unit = &units[r as usize % units.len()];
        let pairs: Vec<(&str, &str)> = seeds.iter().map(|s| (s.as_str(), unit.as_str())).collect();
        std::hint::black_box(cleave_core::bucket::draw_all(&pairs));
    }
    (now_ms() - start) * 1e6 / f64::from(rounds) / 100.0
}
