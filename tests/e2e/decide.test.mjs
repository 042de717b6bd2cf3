// The decision API (docs/contracts.md §5) served by the compiled worker in workerd with local KV.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { call, openKv, pool, readJson, startWorker } from "./harness.mjs";

const TOKEN = "e2e-admin-token";
let worker, kv, snapshot, cases;

before(async () => {
  snapshot = await readJson("tests/fixtures/assignment-snapshot.json");
  cases = await readJson("tests/fixtures/assignment-cases.json");
  worker = await startWorker({ vars: { CLEAVE_ADMIN_TOKEN: TOKEN }, seed: [snapshot] });
  kv = await openKv(worker);
});

after(async () => {
  await kv?.dispose();
  await worker?.stop();
});

const variants = (json) =>
  Object.fromEntries(Object.entries(json.data.assignments).map(([k, a]) => [k, a.variant]));

function queryOf(c) {
  const q = new URLSearchParams();
  for (const [type, id] of Object.entries(c.units)) q.append(`id.${type}`, id);
  for (const [name, value] of Object.entries(c.attributes)) q.append(`ctx.${name}`, value);
  if (c.experiments) q.append("experiments", c.experiments.join(","));
  return q;
}

describe("shared assignment cases over HTTP", () => {
  test("GET answers every case like the native engine and the reference", async () => {
    assert.ok(cases.cases.length > 50);
    await pool(cases.cases, 8, async (c) => {
      const r = await call(`${worker.url}/_cleave/v1/decide?${queryOf(c)}`);
      assert.equal(r.status, 200, `${c.name}: ${r.text}`);
      assert.deepEqual(variants(r.json), c.expected, c.name);
    });
  });

  test("POST answers every case the same way", async () => {
    await pool(cases.cases, 8, async (c) => {
      const body = { units: c.units, attributes: c.attributes, env: "cases" };
      if (c.experiments) body.experiments = c.experiments;
      const r = await call(`${worker.url}/_cleave/v1/decide`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(r.status, 200, `${c.name}: ${r.text}`);
      assert.deepEqual(variants(r.json), c.expected, c.name);
    });
  });
});

test("the response envelope carries ids, payloads and the snapshot it came from", async () => {
  const r = await call(`${worker.url}/_cleave/v1/decide?user_key=u-1&experiments=split,geo&ctx.country=US&ctx.plan=pro`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.deepEqual(r.json.meta, {
    status: 200,
    // Who published is for introspection only.
    snapshot: { version: 3, published_at: "2026-11-01T09:00:00Z" },
  });
  assert.deepEqual(r.json.data.units, { user: "u-1" });
  assert.equal(r.json.data.environment, "cases");
  const split = r.json.data.assignments.split;
  const chosen = snapshot.experiments[0].variants.find((v) => v.key === split.variant);
  assert.deepEqual(split, {
    experiment_id: "e-split", variant: chosen.key, variant_id: chosen.id, payload: chosen.payload,
  });
  assert.deepEqual(Object.keys(r.json.data.assignments).sort(), ["geo", "split"]);
});

test("an empty experiments filter assigns nothing", async () => {
  const r = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1&experiments=`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.data.assignments, {});
});

test("10,000 users split 50/50 pass a chi-square test at p > 0.001", async () => {
  const users = Array.from({ length: 10_000 }, (_, i) => `chi-${i}`);
  const counts = { control: 0, treatment: 0 };
  await pool(users, 16, async (u) => {
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${u}&experiments=split`);
    assert.equal(r.status, 200);
    counts[r.json.data.assignments.split.variant] += 1;
  });
  assert.equal(counts.control + counts.treatment, 10_000);
  const expected = 5_000;
  const chi2 = ((counts.control - expected) ** 2 + (counts.treatment - expected) ** 2) / expected;
  // Critical value of chi-square with 1 degree of freedom at p = 0.001.
  assert.ok(chi2 < 10.828, `chi2 = ${chi2} for ${JSON.stringify(counts)}`);
});

