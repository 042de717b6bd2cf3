// The whole control loop: REST calls to a real cleave-admin on a real Postgres, an automatic
// publish through the wrangler-local sink into the worker's local KV, and the worker in workerd
// deciding exactly as the bucketing formula (computed here, independently) says.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { ROOT, call, startWorker, stopGroup, waitFor, freePort } from "./harness.mjs";

const run = promisify(execFile);
const TOKEN = "e2e-api-token";
const REFRESH_MS = 500;
const database = `cleave_e2e_${process.pid}`;
// The admin signs every snapshot and the worker accepts only signed ones, so the whole loop
// (publishes and the rollback, with its marker) also proves the two agree on Ed25519.
const signingKey = generateKeyPairSync("ed25519");
const SEED = signingKey.privateKey.export({ format: "jwk" }).d;
const PUBLIC_KEY = signingKey.publicKey.export({ format: "jwk" }).x;
let baseUrl, worker, admin, adminUrl, output = "";

function databaseUrl(name) {
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function api(method, path, body) {
  const res = await fetch(`${adminUrl}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, "x-cleave-actor": "e2e" },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** docs/contracts.md §2, computed here: sha256(seed ":" unit), bucket = first 8 bytes, gate = next 8. */
function draw(seed, unit) {
  const d = createHash("sha256").update(`${seed}:${unit}`, "utf8").digest();
  return { bucket: Number(d.readBigUInt64BE(0) % 10000n), gate: Number(d.readBigUInt64BE(8) % 10000n) };
}

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  worker = await startWorker({ kvId: "cleave-snapshots-local", vars: { CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: REFRESH_MS, CLEAVE_SNAPSHOT_PUBLIC_KEY: PUBLIC_KEY } });
  const port = await freePort();
  adminUrl = `http://127.0.0.1:${port}`;
  admin = spawn(join(ROOT, "target/debug/cleave-admin"), ["serve", "--port", String(port)], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env, DATABASE_URL: databaseUrl(database), CLEAVE_ADMIN_API_TOKEN: TOKEN,
      CLEAVE_SINK: "wrangler-local", CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
      WRANGLER_SEND_METRICS: "false", CLEAVE_SNAPSHOT_SIGNING_KEY: SEED,
    },
  });
  admin.stdout.on("data", (d) => (output += d));
  admin.stderr.on("data", (d) => (output += d));
  const [up] = await waitFor(async () => {
    try {
      return (await fetch(`${adminUrl}/environments`)).ok;
    } catch {
      return false;
    }
  }, 30_000);
  assert.ok(up, `cleave-admin did not start:\n${output}`);
});

after(async () => {
  if (admin) await stopGroup(admin);
  await worker?.stop();
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

test("REST -> publish -> worker decides by the formula", async () => {
  const env = await api("POST", "/environments", { name: "shop" });
  const exp = await api("POST", "/experiments", {
    key: "cta-color", name: "CTA color", environmentId: env.id, salt: "cta-2026",
  });
  await api("PATCH", `/experiments/${exp.id}`, { traffic: 6000 });
  const ranges = { control: [0, 3332], blue: [3333, 6665], green: [6666, 9999] };
  const allocations = [];
  for (const [key, [rangeStart, rangeEnd]] of Object.entries(ranges)) {
    const v = await api("POST", `/experiments/${exp.id}/variants`, { key, payload: { color: key } });
    allocations.push({ variantId: v.id, rangeStart, rangeEnd });
  }
  await api("PUT", `/experiments/${exp.id}/allocations`, { allocations });
  const started = await api("PATCH", `/experiments/${exp.id}/status`, { status: "RUNNING" });
  assert.equal(started.published.version, 1);

  const [health] = await waitFor(async () => {
    const h = await call(`${worker.url}/_cleave/health`);
    return h.json?.data?.version === 1 ? h.json.data : undefined;
  }, REFRESH_MS * 6);
  assert.ok(health, "the worker never served the published version");

  let enrolled = 0;
  for (let i = 0; i < 300; i++) {
    const unit = `shopper-${i}`;
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}`);
    assert.equal(r.status, 200);
    const { bucket, gate } = draw("cta-2026", unit);
    const want = gate < 6000 ? Object.keys(ranges).find((k) => bucket >= ranges[k][0] && bucket <= ranges[k][1]) : undefined;
    assert.equal(r.json.data.assignments["cta-color"]?.variant, want, `${unit}: bucket ${bucket} gate ${gate}`);
    if (want) {
      enrolled += 1;
      assert.deepEqual(r.json.data.assignments["cta-color"].payload, { color: want });
      assert.equal(r.json.data.assignments["cta-color"].experiment_id, exp.id);
    }
  }
  assert.ok(enrolled > 120 && enrolled < 240, `60% traffic enrolled ${enrolled} of 300`);

  // Pausing publishes v2, in which nobody is enrolled; rolling back serves v1 again.
  const paused = await api("PATCH", `/experiments/${exp.id}/status`, { status: "PAUSED" });
  assert.equal(paused.published.version, 2);
  const probe = `${worker.url}/_cleave/v1/decide?id.user=shopper-0`;
  const wantFirst = (() => {
    const { bucket, gate } = draw("cta-2026", "shopper-0");
    return gate < 6000 ? Object.keys(ranges).find((k) => bucket >= ranges[k][0] && bucket <= ranges[k][1]) : undefined;
  })();
  const [v2] = await waitFor(async () => ((await call(probe)).json.meta.snapshot.version === 2 ? true : undefined), REFRESH_MS * 6);
  assert.ok(v2);
  assert.deepEqual((await call(probe)).json.data.assignments, {});
  const back = await api("POST", `/environments/${env.id}/rollback`, { version: 1 });
  assert.equal(back.version, 1);
  const [v1] = await waitFor(async () => ((await call(probe)).json.meta.snapshot.version === 1 ? true : undefined), REFRESH_MS * 6);
  assert.ok(v1);
  assert.equal((await call(probe)).json.data.assignments["cta-color"]?.variant, wantFirst);
  const audit = await (await fetch(`${adminUrl}/audit?entityId=${env.id}`)).json();
  assert.deepEqual(audit.map((e) => e.action), ["environment.create", "environment.publish", "environment.publish", "environment.rollback"]);
});
