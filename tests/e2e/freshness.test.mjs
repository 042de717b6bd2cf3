// Freshness through the environment's pointer object (SnapshotPointer): the admin pushes each
// pointer to the worker before it writes KV, and isolates read the object at each refresh, so
// a publish, pause or rollback is served within the refresh interval even where KV still
// holds an older pointer (Workers KV caches a key per location for up to about a minute).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { call, databaseUrl, freePort, openKv, startAdmin, startWorker, waitFor } from "./harness.mjs";

const run = promisify(execFile);
const REFRESH_MS = 300;
const TOKEN = "freshness-admin-token";
const PUBLISH_TOKEN = "freshness-publish-token";
const database = `cleave_e2e_fresh_${process.pid}`;
let baseUrl, worker, admin, kv;

async function api(method, path, body) {
  const res = await fetch(`${admin.url}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, "x-cleave-actor": "e2e" },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}\n${admin.output()}`);
  return json;
}

const health = async () => (await call(`${worker.url}/_cleave/health`)).json.data;

/** Milliseconds until the decide API answers with `version`, polling every 20 ms. */
async function servedAfter(version) {
  const started = Date.now();
  const [seen] = await waitFor(async () => {
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1`);
    return r.json?.meta?.snapshot?.version === version;
  }, REFRESH_MS * 10);
  assert.ok(seen, `v${version} was never served; health: ${JSON.stringify(await health())}`);
  return Date.now() - started;
}

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  worker = await startWorker({
    kvId: "cleave-snapshots-local",
    vars: { CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: REFRESH_MS, CLEAVE_PUBLISH_TOKEN: PUBLISH_TOKEN },
  });
  kv = await openKv(worker);
  admin = await startAdmin({
    port: await freePort(),
    headers: { authorization: `Bearer ${TOKEN}` },
    env: {
      DATABASE_URL: databaseUrl(baseUrl, database), CLEAVE_ADMIN_API_TOKEN: TOKEN,
      CLEAVE_SINK: "wrangler-local", CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
      CLEAVE_WORKER_URL: worker.url, CLEAVE_PUBLISH_TOKEN: PUBLISH_TOKEN,
    },
  });
});

after(async () => {
  await admin?.stop();
  await worker?.stop();
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

test("publishes, pauses and rollbacks are served from the pointer object, whatever KV still says", async (t) => {
  const env = await api("POST", "/environments", { name: "shop" });
  const exp = await api("POST", "/experiments", { key: "hero", name: "Hero", environmentId: env.id });
  const control = await api("POST", `/experiments/${exp.id}/variants`, { key: "control" });
  const bold = await api("POST", `/experiments/${exp.id}/variants`, { key: "bold" });
  await api("PUT", `/experiments/${exp.id}/allocations`, {
    allocations: [
      { variantId: control.id, rangeStart: 0, rangeEnd: 4999 },
      { variantId: bold.id, rangeStart: 5000, rangeEnd: 9999 },
    ],
  });
  assert.equal((await api("PATCH", `/experiments/${exp.id}/status`, { status: "RUNNING" })).published.version, 1);
  const first = await servedAfter(1);
  assert.equal((await health()).pointer_from, "object");

  assert.equal((await api("PATCH", `/experiments/${exp.id}/status`, { status: "PAUSED" })).published.version, 2);
  const paused = await servedAfter(2);
  // KV at this location goes back to v1, as a location's cache of the old pointer would.
  await kv.put("snapshot:shop:current", JSON.stringify({ version: 1 }));
  await new Promise((ok) => setTimeout(ok, REFRESH_MS * 4));
  const decided = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1`);
  assert.equal(decided.json.meta.snapshot.version, 2, "the pause stays in service: the object is followed, not KV");
  assert.deepEqual(decided.json.data.assignments, {});

  assert.equal((await api("POST", `/environments/${env.id}/rollback`, { version: 1 })).version, 1);
  const rolledBack = await servedAfter(1);
  t.diagnostic(`publish -> first request served: v1 ${first} ms, pause ${paused} ms, rollback ${rolledBack} ms (refresh ${REFRESH_MS} ms)`);
  for (const ms of [first, paused, rolledBack]) {
    assert.ok(ms <= REFRESH_MS * 3 + 500, `served ${ms} ms after the admin answered; the refresh is ${REFRESH_MS} ms`);
  }
});

test("the push endpoint takes only the publish token and refuses what may not replace the pointer", async () => {
  const push = (body, token = PUBLISH_TOKEN, env = "shop") =>
    call(`${worker.url}/_cleave/v1/pointer?env=${env}`, {
      method: "PUT",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const none = await push({ version: 99 }, null);
  assert.equal(none.status, 401);
  assert.match(none.json.meta.error, /CLEAVE_PUBLISH_TOKEN/);
  assert.equal((await push({ version: 99 }, "guess")).status, 401);
  const bad = await push("{not json");
  assert.equal(bad.status, 400);
  assert.match(bad.json.meta.error, /not a pointer/);
  assert.equal((await push({ version: 1 }, PUBLISH_TOKEN, "Not A Key")).status, 400);
  assert.equal((await call(`${worker.url}/_cleave/v1/pointer`)).status, 405);

  // The object holds v1 rolled back from v2: going below it needs a rollback marker that
  // covers what it holds.
  const down = await push({ version: 0 });
  assert.equal(down.status, 409);
  assert.match(down.json.meta.error, /older than v1/);
  assert.equal((await health()).version, 1, "a refused push changes nothing");

  // A pointer nobody published (a body KV does not hold) is taken by the object but never
  // replaces the good version in service.
  assert.equal((await push({ version: 7 })).status, 200);
  const [stale] = await waitFor(async () => {
    const h = await health();
    return h.status === "stale" && /v7/.test(h.reason ?? "") ? h : undefined;
  }, REFRESH_MS * 10);
  assert.ok(stale, "the worker reports the version it could not load");
  assert.equal(stale.version, 1);
});

test("a worker without the object binding reads KV and refuses pushes", async () => {
  const plain = await startWorker({ pointers: false, vars: { CLEAVE_ENV: "shop", CLEAVE_PUBLISH_TOKEN: PUBLISH_TOKEN } });
  try {
    const store = await openKv(plain);
    await store.publish({ ...(await kv.get("snapshot:shop:v1", "json")) });
    const [served] = await waitFor(async () => ((await call(`${plain.url}/_cleave/health`)).json?.data?.version === 1), 5_000);
    assert.ok(served);
    assert.equal((await call(`${plain.url}/_cleave/health`)).json.data.pointer_from, "kv");
    const push = await call(`${plain.url}/_cleave/v1/pointer?env=shop`, {
      method: "PUT", headers: { authorization: `Bearer ${PUBLISH_TOKEN}` }, body: JSON.stringify({ version: 2 }),
    });
    assert.equal(push.status, 501);
    assert.match(push.json.meta.error, /CLEAVE_POINTERS/);
  } finally {
    await plain.stop();
  }
});
