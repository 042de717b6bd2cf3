// Proxy mode (docs/contracts.md §5) against a real local origin that records what it received.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { call, headerSignature, readJson, startOrigin, startWorker } from "./harness.mjs";

const SIGNING_KEY = "e2e-signing-key";
let worker, origin, snapshot, cases;

before(async () => {
  snapshot = await readJson("tests/fixtures/assignment-snapshot.json");
  cases = await readJson("tests/fixtures/assignment-cases.json");
  origin = await startOrigin();
  worker = await startWorker({
    vars: { ORIGIN_URL: origin.url, CLEAVE_SIGNING_KEY: SIGNING_KEY },
    seed: [snapshot],
  });
});

after(async () => {
  await worker?.stop();
  await origin?.close();
});

const lastReceived = () => origin.received.at(-1);

/** Parses the sf-dictionary the worker sends: key="value", ... */
function parseAssignments(value) {
  if (value === undefined) return {};
  return Object.fromEntries(
    value.split(", ").map((member) => {
      const m = /^([a-z][a-z0-9_.-]*)="([^"\\]*)"$/.exec(member);
      assert.ok(m, `not an sf-string member: ${member}`);
      return [m[1], m[2]];
    }),
  );
}

const signature = (unit, version, assignments) => headerSignature(SIGNING_KEY, unit, version, assignments);

test("a returning visitor's assignments reach the origin, signed", async () => {
  // "u-2" has no attributes in proxy mode: its expected assignments are the untargeted ones.
  const r = await call(`${worker.url}/products/42?color=red&x=1`, { headers: { cookie: "a=b; cleave_uid=u-2" } });
  assert.equal(r.status, 200);
  assert.equal(r.text, "origin");
  assert.equal(r.headers.get("x-origin"), "yes");
  assert.equal(r.headers.get("set-cookie"), null, "a known visitor gets no new cookie");
  const got = lastReceived();
  assert.equal(got.url, "/products/42?color=red&x=1");
  assert.equal(got.headers["cleave-unit"], "u-2");
  assert.equal(got.headers["cleave-snapshot"], "3");
  const assignments = got.headers["cleave-assignments"];
  const reference = cases.cases.find((c) => c.name === "user 2").expected;
  const untargeted = ["split", "ramp", "three-way", "hero-copy", "hero-image", "open-window"];
  const want = Object.fromEntries(Object.entries(reference).filter(([k]) => untargeted.includes(k)));
  assert.deepEqual(parseAssignments(assignments), want);
  assert.deepEqual(Object.keys(parseAssignments(assignments)), Object.keys(want).sort(), "members in key order");
  assert.equal(got.headers["cleave-signature"], signature("u-2", "3", assignments));
  assert.equal(got.headers.cookie, "a=b; cleave_uid=u-2");
});

test("spoofed cleave-* headers never reach the origin", async () => {
  await call(`${worker.url}/`, {
    headers: {
      cookie: "cleave_uid=u-7",
      "cleave-assignments": 'split="treatment"',
      "Cleave-Unit": "admin",
      "cleave-snapshot": "999",
      "cleave-signature": "forged",
      "cleave-anything": "x",
    },
  });
  const got = lastReceived().headers;
  assert.equal(got["cleave-unit"], "u-7");
  assert.equal(got["cleave-snapshot"], "3");
  assert.equal(got["cleave-anything"], undefined);
  assert.notEqual(got["cleave-signature"], "forged");
  assert.equal(got["cleave-signature"], signature("u-7", "3", got["cleave-assignments"] ?? ""));
});

test("a new visitor gets an id cookie once, then keeps it and its variants", async () => {
  const first = await call(`${worker.url}/landing`);
  const setCookie = first.headers.get("set-cookie");
  const m = /^cleave_uid=([A-Za-z0-9_-]+); Path=\/; Max-Age=34560000; HttpOnly; Secure; SameSite=Lax$/.exec(setCookie);
  assert.ok(m, `unexpected Set-Cookie: ${setCookie}`);
  const uid = m[1];
  const firstSeen = lastReceived().headers;
  assert.equal(firstSeen["cleave-unit"], uid);

  const second = await call(`${worker.url}/landing`, { headers: { cookie: `cleave_uid=${uid}` } });
  assert.equal(second.headers.get("set-cookie"), null);
  const secondSeen = lastReceived().headers;
  assert.equal(secondSeen["cleave-unit"], uid);
  assert.equal(secondSeen["cleave-assignments"], firstSeen["cleave-assignments"]);

  const other = await call(`${worker.url}/landing`);
  assert.notEqual(/cleave_uid=([^;]+)/.exec(other.headers.get("set-cookie"))[1], uid, "ids are random");
});

test("a malformed cleave_uid is replaced, not trusted", async () => {
  const r = await call(`${worker.url}/`, { headers: { cookie: 'cleave_uid=bad"value' } });
  const uid = /^cleave_uid=([^;]+);/.exec(r.headers.get("set-cookie"))[1];
  assert.equal(lastReceived().headers["cleave-unit"], uid);
  assert.notEqual(uid, 'bad"value');
});

test("methods, bodies, redirects and origin statuses pass through untouched", async () => {
  const post = await call(`${worker.url}/api/orders?draft=1`, {
    method: "POST",
    headers: { cookie: "cleave_uid=u-1", "content-type": "application/json" },
    body: JSON.stringify({ sku: "abc", qty: 2 }),
  });
  assert.equal(post.status, 200);
  const got = lastReceived();
  assert.equal(got.method, "POST");
  assert.equal(got.url, "/api/orders?draft=1");
  assert.deepEqual(JSON.parse(got.body), { sku: "abc", qty: 2 });
  assert.equal(got.headers["content-type"], "application/json");
});

test("origin redirects and errors are returned as they are", async () => {
  const origin2 = await startOrigin((req, res) => {
    if (req.url === "/old") {
      res.writeHead(301, { location: "/new" });
      return res.end();
    }
    res.writeHead(418, { "content-type": "text/plain" });
    res.end("teapot");
  });
  const w = await startWorker({ vars: { ORIGIN_URL: origin2.url }, seed: [snapshot] });
  try {
    const r = await fetch(`${w.url}/old`, { redirect: "manual", headers: { cookie: "cleave_uid=u-1" } });
    assert.equal(r.status, 301);
    assert.equal(r.headers.get("location"), "/new");
    const t = await call(`${w.url}/brew`);
    assert.equal(t.status, 418);
    assert.equal(t.text, "teapot");
    assert.match(t.headers.get("set-cookie"), /^cleave_uid=/);
    assert.equal(origin2.received.at(-1).headers["cleave-signature"], undefined, "no key, no signature");
  } finally {
    await w.stop();
    await origin2.close();
  }
});

test("an origin under a base path gets the request's path below it, encoded as sent, with its query", async () => {
  const origin3 = await startOrigin();
  const w = await startWorker({ vars: { ORIGIN_URL: `${origin3.url}/base/` }, seed: [snapshot] });
  try {
    const r = await call(`${w.url}/a%20b/caf%C3%A9?x=1&y=%2F&z`);
    assert.equal(r.status, 200);
    assert.equal(origin3.received.at(-1).url, "/base/a%20b/caf%C3%A9?x=1&y=%2F&z");
    await call(`${w.url}/`);
    assert.equal(origin3.received.at(-1).url, "/base/");
  } finally {
    await w.stop();
    await origin3.close();
  }
});
