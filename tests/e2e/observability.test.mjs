// What the worker reports about itself, through the compiled worker in workerd: a data point
// per decision (API and proxy) with the snapshot version and age, snapshot loads and refusals,
// fail-open events with the request id, and a health answer that says at a glance whether the
// edge is current.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ROOT, call, openKv, readJson, startOrigin, startWorker, waitFor } from "./harness.mjs";

const REFRESH_MS = 200;
let worker, origin, kv, snapshot;

const points = async () => (await call(`${worker.url}/__analytics`)).json;

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    main: join(ROOT, "tests/e2e/analytics-shim.mjs"),
    vars: { ORIGIN_URL: origin.url, CLEAVE_REFRESH_MS: REFRESH_MS },
  });
  kv = await openKv(worker);
  snapshot = await readJson("tests/fixtures/assignment-snapshot.json");
});

after(async () => {
  await kv?.dispose();
  await worker?.stop();
  await origin?.close();
});

test("fail-open, loads, decisions and refusals become data points", async () => {
  // Nothing published: the proxy fails open and says so, with the request id.
  const page = await fetch(`${worker.url}/landing`, { headers: { "cf-ray": "ray-123" } });
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("cleave-snapshot"), null, "the origin's response is passed back as is");
  assert.equal(origin.received.at(-1).headers["cleave-snapshot"], "none");
  let seen = await points();
  const failOpen = seen.find((p) => p.blobs[0] === "fail_open");
  assert.ok(failOpen, JSON.stringify(seen));
  assert.deepEqual(failOpen.indexes, ["cases"]);
  assert.match(failOpen.blobs[2], /^proxy: no snapshot published/);
  assert.equal(failOpen.blobs[3], "ray-123");
  assert.equal((await call(`${worker.url}/_cleave/health`)).json.data.status, "none");

  await kv.publish(snapshot);
  const [health] = await waitFor(async () => {
    const h = await call(`${worker.url}/_cleave/health`);
    return h.json.data.version === snapshot.version ? h.json.data : undefined;
  }, REFRESH_MS * 20);
  assert.equal(health.status, "ok");
  seen = await points();
  const loaded = seen.find((p) => p.blobs[0] === "snapshot_loaded");
  assert.ok(loaded, JSON.stringify(seen));
  assert.equal(loaded.doubles[0], snapshot.version);
  assert.ok(loaded.doubles[2] > 0, "the snapshot's age in ms");

  const decided = await call(`${worker.url}/_cleave/v1/decide?id.user=u1`);
  assert.equal(decided.status, 200);
  await fetch(`${worker.url}/landing`).then((r) => r.text());
  seen = await points();
  const decisions = seen.filter((p) => p.blobs[0] === "decision");
  assert.deepEqual(decisions.map((p) => p.blobs[2]), ["api", "proxy"]);
  const api = decisions[0];
  assert.equal(api.doubles[0], snapshot.version);
  assert.equal(api.doubles[1], Object.keys(decided.json.data.assignments).length);

  // A corrupt newer version: refused, reported, and the health check shows it at a glance.
  await kv.put(`snapshot:cases:v${snapshot.version + 1}`, "{not json");
  await kv.put("snapshot:cases:current", JSON.stringify({ version: snapshot.version + 1 }));
  const [stale] = await waitFor(async () => {
    const h = await call(`${worker.url}/_cleave/health`);
    return h.json.data.status === "stale" ? h.json.data : undefined;
  }, REFRESH_MS * 20);
  assert.ok(stale, "health never turned stale");
  assert.equal(stale.version, snapshot.version);
  const refused = (await points()).find((p) => p.blobs[0] === "snapshot_refused");
  assert.ok(refused);
  assert.match(refused.blobs[2], new RegExp(`v${snapshot.version + 1} refused`));
  assert.equal(refused.doubles[0], snapshot.version, "the version still in service");
});
