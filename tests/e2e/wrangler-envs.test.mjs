// The repo's wrangler.toml names a staging and a production environment, each with its own KV
// namespace and vars; `wrangler deploy --env production --dry-run` builds and binds what a real
// deploy would (without uploading).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { unstable_readConfig } from "wrangler";
import { ROOT } from "./harness.mjs";

const run = promisify(execFile);

test("each named environment has its own namespace, name and CLEAVE_ENV", () => {
  const seen = new Set();
  for (const env of ["staging", "production"]) {
    const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env });
    assert.equal(config.name, `cleave-${env}`);
    assert.equal(config.vars.CLEAVE_ENV, env);
    assert.match(config.vars.ORIGIN_URL, /^https:\/\//);
    const kv = config.kv_namespaces.find((n) => n.binding === "SNAPSHOTS");
    assert.ok(kv?.id, `${env} binds SNAPSHOTS`);
    assert.ok(!seen.has(kv.id), `${env} shares a namespace`);
    // Exposures and events: the worker produces to its own queue and consumes it.
    const producer = config.queues.producers.find((q) => q.binding === "CLEAVE_EVENTS");
    assert.equal(producer?.queue, `cleave-events-${env}`);
    assert.equal(config.queues.consumers[0].queue, producer.queue);
    assert.match(config.vars.CLEAVE_INGEST_URL, /^https:\/\/.*\/ingest$/);
    seen.add(kv.id);
  }
});

test("wrangler deploy --env production --dry-run binds production's namespace and vars", async () => {
  const out = await mkdtemp(join(tmpdir(), "cleave-deploy-"));
  try {
    const { stdout } = await run(process.execPath,
      [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--env", "production", "--outdir", out],
      { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" }, maxBuffer: 16 << 20, timeout: 600_000 });
    assert.match(stdout, /env\.SNAPSHOTS \(replace-with-production-namespace-id\)\s+KV Namespace/);
    assert.match(stdout, /env\.CLEAVE_ENV \("production"\)/);
    assert.match(stdout, /env\.CLEAVE_EVENTS \(cleave-events-production\)\s+Queue/);
    assert.match(stdout, /env\.CLEAVE_POINTERS \(SnapshotPointer\)\s+Durable Object/, "production's pointers come from its pointer object");
    assert.doesNotMatch(stdout, /staging/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
