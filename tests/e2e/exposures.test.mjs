// From assignment to decision, through the real parts: the worker in workerd decides from
// local KV and enqueues exposures and events on a local Queue; its own queue consumer
// delivers them to a real cleave-admin on a real Postgres, which computes results.
// - an admin outage loses nothing: batches are retried until the admin is back;
// - 50,000 simulated users with a known 20% lift in conversion: the result finds it, inside
//   its confidence interval, on the sequential test; an exposure loss that turns a 50/50 split
//   into 52/48 is flagged as sample ratio mismatch; forced traffic stays out of results.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { ROOT, pool, startWorker, stopGroup, waitFor, freePort } from "./harness.mjs";

const run = promisify(execFile);
const TOKEN = "e2e-publisher";
const INGEST = "e2e-ingest";
// The simulated traffic comes from a trusted server, which may record for any unit it names.
const SERVER = { authorization: "Bearer e2e-server" };
const database = `cleave_e2e_exposures_${process.pid}`;
const port = await freePort();
const adminUrl = `http://127.0.0.1:${port}`;
let baseUrl, worker, admin, output = "";

function databaseUrl(name) {
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function startAdmin() {
  admin = spawn(join(ROOT, "target/debug/cleave-admin"), ["serve", "--port", String(port)], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env, DATABASE_URL: databaseUrl(database),
      CLEAVE_ADMIN_TOKENS: `publisher:e2e:${TOKEN},ingest:edge:${INGEST}`,
      CLEAVE_GUARDRAIL_INTERVAL: "0",
      CLEAVE_SINK: "wrangler-local", CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
      WRANGLER_SEND_METRICS: "false",
    },
  });
  admin.stdout.on("data", (d) => (output += d));
  admin.stderr.on("data", (d) => (output += d));
  const [up] = await waitFor(async () => {
    try {
      return (await fetch(`${adminUrl}/environments`, { headers: auth() })).ok;
    } catch {
      return false;
    }
  }, 30_000);
  assert.ok(up, `cleave-admin did not start:\n${output}`);
}

const auth = () => ({ authorization: `Bearer ${TOKEN}`, "content-type": "application/json" });

async function api(method, path, body) {
  const res = await fetch(`${adminUrl}${path}`, { method, headers: auth(), body: body && JSON.stringify(body) });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** docs/contracts.md §2: bucket = first 8 bytes of sha256(seed ":" unit) mod 10000. */
function bucket(seed, unit) {
  return Number(createHash("sha256").update(`${seed}:${unit}`).digest().readBigUInt64BE(0) % 10000n);
}

/** A seeded PRNG (mulberry32), so a run is reproducible. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A running 50/50 experiment judged on `purchase`; returns it. */
async function experiment(env, key) {
  const e = await api("POST", "/experiments", { key, name: key, environmentId: env });
  const ids = [];
  for (const v of ["control", "treatment"]) ids.push((await api("POST", `/experiments/${e.id}/variants`, { key: v })).id);
  await api("PUT", `/experiments/${e.id}/allocations`, {
    allocations: [
      { variantId: ids[0], rangeStart: 0, rangeEnd: 4999 },
      { variantId: ids[1], rangeStart: 5000, rangeEnd: 9999 },
    ],
  });
  await api("PUT", `/experiments/${e.id}/metrics`, { metrics: [{ metric: "purchase", role: "primary" }] });
  return e;
}

let env, checkout, banner;

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  worker = await startWorker({
    // The 50,000-user test may take up to its own 15 minutes; the worker must outlive it.
    lifetimeMs: 20 * 60 * 1000,
    kvId: "cleave-snapshots-local",
    vars: {
      CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: 300, CLEAVE_SIGNING_KEY: "e2e-signing-key",
      CLEAVE_INGEST_URL: `${adminUrl}/ingest`, CLEAVE_INGEST_TOKEN: INGEST, CLEAVE_INGEST_RETRY_SECONDS: 1,
      CLEAVE_SERVER_TOKEN: "e2e-server",
    },
    queues: {
      producers: { CLEAVE_EVENTS: "cleave-events" },
      consumers: { "cleave-events": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 20 } },
    },
  });
  await startAdmin();
  env = (await api("POST", "/environments", { name: "shop" })).id;
  await api("POST", "/metric-definitions", { key: "purchase", kind: "conversion", direction: "increase" });
  checkout = await experiment(env, "checkout");
  banner = await experiment(env, "banner");
  for (const e of [checkout, banner]) await api("PATCH", `/experiments/${e.id}/status`, { status: "RUNNING" });
  // The worker serves both experiments before traffic starts.
  const [live] = await waitFor(async () => {
    const res = await fetch(`${worker.url}/_cleave/v1/decide?id.user=probe&experiments=banner`);
    const body = await res.json();
    return res.ok && Object.keys(body.data?.assignments ?? {}).length === 1;
  }, 30_000);
  assert.ok(live, "the worker never served the published snapshot");
});

