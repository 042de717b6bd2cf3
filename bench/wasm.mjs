// Times cleave-core compiled to wasm32 inside V8 (Node), and GrowthBook's JS SDK on the same
// experiments, and prints JSON. Usage: node bench/wasm.mjs <wasm-bindgen nodejs dir> <snapshot dir>
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { GrowthBook } from "@growthbook/growthbook";
import { execFileSync } from "node:child_process";

const [pkgDir, snapDir] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const core = require(resolve(pkgDir, "cleave_bench.js"));

// Short samples for `seconds` (at least five), the fastest kept: on a shared machine a slow
// stretch lasts longer than a sample, so the minimum is the code's own cost; `worst` shows
// the noise.
function best(fn, seconds = 2) {
  const runs = [];
  const until = performance.now() + seconds * 1000;
  while (runs.length < 5 || performance.now() < until) runs.push(fn());
  return { best: Math.min(...runs), worst: Math.max(...runs) };
}

const out = { assign: {}, decode: {}, decode_json: {}, drop: {}, growthbook: {} };
// One bucketing draw (a SHA-256 of a short key): what the assign budget is counted in.
core.draw_ns(100000);
out.digest = { ns: best(() => core.draw_ns(50000)).best };
// The same draws a hundred at a time, as a decision makes them (eight digests at once).
core.draw_all_ns(1000);
out.digest_batched = { ns: best(() => core.draw_all_ns(500)).best };
for (const n of [1, 10, 100, 1000]) {
  core.assign_ns(n, 2000); // warm up: let V8 tier the code up
  const iters = Math.max(100, Math.floor(50000 / n));
  const r = best(() => core.assign_ns(n, iters));
  out.assign[n] = { ns: r.best, worst_ns: r.worst, ns_per_experiment: r.best / n };
}
// decode: the binary sidecar a worker reads; decode_json: the JSON body it falls back to.
for (const [name, json] of [["decode", false], ["decode_json", true]]) {
  for (const n of [10, 100, 1000, 5000]) {
    core.decode_ns(n, 3, json);
    const r = best(() => core.decode_ns(n, n >= 1000 ? 3 : 30, json));
    out[name][n] = { ns: r.best, worst_ns: r.worst, bytes: core.snapshot_bytes(n, json) };
  }
}
for (const n of [1000, 5000]) out.drop[n] = { ns: best(() => core.drop_ns(n, 3), 1).best };
const countries = ["US", "CA", "GB", "DE", "FR", "JP", "BR", "IN"];
const plans = ["free", "pro", "internal"];
for (const n of [20, 100]) {
  const translated = execFileSync(process.execPath, [join(import.meta.dirname, "growthbook/translate.mjs"), join(snapDir, `bench-${n}.json`)]);
  const features = JSON.parse(translated);
  const keys = Object.keys(features);
  const run = (users) => {
    const start = process.hrtime.bigint();
    for (let k = 0; k < users; k++) {
      const gb = new GrowthBook({ features, attributes: { id: `user-${k}`, country: countries[k % 8], plan: plans[Math.floor(k / 7) % 3] } });
      for (const key of keys) gb.evalFeature(key);
    }
    return Number(process.hrtime.bigint() - start) / users;
  };
  run(2000);
  const r = best(() => run(5000));
  out.growthbook[n] = { ns: r.best, worst_ns: r.worst, ns_per_experiment: r.best / n };
}
console.log(JSON.stringify(out));
