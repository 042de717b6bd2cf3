// Exposures and events from the edge into ClickHouse, through the real parts: the compiled
// worker in workerd (a local Queue it produces to and consumes), a local origin for proxied
// pages, cleave-admin with CLEAVE_ANALYTICS_URL on the two-shard ClickHouse cluster
// scripts/test.sh starts (CLEAVE_E2E_CLICKHOUSE), the control plane on Postgres.
// - the Queue consumer's batches land in the Distributed tables, each unit on one shard
//   (its exposures and its events together);
// - a redelivered record counts once;
// - results count exactly the units the edge enrolled and the purchases they made.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { ROOT, call, databaseUrl, freePort, startAdmin, startOrigin, startWorker, waitFor } from "./harness.mjs";

const run = promisify(execFile);
const PUBLISHER = "ch-publisher";
const INGEST = "ch-ingest";
const SERVER = { authorization: "Bearer ch-server" };
const database = `cleave_e2e_ch_${process.pid}`;
const port = await freePort();
const auth = { authorization: `Bearer ${PUBLISHER}` };
let baseUrl, cluster, shards, worker, admin, origin, experimentId;

async function api(method, path, body) {
  const res = await fetch(`${admin.url}${path}`, {
    method, headers: { ...auth, "content-type": "application/json" }, body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The rows `sql` answers on one shard's HTTP interface, as arrays of strings. */
async function query(shard, sql) {
  const res = await fetch(`http://${shard}/?database=${database}`, { method: "POST", body: `${sql} FORMAT TabSeparated` });
  const text = await res.text();
  assert.ok(res.ok, `${shard}: ${sql}: ${text}`);
  return text.split("\n").filter(Boolean).map((line) => line.split("\t"));
}

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  cluster = process.env.CLEAVE_E2E_CLICKHOUSE;
  assert.ok(cluster, "CLEAVE_E2E_CLICKHOUSE must name the ClickHouse cluster (scripts/test.sh starts one with scripts/clickhouse.sh)");
  shards = cluster.replace(/^clickhouse:\/\//, "").split("/")[0].split(",");
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  origin = await startOrigin((req, res) => {
    res.writeHead(200, { "content-type": "text/html", "cache-control": "no-store" });
    res.end("<html><head></head><body>page</body></html>");
  });
  worker = await startWorker({
    kvId: "cleave-snapshots-local",
    vars: {
      CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: 300, ORIGIN_URL: origin.url, CLEAVE_SERVER_TOKEN: "ch-server",
      CLEAVE_INGEST_URL: `http://127.0.0.1:${port}/ingest`, CLEAVE_INGEST_TOKEN: INGEST, CLEAVE_INGEST_RETRY_SECONDS: 1,
    },
    queues: {
      producers: { CLEAVE_EVENTS: "cleave-events", CLEAVE_DEAD_LETTERS: "cleave-events-dlq" },
      consumers: { "cleave-events": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 20 } },
    },
  });
  admin = await startAdmin({
    port,
    headers: auth,
    env: {
      DATABASE_URL: databaseUrl(baseUrl, database),
      CLEAVE_ANALYTICS_URL: `clickhouse://${shards.join(",")}/${database}`,
      CLEAVE_ADMIN_TOKENS: `publisher:pub:${PUBLISHER},ingest:edge:${INGEST}`,
      CLEAVE_SINK: "wrangler-local", CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
    },
  });
  const env = await api("POST", "/environments", { name: "shop" });
  const e = await api("POST", "/experiments", { key: "cta", name: "cta", environmentId: env.id });
  const variants = [];
  for (const v of ["control", "treatment"]) variants.push((await api("POST", `/experiments/${e.id}/variants`, { key: v })).id);
  await api("PUT", `/experiments/${e.id}/allocations`, {
    allocations: [{ variantId: variants[0], rangeStart: 0, rangeEnd: 4999 }, { variantId: variants[1], rangeStart: 5000, rangeEnd: 9999 }],
  });
  await api("POST", "/metric-definitions", { key: "purchase", kind: "conversion", direction: "increase" });
  await api("POST", "/metric-definitions", { key: "revenue", kind: "continuous", direction: "increase" });
  await api("PUT", `/experiments/${e.id}/metrics`, {
    metrics: [{ metric: "purchase", role: "primary" }, { metric: "revenue", role: "secondary" }],
  });
  await api("PATCH", `/experiments/${e.id}/status`, { status: "RUNNING" });
  experimentId = e.id;
  const [live] = await waitFor(async () => {
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=probe&expose=none`, { headers: SERVER });
    return Object.keys(r.json?.data?.assignments ?? {}).length === 1;
  }, 30_000);
  assert.ok(live, "the worker never served the published snapshot");
});

after(async () => {
  await admin?.stop();
  await worker?.stop();
  await origin?.close();
  for (const shard of shards ?? []) {
    await fetch(`http://${shard}/`, { method: "POST", body: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  }
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

test("the edge's exposures and events land on one shard per unit and results count them exactly", async () => {
  const enrolled = new Map();
  const events = [];
  for (let i = 0; i < 160; i++) {
    const unit = `visitor-${i}`;
    // Half arrive as proxied pages, half through decide; every tenth comes back (same day:
    // the same exposure id again).
    const visits = i % 10 === 0 ? 2 : 1;
    for (let v = 0; v < visits; v++) {
      if (i % 2 === 0) {
        const page = await call(`${worker.url}/`, { headers: { cookie: `cleave_uid=${unit}` } });
        assert.equal(page.status, 200, page.text);
      } else {
        const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}&experiments=cta`, { headers: SERVER });
        assert.equal(r.status, 200, r.text);
      }
    }
    const look = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}&expose=none`, { headers: SERVER });
    enrolled.set(unit, look.json.data.assignments.cta.variant);
    if (i % 3 === 0) events.push({ event_id: `p-${i}`, unit, metric: "purchase" });
    events.push({ event_id: `r-${i}`, unit, metric: "revenue", value: (i % 8) * 2.5 });
  }
  for (let copy = 0; copy < 2; copy++) {
    // The same events twice: a client retrying keeps the ids.
    const posted = await call(`${worker.url}/_cleave/v1/events`, {
      method: "POST", headers: { "content-type": "application/json", ...SERVER }, body: JSON.stringify({ events }),
    });
    assert.equal(posted.status, 202, posted.text);
  }
  const purchases = events.filter((e) => e.metric === "purchase");
  const want = (variant) => [...enrolled.values()].filter((v) => v === variant).length;

  const [results] = await waitFor(async () => {
    const r = await api("GET", `/experiments/${experimentId}/results`);
    const units = r.variants.reduce((n, v) => n + v.units, 0);
    const converted = r.metrics[0].variants.reduce((n, v) => n + v.conversions, 0);
    return units === enrolled.size && converted === purchases.length ? r : undefined;
  }, 60_000);
  assert.ok(results, `results never counted ${enrolled.size} units and ${purchases.length} purchases:\n${admin.output().slice(-3000)}`);
  assert.deepEqual(results.variants.map((v) => [v.key, v.units]), [["control", want("control")], ["treatment", want("treatment")]]);
  for (const v of results.variants) {
    // One exposure per unit and day, however often it was seen.
    assert.equal(v.exposures, v.units, JSON.stringify(v));
  }
  const revenue = results.metrics[1];
  for (const arm of revenue.variants) {
    const sum = events.filter((e) => e.metric === "revenue" && enrolled.get(e.unit) === arm.variant).reduce((s, e) => s + e.value, 0);
    assert.ok(Math.abs(arm.mean * arm.units - sum) < 1e-9, `${arm.variant}: mean ${arm.mean} × ${arm.units} != ${sum}`);
  }

  // Each shard holds whole units: every unit's exposures and events on one shard, both shards used.
  const unitsOn = [];
  for (const shard of shards) {
    const exposed = new Set((await query(shard, "SELECT DISTINCT unit FROM exposures_local WHERE experiment = 'cta'")).map(([u]) => u));
    const withEvents = (await query(shard, "SELECT DISTINCT unit FROM events_local")).map(([u]) => u);
    for (const u of withEvents) assert.ok(exposed.has(u), `${u}'s events are on ${shard} but its exposures are not`);
    assert.ok(exposed.size > 0, `no units on ${shard}`);
    unitsOn.push(exposed);
  }
  const [first, second] = unitsOn;
  assert.equal(first.size + second.size, enrolled.size);
  for (const u of first) assert.ok(!second.has(u), `${u} is on both shards`);
  // Through the Distributed table: the migrations of every shard, applied once each.
  for (const shard of shards) {
    assert.deepEqual(await query(shard, "SELECT version, name FROM schema_migrations ORDER BY version"), [["1", "exposures and events"]]);
  }
});
