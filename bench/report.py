#!/usr/bin/env python3
"""Writes BENCHMARKS.md and the chart from bench/results.json (bench/run.mjs produces it).

    python3 bench/report.py bench/results.json BENCHMARKS.md bench/chart.png
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def analytics_section(path):
    """The analytics stores side by side, from bench/analytics.json (scripts/bench-analytics.sh)."""
    if not os.path.exists(path):
        return []
    a = json.load(open(path))
    lines = [
        "",
        "## Analytics stores",
        "",
        f"Run {a['date']} with `scripts/bench-analytics.sh` ({a['exposures']:,} exposures of"
        f" {a['units']:,} units, two days each, and {a['events']:,} events; stored through the"
        f" analytics store the ingest endpoint calls, in batches of {a['batch']:,} exposures and"
        " their events; then each read one results request makes). Postgres is one server;"
        " ClickHouse is the two-shard 18.16 cluster of `scripts/clickhouse.sh`, both on this machine.",
        "",
        "| Store | exposures/s stored | enrolment reads | conversion metric | continuous metric | ratio metric | a results request |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in a["stores"]:
        r = s["reads_s"]
        total = sum(r.values())
        lines.append(
            f"| {s['store']} | {s['exposures_per_s']:,.0f} | {r['enrolment']:.2f} s | {r['conversion']:.2f} s"
            f" | {r['continuous']:.2f} s | {r['ratio']:.2f} s | {total:.2f} s |"
        )
    lines += [
        "",
        "Each metric read includes CUPED's 14-day covariate. *a results request* is the sum: what",
        "one `GET /experiments/:id/results` with those three metrics waits for.",
    ]
    return lines


def main(results_path, md_path, png_path):
    r = json.load(open(results_path))
    h = r["http"]
    floor = h["floor"]["rps"]
    hello = h["hello-js"]["rps"]
    plain_proxy = h["proxy-js"]["rps"]
    lines = [
        "# Benchmarks",
        "",
        f"Run {r['date'][:10]} on {r['machine']}. Regenerate with `scripts/bench.sh` (about a",
        "quarter of an hour); it rewrites this file, `bench/results.json` and `bench/chart.png`.",
        "",
        "Each worker runs in its own bare workerd (the binary from the pinned npm package, a",
        "generated config, no dev tooling in front; cleave's KV is a read-only stand-in service),",
        "all pinned to core 0 and loaded one at a time; wrk and the origin run on core 1. 32",
        "connections, one wrk thread; every decide is a different user with varied country and",
        "plan, every proxied page (`/products`, one page) a different returning visitor with a",
        "`cleave_uid` cookie. The peers: *hello-js* a plain JS worker answering a fixed body,",
        "*floor* the same in workers-rs, *proxy-js* a plain JS worker forwarding to the origin with",
        "one header added, *proxy-js-contract* the same doing the header work cleave's contract asks",
        "of every page (drop client `cleave-*` headers, set five headers, mark the response private;",
        "no decision, no signature), *proxy-growthbook-20* GrowthBook's JS SDK assigning the same 20",
        "experiments and forwarding with one header. *proxy-20* is cleave's proxy mode with the",
        "edge cache off, *proxy-20-edge-cache* with it on (the default) for a page the origin sends",
        "without cache headers, so nothing is ever stored. Rounds are interleaved (each round runs every target once, so a slow stretch of a",
        "shared machine hits them all) and the best round counts; *spread* is (max - min) / max",
        "of the rounds. The core numbers come from criterion (native) and from the same code",
        "compiled to wasm32 and timed in Node's V8, fastest of many samples over two seconds.",
        "",
        "![throughput](bench/chart.png)",
        "",
        "## Over HTTP in workerd",
        "",
        "| Worker | req/s | p50 µs | p99 µs | vs its plain JS peer | spread |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in h.items():
        # Pages compare with the plain JS proxy, everything else with the plain JS hello.
        peer = plain_proxy if name.startswith("proxy") or name == "origin-direct" else hello
        lines.append(
            f"| {name} | {m['rps']:.0f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | {m['rps'] / peer:.2f}x | {m['spread'] * 100:.1f}% |"
        )
    gb20, gb100 = h["growthbook-20"]["rps"], h["growthbook-100"]["rps"]
    lines += [
        "",
        f"cleave vs GrowthBook JS SDK: **{h['decide-20']['rps'] / gb20:.2f}x** at 20 experiments,"
        f" **{h['decide-100']['rps'] / gb100:.2f}x** at 100; in proxy mode at 20,"
        f" **{h['proxy-20']['rps'] / h['proxy-growthbook-20']['rps']:.2f}x**. Per page, cleave's proxy"
        f" costs {1e6 / h['proxy-20']['rps'] - 1e6 / plain_proxy:.0f} µs more than the plain JS proxy"
        f" (GrowthBook's {1e6 / h['proxy-growthbook-20']['rps'] - 1e6 / plain_proxy:.0f} µs); the contract's"
        f" header work alone costs a JS proxy {1e6 / h['proxy-js-contract']['rps'] - 1e6 / plain_proxy:.0f} µs,"
        f" leaving {1e6 / h['proxy-20']['rps'] - 1e6 / h['proxy-js-contract']['rps']:.0f} µs of cleave's own.",
        "",
        "## Core",
        "",
        "| Case | native | wasm (V8) | wasm per experiment |",
        "|---|---:|---:|---:|",
    ]
    for n, m in r["wasm"]["assign"].items():
        nat = r["native"]["assign"][n]["ns"]
        lines.append(f"| assign, {n} experiments | {nat / 1000:.2f} µs | {m['ns'] / 1000:.2f} µs | {m['ns_per_experiment']:.0f} ns |")
    d = r["wasm"]["digest"]["ns"]
    lines.append(f"| one SHA-256 digest of a short key (the bucketing draw) | | {d:.0f} ns | |")
    for n, m in r["wasm"]["decode"].items():
        nat = r["native"]["decode"][n]["ns"]
        lines.append(f"| decode sidecar, {n} experiments ({m['bytes'] / 1024:.0f} KiB) | {nat / 1e6:.2f} ms | {m['ns'] / 1e6:.2f} ms | |")
    for n, m in r["wasm"].get("decode_json", {}).items():
        nat = r["native"]["decode_json"][n]["ns"]
        lines.append(f"| decode JSON (fallback), {n} experiments ({m['bytes'] / 1024:.0f} KiB) | {nat / 1e6:.2f} ms | {m['ns'] / 1e6:.2f} ms | |")
    for n, m in r["wasm"].get("drop", {}).items():
        lines.append(f"| release a decoded engine, {n} experiments | | {m['ns'] / 1e6:.2f} ms | |")
    for n, m in r["wasm"]["growthbook"].items():
        lines.append(f"| GrowthBook JS (Node), {n} experiments | | {m['ns'] / 1000:.2f} µs | {m['ns_per_experiment']:.0f} ns |")
    b, mem = r["bundle"], r["memory"]
    lines += [
        "",
        "## Size and memory",
        "",
        f"- wasm bundle: {b['wasm_raw']:,} bytes raw, **{b['wasm_gzip']:,} bytes gzip**; JS glue {b['glue_raw']:,} bytes.",
        f"- workerd RSS with the 5000-experiment snapshot ({mem['snapshot_bytes'] / 2**20:.1f} MiB of JSON) loaded:"
        f" {mem['rss_before_kb'] / 1024:.1f} MiB before, {mem['rss_after_kb'] / 1024:.1f} MiB after"
        f" (+{(mem['rss_after_kb'] - mem['rss_before_kb']) / 1024:.1f} MiB).",
        "",
        "## Budgets",
        "",
        "| Budget | measured | target | |",
        "|---|---:|---|---|",
    ]
    for x in r["budgets"]:
        lines.append(f"| {x['name']} | {x['value']:.2f} | {x['limit']} | {'pass' if x['ok'] else '**miss**'} |")
    per_exp = r["wasm"]["assign"]["100"]["ns_per_experiment"]
    lines += [
        "",
        "Assign is budgeted in digests: 350 ns an experiment is 1.5 digests where a digest",
        f"costs 230 ns; here a digest cost {d:.0f} ns and assign {per_exp:.0f} ns an experiment.",
        "A decision draws every experiment that reaches its traffic gate at once, eight",
        f"digests together in wasm SIMD: {r['wasm']['digest_batched']['ns']:.0f} ns a draw that way.",
        f"The floor's {floor:.0f} req/s, against 8.8k on the reference machine, tells how fast",
        "this machine ran; the decode budget stays absolute.",
        "",
        "`BENCH_STAGES=probe node bench/run.mjs` serves one worker and asks it for less and less",
        "work (a 404, a 400, an empty experiment filter, a full decide), to show where a",
        "request's time goes; `cargo run --release -p cleave-bench --bin decode-parts FILE` splits",
        "snapshot decode into JSON parsing and validation.",
    ]
    lines += analytics_section(os.path.join(os.path.dirname(results_path), "analytics.json"))
    open(md_path, "w").write("\n".join(lines) + "\n")

    names = list(h.keys())
    values = [h[n]["rps"] for n in names]
    colors = [
        "#888888" if n in ("floor", "hello-js", "proxy-js", "origin-direct")
        else "#cc7a00" if "growthbook" in n else "#2a6f97"
        for n in names
    ]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.barh(names[::-1], values[::-1], color=colors[::-1])
    ax.set_xlabel("requests / second (workerd on one core)")
    ax.set_title(f"cleave over HTTP, {r['date'][:10]}")
    for i, v in enumerate(values[::-1]):
        ax.text(v, i, f" {v:.0f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:4])
