//! Splits decode time into JSON parsing and validation: `decode-parts SNAPSHOT.json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use cleave_core::snapshot::Snapshot;
use cleave_core::Engine;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: decode-parts SNAPSHOT.json");
    let bytes = std::fs::read(path).unwrap();
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(serde_json::from_slice::<Snapshot>(&bytes).unwrap());
    }
    let parse = start.elapsed() / rounds;
    let snapshot: Snapshot = serde_json::from_slice(&bytes).unwrap();
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(Engine::new(snapshot.clone()).unwrap());
    }
    let validate = start.elapsed() / rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(snapshot.clone());
    }
    let clone = start.elapsed() / rounds;
    println!("parse {parse:?}, clone {clone:?}, clone+validate {validate:?}");
}
