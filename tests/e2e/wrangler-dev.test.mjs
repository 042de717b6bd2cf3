// The repo's own wrangler.toml: `wrangler dev` from the repo root builds the worker, reads the
// local KV that `wrangler kv key put --local --binding SNAPSHOTS` writes, and serves the demo
// snapshot from config-snapshots/ — the flow the README and config-snapshots/README.md give.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { ROOT, call, readJson, startOrigin, stopGroup } from "./harness.mjs";

const run = promisify(execFile);
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const PORT = 18787;
let child, origin, dir, output = "";

async function kvPut(key, ...value) {
  await run(process.execPath, [WRANGLER, "kv", "key", "put", "--local", "--persist-to", dir,
    "--binding", "SNAPSHOTS", key, ...value], { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cleave-wrangler-dev-"));
  origin = await startOrigin();
  const { version } = await readJson("config-snapshots/demo.json");
  await kvPut(`snapshot:demo:v${version}`, "--path", "config-snapshots/demo.json");
  await kvPut("snapshot:demo:current", JSON.stringify({ version }));
  child = spawn(process.execPath, [WRANGLER, "dev", "--persist-to", dir, "--ip", "127.0.0.1",
    "--port", String(PORT), "--show-interactive-dev-session=false", "--var", `ORIGIN_URL:${origin.url}`],
  { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const deadline = Date.now() + 300_000; // includes the release build
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
    try {
      await fetch(`http://127.0.0.1:${PORT}/_cleave/health`);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`wrangler dev did not start:\n${output}`);
      await new Promise((ok) => setTimeout(ok, 500));
    }
  }
});

after(async () => {
  if (child) await stopGroup(child);
  await origin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the demo snapshot decides as documented", async () => {
  const demo = await readJson("config-snapshots/demo.json");
  const r = await call(`http://127.0.0.1:${PORT}/_cleave/v1/decide?id.user=user-123&ctx.country=US`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.environment, "demo");
  assert.equal(r.json.meta.snapshot.version, demo.version);
  // docs/contracts.md §2 vector: checkout-button-color/user-123 has bucket 5574 -> treatment ([5000, 9999]).
  assert.equal(r.json.data.assignments["checkout-button-color"].variant, "treatment");
  assert.deepEqual(r.json.data.assignments["checkout-button-color"].payload, { color: "#00cc66" });
  // layer:homepage/user-123 has bucket 9323: the hero-image slice, never hero-copy.
  assert.ok(r.json.data.assignments["hero-image"]);
  assert.equal(r.json.data.assignments["hero-copy"], undefined);
  const outside = await call(`http://127.0.0.1:${PORT}/_cleave/v1/decide?id.user=user-123&ctx.country=FR`);
  assert.equal(outside.json.data.assignments["checkout-button-color"], undefined, "country targeting");
});

test("proxied requests reach ORIGIN_URL with assignments", async () => {
  const r = await call(`http://127.0.0.1:${PORT}/checkout`, { headers: { cookie: "cleave_uid=user-123" } });
  assert.equal(r.status, 200);
  const seen = origin.received.at(-1).headers;
  assert.equal(seen["cleave-snapshot"], String((await readJson("config-snapshots/demo.json")).version));
  assert.equal(seen["cleave-unit"], "user-123");
  assert.match(seen["cleave-assignments"], /hero-image="/);
});