after(async () => {
  if (admin) await stopGroup(admin);
  await worker?.stop();
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

/** Polls `probe` every `every` ms until it is truthy or `ms` pass. */
async function poll(probe, ms, every = 1000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((ok) => setTimeout(ok, every));
  }
}

async function results(id) {
  return api("GET", `/experiments/${id}/results`);
}

async function unitsOf(id) {
  const r = await results(id);
  return r.variants.reduce((n, v) => n + v.units, 0);
}

test("events are validated at the edge with the reason", async () => {
  const post = (body) => fetch(`${worker.url}/_cleave/v1/events`, { method: "POST", headers: SERVER, body: JSON.stringify(body) });
  let res = await post({ events: [{ event_id: "e1", unit: "u1", metric: "Purchase!" }] });
  assert.equal(res.status, 400);
  assert.match((await res.json()).meta.error, /^events\[0\]\.metric: /);
  res = await post({ events: Array.from({ length: 501 }, (_, i) => ({ event_id: `e${i}`, unit: "u", metric: "m" })) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).meta.error, /at most 500/);
  res = await fetch(`${worker.url}/_cleave/v1/events`);
  assert.equal(res.status, 405);
  res = await post({ events: [{ event_id: "e1", unit: "u1", metric: "purchase", value: 3.5 }] });
  assert.equal(res.status, 202);
  assert.deepEqual((await res.json()).data, { accepted: 1, environment: "shop" });
});

test("an admin outage loses no exposures; repeats and redeliveries count once", async () => {
  await stopGroup(admin);
  const users = Array.from({ length: 40 }, (_, i) => `outage-${i}`);
  for (const round of [1, 2]) {
    await pool(users, 8, async (u) => {
      const res = await fetch(`${worker.url}/_cleave/v1/decide?id.user=${u}&experiments=checkout`, { headers: SERVER });
      assert.equal(res.status, 200, `round ${round}`);
    });
  }
  // Let deliveries fail against the stopped admin and be scheduled for retry.
  await new Promise((r) => setTimeout(r, 3000));
  assert.match(worker.output(), /ingest failed .*retrying/);
  await startAdmin();
  const arrived = await poll(async () => (await unitsOf(checkout.id)) >= 40, 60_000, 500);
  assert.ok(arrived, `only ${await unitsOf(checkout.id)} of 40 units arrived:\n${worker.output().slice(-2000)}`);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await unitsOf(checkout.id), 40, "each visitor counted once");
});

