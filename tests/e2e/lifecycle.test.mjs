// Snapshot lifecycle in a running worker: fail-open before the first good load, last good
// version kept through bad publishes, new versions picked up within the refresh interval.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { call, headerSignature, openKv, readJson, startOrigin, startWorker, waitFor } from "./harness.mjs";

const REFRESH_MS = 400;
const SIGNING_KEY = "lifecycle-key";
let origin, base;

before(async () => {
  origin = await startOrigin();
  base = await readJson("tests/fixtures/assignment-snapshot.json");
});
after(async () => origin?.close());

const version = (n) => ({ ...base, version: n, published_by: `publisher-${n}` });

/** Proxy one request as a known visitor and return the headers the origin saw. */
async function proxied(worker) {
  const r = await call(`${worker.url}/page`, { headers: { cookie: "cleave_uid=u-1" } });
  assert.equal(r.status, 200, "proxied traffic always reaches the origin");
  assert.equal(r.text, "origin");
  return origin.received.at(-1).headers;
}

async function assertFailsOpen(worker, reason) {
  const seen = await proxied(worker);
  assert.equal(seen["cleave-snapshot"], "none");
  assert.equal(seen["cleave-assignments"], undefined);
  assert.equal(seen["cleave-unit"], "u-1");
  const sig = headerSignature(SIGNING_KEY, "u-1", "none");
  assert.equal(seen["cleave-signature"], sig);
  const api = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1`);
  assert.equal(api.status, 503);
  assert.match(api.json.meta.error, reason);
  const health = await call(`${worker.url}/_cleave/health`);
  assert.equal(health.status, 503);
  assert.match(health.json.data.reason, reason);
}

/** Waits for the worker to report `reason` (or to serve `version`), within a few refreshes. */
async function settle(worker, predicate) {
  const [health] = await waitFor(async () => {
    const h = await call(`${worker.url}/_cleave/health`);
    return predicate(h.json.data) ? h.json.data : undefined;
  }, REFRESH_MS * 5);
  assert.ok(health, "the worker did not reach the expected state");
  return health;
}

describe("before any good snapshot the site fails open", () => {
  let worker, kv;
  before(async () => {
    worker = await startWorker({
      vars: { ORIGIN_URL: origin.url, CLEAVE_REFRESH_MS: REFRESH_MS, CLEAVE_SIGNING_KEY: SIGNING_KEY },
    });
    kv = await openKv(worker);
  });
  after(async () => {
    await kv?.dispose();
    await worker?.stop();
  });

  test("missing pointer", async () => {
    await assertFailsOpen(worker, /pointer missing/);
  });

  test("missing body", async () => {
    await kv.put("snapshot:cases:current", { version: 5 });
    await settle(worker, (h) => /v5 is missing/.test(h.reason));
    await assertFailsOpen(worker, /body of v5 is missing/);
  });

  test("corrupt body", async () => {
    await kv.put("snapshot:cases:v5", "{ this is not json");
    await settle(worker, (h) => /not valid JSON/.test(h.reason));
    await assertFailsOpen(worker, /v5 refused: snapshot is not valid JSON/);
  });

  test("a body that fails validation", async () => {
    const bad = version(5);
    bad.experiments = [{ ...base.experiments[0], traffic: 20000 }];
    await kv.put("snapshot:cases:v5", bad);
    await settle(worker, (h) => /traffic 20000/.test(h.reason));
    await assertFailsOpen(worker, /experiments\[0\]\.traffic: traffic 20000 is outside/);
  });

  test("a body for another environment or version", async () => {
    await kv.put("snapshot:cases:v5", { ...version(6) });
    await settle(worker, (h) => /body says/.test(h.reason));
    await assertFailsOpen(worker, /body says environment "cases" version 6/);
  });

  test("then the first good version is served", async () => {
    await kv.publish(version(7));
    const health = await settle(worker, (h) => h.version === 7);
    assert.equal(health.stale, false);
    assert.equal((await proxied(worker))["cleave-snapshot"], "7");
  });
});

test("KV failing before the first good load fails open", async () => {
  const worker = await startWorker({ kv: false, vars: { ORIGIN_URL: origin.url, CLEAVE_SIGNING_KEY: SIGNING_KEY } });
  try {
    await assertFailsOpen(worker, /KV binding SNAPSHOTS unavailable/);
  } finally {
    await worker.stop();
  }
});

describe("a running worker", () => {
  let worker, kv;
  before(async () => {
    worker = await startWorker({
      vars: { ORIGIN_URL: origin.url, CLEAVE_REFRESH_MS: REFRESH_MS },
      seed: [version(1)],
    });
    kv = await openKv(worker);
  });
  after(async () => {
    await kv?.dispose();
    await worker?.stop();
  });

  test("serves a newly published version within the refresh interval", async () => {
    assert.equal((await proxied(worker))["cleave-snapshot"], "1");
    const publishedAt = Date.now();
    await kv.publish(version(2));
    const [seen] = await waitFor(async () => {
      const h = await proxied(worker);
      return h["cleave-snapshot"] === "2" ? Date.now() - publishedAt : undefined;
    }, REFRESH_MS * 5);
    assert.ok(seen !== undefined, "new version never served");
    // One refresh interval, plus the time the request that notices it takes.
    assert.ok(seen <= REFRESH_MS + 300, `served after ${seen} ms, refresh is ${REFRESH_MS} ms`);
    const api = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1`);
    // Who published is for introspection only, never in a public answer.
    assert.equal(api.json.meta.snapshot.version, 2);
    assert.equal(api.json.meta.snapshot.published_by, undefined);
  });

  test("re-reads only the pointer while the version is unchanged", async () => {
    // Bodies are immutable, so a worker that re-parsed an unchanged version would notice this
    // overwrite; one that only re-reads the pointer keeps serving what it parsed.
    await kv.put("snapshot:cases:v2", "overwritten");
    await new Promise((ok) => setTimeout(ok, REFRESH_MS * 3));
    const health = (await call(`${worker.url}/_cleave/health`)).json.data;
    assert.equal(health.version, 2);
    assert.equal(health.stale, false);
    assert.ok(health.checked_ms_ago < REFRESH_MS * 2, "the pointer is still being re-read");
    assert.equal((await proxied(worker))["cleave-snapshot"], "2");
  });

  test("keeps the last good version when a newer one is broken, and says it is stale", async () => {
    await kv.put("snapshot:cases:v3", "garbage");
    await kv.put("snapshot:cases:current", { version: 3 });
    const health = await settle(worker, (h) => h.stale);
    assert.equal(health.version, 2);
    assert.match(health.reason, /v3 refused/);
    const seen = await proxied(worker);
    assert.equal(seen["cleave-snapshot"], "2");
    assert.ok(seen["cleave-assignments"].length > 0);
    const api = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1`);
    assert.equal(api.status, 200);
    assert.equal(api.json.meta.snapshot.version, 2);

    await kv.put("snapshot:cases:current", { version: 4 });
    const missing = await settle(worker, (h) => /v4 is missing/.test(h.reason));
    assert.equal(missing.version, 2);
  });

  test("recovers with the next good version and rolls back to an older one", async () => {
    await kv.publish(version(4));
    const health = await settle(worker, (h) => h.version === 4);
    assert.equal(health.stale, false);
    await kv.put("snapshot:cases:current", { version: 1 });
    await settle(worker, (h) => h.version === 1);
    assert.equal((await proxied(worker))["cleave-snapshot"], "1");
  });
});
