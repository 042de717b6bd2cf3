// Where a proxied page's (or a decide's) time goes inside workerd: serves the built worker in
// a bare workerd with the V8 inspector on, loads it with wrk for a few seconds while V8's
// sampling profiler runs, and prints the functions with the most self time.
//
//   CLEAVE_KEEP_NAMES=1 scripts/build-worker.sh --release   # readable wasm frames
//   node bench/profile.mjs [proxy|proxy-cached|decide] [seconds]
//
// The profile is written to target/profile-<mode>.cpuprofile (open it in Chrome's DevTools).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { ROOT, freePort, waitFor } from "../tests/e2e/harness.mjs";
import { serve, startOriginProcess } from "./workerd.mjs";

const mode = process.argv[2] ?? "proxy";
const seconds = Number(process.argv[3] ?? 5);
const SNAPS = join(ROOT, "target/bench-snapshots");

if (!existsSync(join(SNAPS, "bench-20.json"))) {
  spawnSync("cargo", ["run", "-q", "--release", "-p", "cleave-bench", "--bin", "gen-snapshots", "--", SNAPS, "1", "10", "20", "100", "1000", "5000"], { cwd: ROOT, stdio: "inherit" });
}
const snapshot = { ...JSON.parse(readFileSync(join(SNAPS, "bench-20.json"), "utf8")), environment: "bench-20" };
const kv = { "snapshot:bench-20:v1": JSON.stringify(snapshot), "snapshot:bench-20:current": '{"version":1}' };
const build = join(ROOT, "worker/build");
const origin = await startOriginProcess();
const inspector = await freePort();
const worker = await serve({
  modules: [["index.js", "esModule", join(build, "index.js")], ["index_bg.wasm", "wasm", join(build, "index_bg.wasm")]],
  bindings: { ORIGIN_URL: origin.url, CLEAVE_ENV: "bench-20", CLEAVE_SIGNING_KEY: "bench-key", ...(mode === "proxy" ? { CLEAVE_EDGE_CACHE: "off" } : {}) },
  kv,
  inspector,
});

/** One Chrome DevTools Protocol session with the worker's isolate. */
async function session() {
  const [targets] = await waitFor(async () => {
    try {
      return await (await fetch(`http://127.0.0.1:${inspector}/json`)).json();
    } catch {
      return undefined;
    }
  }, 10_000);
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((ok, fail) => ws.once("open", ok).once("error", fail));
  let id = 0;
  const pending = new Map();
  ws.on("message", (data) => {
    const message = JSON.parse(String(data));
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  const send = (method, params = {}) =>
    new Promise((ok) => {
      id += 1;
      pending.set(id, ok);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close() };
}

try {
  const [path, script] = mode === "decide" ? ["/_cleave/v1/decide", "decide.lua"] : ["/products", "page.lua"];
  // Warm the isolate (snapshot loaded, code compiled) before sampling.
  spawnSync("taskset", ["-c", "1", "wrk", "-t1", "-c32", "-d2s", "-s", join(ROOT, "bench/http", script), worker.url], { env: { ...process.env, BENCH_PATH: path } });
  const cdp = await session();
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 50 });
  await cdp.send("Profiler.start");
  const load = spawnSync("taskset", ["-c", "1", "wrk", "-t1", "-c32", `-d${seconds}s`, "-s", join(ROOT, "bench/http", script), worker.url], { env: { ...process.env, BENCH_PATH: path }, encoding: "utf8" });
  const { result } = await cdp.send("Profiler.stop");
  cdp.close();
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(load.stdout)?.[1];
  const { nodes, samples, timeDeltas } = result.profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  samples.forEach((nodeId, i) => {
    const frame = byId.get(nodeId).callFrame;
    const name = `${frame.functionName || "(anonymous)"}${frame.url ? ` ${frame.url.split("/").pop()}` : ""}`;
    const dt = timeDeltas[i] ?? 0;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  });
  mkdirSync(join(ROOT, "target"), { recursive: true });
  const out = join(ROOT, `target/profile-${mode}.cpuprofile`);
  writeFileSync(out, JSON.stringify(result.profile));
  console.log(`${mode}: ${rps} req/s under the profiler; ${(total / 1000).toFixed(0)} ms sampled; ${out}`);
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40);
  for (const [name, us] of top) console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
} finally {
  await worker.stop();
  await origin.close();
}