test("50,000 users: a 20% lift is found, 52/48 is flagged as SRM, forced traffic is left out", { timeout: 900_000 }, async () => {
  const next = random(7);
  const conversion = { control: 0.1, treatment: 0.12 };
  const users = Array.from({ length: 50_000 }, (_, i) => `sim-${i}`);
  // Exposure loss on banner: a treatment visitor's banner exposure goes missing 1 time in 13
  // (the page that would log it never asks), turning 50/50 into 52/48.
  const bannerTreatment = (u) => bucket(banner.salt, u) >= 5000;
  const plan = users.map((u) => ({ u, dropBanner: bannerTreatment(u) && next() < 1 / 13, r: next() }));
  const events = [];
  const variants = await pool(plan, 24, async ({ u, dropBanner, r }) => {
    const only = dropBanner ? "checkout" : "checkout,banner";
    const res = await fetch(`${worker.url}/_cleave/v1/decide?id.user=${u}&experiments=${only}`, { headers: SERVER });
    assert.equal(res.status, 200);
    const variant = (await res.json()).data.assignments.checkout.variant;
    if (r < conversion[variant]) events.push({ event_id: `buy-${u}`, unit: u, metric: "purchase", timestamp: Date.now() });
    return variant;
  });
  // Forced traffic: a QA visitor's exposure is marked and stays out.
  const force = await run(join(ROOT, "target/debug/cleave-admin"), ["force-token", "--env", "shop", "checkout=treatment"], {
    env: { ...process.env, CLEAVE_SIGNING_KEY: "e2e-signing-key" },
  });
  const forced = await fetch(`${worker.url}/_cleave/v1/decide?id.user=qa-1&experiments=checkout&force=${force.stdout.trim()}`, { headers: SERVER });
  assert.equal(forced.status, 200);
  for (let i = 0; i < events.length; i += 500) {
    const res = await fetch(`${worker.url}/_cleave/v1/events`, { method: "POST", headers: SERVER, body: JSON.stringify({ events: events.slice(i, i + 500) }) });
    assert.equal(res.status, 202);
  }
  const treated = variants.filter((v) => v === "treatment").length;
  const done = await poll(async () => {
    const r = await results(checkout.id);
    const units = r.variants.reduce((n, v) => n + v.units, 0);
    const conversions = r.metrics[0].variants.reduce((n, v) => n + v.conversions, 0);
    return units === 50_000 + 40 && conversions === events.length;
  }, 600_000, 3000);
  const r = await results(checkout.id);
  assert.ok(done, `not everything arrived: ${JSON.stringify(r.variants)}`);
  const outageTreated = Array.from({ length: 40 }, (_, i) => bucket(checkout.salt, `outage-${i}`) >= 5000).filter(Boolean).length;
  assert.equal(r.variants.find((v) => v.key === "treatment").units, treated + outageTreated);
  assert.deepEqual(r.excludedUnits, { forced: 1 });
  assert.equal(r.srm.mismatch, false, JSON.stringify(r.srm));
  const lift = r.metrics[0].comparisons[0];
  assert.equal(lift.variant, "treatment");
  assert.ok(lift.ciLow < 0.02 && 0.02 < lift.ciHigh, `true lift 0.02 outside [${lift.ciLow}, ${lift.ciHigh}]`);
  assert.ok(lift.sequentialSignificant && lift.significant, JSON.stringify(lift));
  assert.equal(lift.verdict, "better");

  const bannerDone = await poll(async () => (await unitsOf(banner.id)) > 47_000, 120_000, 3000);
  assert.ok(bannerDone);
  const b = await results(banner.id);
  assert.equal(b.srm.mismatch, true, JSON.stringify(b.srm));
  assert.ok(b.variants[0].observedShare > 0.51 && b.variants[0].observedShare < 0.53, JSON.stringify(b.variants));
  console.log(`checkout: ${JSON.stringify(r.variants)} lift ${lift.difference.toFixed(4)} [${lift.ciLow.toFixed(4)}, ${lift.ciHigh.toFixed(4)}] p ${lift.pValue.toExponential(2)} sequential p ${lift.sequentialPValue.toExponential(2)}; banner SRM p ${b.srm.pValue.toExponential(2)}`);
});
