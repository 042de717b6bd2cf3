// Rate limiting in workerd with a real (local) Workers rate-limiting binding: the decide API
// answers 429 in the envelope once a client is over its limit, other clients are unaffected,
// and proxied traffic is never limited by cleave.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { call, readJson, startOrigin, startWorker } from "./harness.mjs";

const LIMIT = 5;
let worker, origin;

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    vars: { ORIGIN_URL: origin.url, CLEAVE_RATE_LIMIT_KEY: "header:x-api-key" },
    ratelimits: { DECIDE_RATE_LIMITER: { simple: { limit: LIMIT, period: 60 } } },
    seed: [await readJson("tests/fixtures/assignment-snapshot.json")],
  });
});

after(async () => {
  await worker?.stop();
  await origin?.close();
});

const decide = (client, user) =>
  call(`${worker.url}/_cleave/v1/decide?id.user=${user}`, { headers: { "x-api-key": client } });

test("a client over its limit gets 429 in the envelope; others and the proxy do not", async () => {
  const statuses = [];
  for (let i = 0; i < LIMIT + 3; i++) statuses.push((await decide("client-a", `u${i}`)).status);
  assert.deepEqual(statuses.slice(0, LIMIT), Array(LIMIT).fill(200), `statuses ${statuses}`);
  assert.ok(statuses.slice(LIMIT).every((s) => s === 429), `statuses ${statuses}`);
  const limited = await decide("client-a", "u-again");
  assert.equal(limited.status, 429);
  assert.equal(limited.json.meta.status, 429);
  assert.match(limited.json.meta.error, /too many decide calls/);

  const other = await decide("client-b", "u1");
  assert.equal(other.status, 200, "another client has its own budget");

  // POST decide is limited too.
  const post = await call(`${worker.url}/_cleave/v1/decide`, {
    method: "POST", headers: { "x-api-key": "client-a", "content-type": "application/json" },
    body: JSON.stringify({ units: { user: "u1" } }),
  });
  assert.equal(post.status, 429);

  const before = origin.received.length;
  for (let i = 0; i < LIMIT * 3; i++) {
    const r = await fetch(`${worker.url}/page-${i}`, { headers: { "x-api-key": "client-a" } });
    assert.equal(r.status, 200);
    await r.text();
  }
  assert.equal(origin.received.length - before, LIMIT * 3, "every proxied request reached the origin");
});

test("flag evaluations count against the same budget", async () => {
  const evaluate = () => call(`${worker.url}/_cleave/env/cases/ofrep/v1/evaluate/flags`, {
    method: "POST", headers: { "x-api-key": "client-c", "content-type": "application/json" },
    body: JSON.stringify({ context: { targetingKey: "u1" } }),
  });
  const statuses = [];
  for (let i = 0; i < LIMIT + 2; i++) statuses.push((await evaluate()).status);
  assert.deepEqual(statuses.slice(0, LIMIT), Array(LIMIT).fill(200), `statuses ${statuses}`);
  assert.ok(statuses.slice(LIMIT).every((s) => s === 429), `statuses ${statuses}`);
  assert.match((await evaluate()).json.meta.error, /too many flag evaluations/);
});