describe("request errors", () => {
  const expectError = async (path, status, pattern, init) => {
    const r = await call(`${worker.url}${path}`, init);
    assert.equal(r.status, status, r.text);
    assert.deepEqual(r.json.data, {});
    assert.equal(r.json.meta.status, status);
    assert.match(r.json.meta.error, pattern);
  };

  test("no identifier is a 400, checked before snapshot availability", async () => {
    await expectError("/_cleave/v1/decide?ctx.country=US", 400, /no identifier/);
    await expectError("/_cleave/v1/decide?env=nothing-here", 400, /no identifier/);
  });

  test("malformed context is a 400", async () => {
    await expectError(`/_cleave/v1/decide?id.user=u&context=${encodeURIComponent("{nope")}`, 400, /malformed context/);
    await expectError(`/_cleave/v1/decide?id.user=u&context=${encodeURIComponent("[1]")}`, 400, /expected a JSON object/);
    await expectError("/_cleave/v1/decide", 400, /malformed JSON body/, { method: "POST", body: "{" });
  });

  test("oversized input is a 400 that says which; an oversized body is a 413", async () => {
    await expectError(`/_cleave/v1/decide?id.user=${"x".repeat(300)}`, 400, /id\.user is longer than 256 bytes/);
    await expectError(`/_cleave/v1/decide?id.user=u&pad=${"x".repeat(9000)}`, 400, /query string is longer/);
    await expectError("/_cleave/v1/decide", 413, /request body is longer than 65536 bytes/, {
      method: "POST", body: JSON.stringify({ units: { user: "u" }, pad: "x".repeat(70_000) }),
    });
  });

  test("an environment without a snapshot is a 503", async () => {
    await expectError("/_cleave/v1/decide?id.user=u&env=nothing-here", 503, /no snapshot for environment "nothing-here"/);
  });

  test("unknown paths under /_cleave/ are 404 and wrong methods 405", async () => {
    await expectError("/_cleave/v2/decide", 404, /no such endpoint/);
    await expectError("/_cleave/", 404, /no such endpoint/);
    await expectError("/_cleave/v1/decide?id.user=u", 405, /GET or POST/, { method: "PUT" });
  });

  test("a force token that is not valid is a 400", async () => {
    await expectError("/_cleave/v1/decide?id.user=u&force=split:treatment", 400, /invalid force token/);
  });
});

describe("introspection and explain need the admin token", () => {
  const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

  for (const path of ["/_cleave/v1/snapshot", "/_cleave/v1/experiments/split", "/_cleave/v1/context", "/_cleave/v1/decide?id.user=u&explain=1"]) {
    test(`${path} is 401 without it`, async () => {
      const r = await call(`${worker.url}${path}`);
      assert.equal(r.status, 401);
      assert.match(r.json.meta.error, /bearer token/);
      const wrong = await call(`${worker.url}${path}`, { headers: { authorization: "Bearer nope" } });
      assert.equal(wrong.status, 401);
    });
  }

  test("with it: the snapshot, one experiment, the derived context and explanations", async () => {
    const s = await call(`${worker.url}/_cleave/v1/snapshot`, auth);
    assert.equal(s.status, 200);
    assert.equal(s.json.data.version, 3);
    assert.equal(s.json.data.experiments.length, snapshot.experiments.length);
    const e = await call(`${worker.url}/_cleave/v1/experiments/three-way`, auth);
    assert.equal(e.json.data.salt, "three-way-2026");
    const missing = await call(`${worker.url}/_cleave/v1/experiments/nope`, auth);
    assert.equal(missing.status, 404);
    const ctx = await call(`${worker.url}/_cleave/v1/context?id.account=a1&ctx.plan=pro&ctx.url.path=/spoof`, auth);
    assert.deepEqual(ctx.json.data.units, { account: "a1" });
    assert.equal(ctx.json.data.attributes.plan, "pro");
    assert.equal(ctx.json.data.attributes["url.path"], "/_cleave/v1/context");
    const x = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1&explain=1`, auth);
    assert.equal(x.json.data.explain.paused.outcome, "not_running");
    assert.equal(x.json.data.explain.future.outcome, "outside_window");
    assert.equal(x.json.data.explain["billing-page"].outcome, "no_unit");
    assert.equal(x.json.data.explain.split.outcome, "assigned");
  });
});

test("edge attributes cannot be set by the request", async () => {
  const edge = {
    ...snapshot, environment: "edge", version: 1,
    experiments: [
      { id: "e1", key: "api-only", status: "running",
        targeting: [{ conditions: [{ attribute: "url.path", operator: "starts_with", value: "/_cleave/" }] }],
        variants: [{ id: "v1", key: "on", ranges: [[0, 9999]] }] },
      { id: "e2", key: "spoofable", status: "running",
        targeting: [{ conditions: [{ attribute: "url.path", operator: "eq", value: "/spoof" }] }],
        variants: [{ id: "v2", key: "on", ranges: [[0, 9999]] }] },
    ],
  };
  await kv.publish(edge);
  const r = await call(`${worker.url}/_cleave/v1/decide?env=edge&id.user=u&ctx.url.path=/spoof&context=${encodeURIComponent('{"url.path":"/spoof"}')}`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(variants(r.json), { "api-only": "on" });
});

test("health reports the snapshot in service", async () => {
  const r = await call(`${worker.url}/_cleave/health`);
  assert.equal(r.status, 200);
  assert.equal(r.json.data.environment, "cases");
  assert.equal(r.json.data.version, 3);
  assert.equal(r.json.data.stale, false);
  assert.ok(r.json.data.age_ms >= 0);
  const none = await call(`${worker.url}/_cleave/health?env=nothing-here`);
  assert.equal(none.status, 503);
  assert.equal(none.json.data.stale, true);
  assert.match(none.json.data.reason, /pointer missing/);
});
