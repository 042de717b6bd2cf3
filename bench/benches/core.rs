//! Native criterion benchmarks of cleave-core: assign and decode at several snapshot sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cleave_core::{Engine, Subject};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn assign(c: &mut Criterion) {
    let mut group = c.benchmark_group("assign");
    let subjects: Vec<_> = (0..1024).map(cleave_bench::subject).collect();
    for n in [1usize, 10, 100, 1000] {
        let engine =
            Engine::new(serde_json::from_value(cleave_bench::snapshot_json(n)).unwrap()).unwrap();
        group.throughput(Throughput::Elements(n as u64));
        let mut k = 0usize;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) % subjects.len();
                let (units, attributes) = &subjects[k];
                engine.assign(&Subject::new(units, attributes, 0))
            });
        });
    }
    group.finish();
}

/// Decoding the binary sidecar (what a worker reads) and the JSON body (its fallback).
fn decode(c: &mut Criterion) {
    for (name, binary) in [("decode", true), ("decode-json", false)] {
        let mut group = c.benchmark_group(name);
        group.sample_size(20);
        for n in [10usize, 100, 1000, 5000] {
            let bytes = cleave_bench::snapshot_bytes(n, binary);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &bytes, |b, bytes| {
                if binary {
                    b.iter(|| Engine::decode_binary(bytes).unwrap());
                } else {
                    b.iter(|| Engine::decode(bytes).unwrap());
                }
            });
        }
        group.finish();
    }
}

criterion_group!(benches, assign, decode);
criterion_main!(benches);
