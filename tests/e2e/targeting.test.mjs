// Targeting, identity and QA through the compiled worker in workerd: context schema, reserved
// namespaces, User-Agent classes and bots, signed force tokens (API and proxy cookie), explain.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { call, derivedKey, mintForce, startOrigin, startWorker } from "./harness.mjs";

const TOKEN = "e2e-admin-token";
const KEY = "e2e-signing-key";
const DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const MOBILE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

const all = (key) => ({ id: `v-${key}`, key, ranges: [[0, 9999]] });
const experiment = (key, more) => ({
  id: `id-${key}`, key, status: "running",
  variants: [all("on"), { id: `off-${key}`, key: "off", ranges: [] }],
  ...more,
});

const snapshot = {
  schema: 1, environment: "qa", version: 1,
  published_at: "2026-11-21T10:00:00Z", published_by: "e2e",
  context_schema: [
    { name: "plan", source: "header", key: "x-plan", type: "string", required: true },
    { name: "beta", source: "cookie", key: "beta", type: "bool", default: false },
    { name: "app", source: "query", key: "app", type: "semver" },
  ],
  experiments: [
    experiment("mobile-only", { targeting: [{ conditions: [{ attribute: "ua.device", operator: "eq", value: "mobile" }] }] }),
    experiment("nz-only", { targeting: [{ conditions: [{ attribute: "cf.country", operator: "eq", value: "NZ" }] }] }),
    experiment("new-app", { targeting: [{ conditions: [
      { attribute: "app", operator: "semver_gte", value: "2.0.0" },
      { attribute: "plan", operator: "regex", value: "^(pro|team)$" },
      { not: { attribute: "beta", operator: "eq", value: true } },
    ] }] }),
    experiment("nobody", { traffic: 0 }),
  ],
};

let worker, origin;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    vars: { CLEAVE_ENV: "qa", CLEAVE_ADMIN_TOKEN: TOKEN, CLEAVE_SIGNING_KEY: KEY, ORIGIN_URL: origin.url },
    seed: [snapshot],
  });
});
after(async () => {
  await worker?.stop();
  await origin?.close();
});

/** A force token for environment qa, made independently of cleave's code. */
function mint(pairs, expiresMs, secret = KEY, options = {}) {
  return mintForce(secret, "qa", pairs, expiresMs, options);
}

async function decide(query, { ua = DESKTOP, headers = {} } = {}) {
  return call(`${worker.url}/_cleave/v1/decide?env=qa&${query}`, {
    headers: { "user-agent": ua, "x-plan": "pro", ...headers },
  });
}
const enrolled = (r) => Object.keys(r.json.data.assignments).sort();

describe("context schema", () => {
  test("a missing required attribute or a value that does not convert is a 400 naming it", async () => {
    const missing = await call(`${worker.url}/_cleave/v1/decide?env=qa&id.user=u1`);
    assert.equal(missing.status, 400);
    assert.match(missing.json.meta.error, /missing required attribute "plan"/);
    const bad = await decide("id.user=u1&app=2.x");
    assert.equal(bad.status, 400);
    assert.match(bad.json.meta.error, /attribute "app": "2\.x" is not a SemVer/);
  });

  test("sources, defaults and conversion feed targeting, and the context is echoed typed", async () => {
    const r = await decide("id.user=u1&app=2.1.0");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data.context, { plan: "pro", beta: false, app: "2.1.0" });
    assert.deepEqual(enrolled(r), ["new-app"]);
    const beta = await decide("id.user=u1&app=2.1.0", { headers: { cookie: "beta=yes" } });
    assert.equal(beta.json.data.context.beta, true);
    assert.deepEqual(enrolled(beta), []);
    const old = await decide("id.user=u1&app=1.9.9");
    assert.deepEqual(enrolled(old), []);
    const explicit = await decide("id.user=u1&app=2.0.0&ctx.plan=free");
    assert.equal(explicit.json.data.context.plan, "free", "ctx.<name> wins over the header");
    assert.deepEqual(enrolled(explicit), []);
  });
});

describe("reserved namespaces and the User-Agent", () => {
  test("a request cannot set cf.*, ua.* or url.* attributes", async () => {
    for (const q of ["ctx.ua.device=mobile", "ctx.cf.country=NZ", `context=${encodeURIComponent('{"ua.device":"mobile","cf.country":"NZ"}')}`]) {
      const r = await decide(`id.user=u1&${q}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(enrolled(r), [], q);
    }
    const post = await call(`${worker.url}/_cleave/v1/decide`, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": DESKTOP, "x-plan": "pro" },
      body: JSON.stringify({ env: "qa", units: { user: "u1" }, attributes: { "ua.device": "mobile", "cf.country": "NZ", "url.path": "/x" } }),
    });
    assert.deepEqual(enrolled(post), []);
  });

  test("ua.device comes from the User-Agent header", async () => {
    assert.deepEqual(enrolled(await decide("id.user=u1", { ua: MOBILE })), ["mobile-only"]);
    assert.deepEqual(enrolled(await decide("id.user=u1", { ua: DESKTOP })), []);
  });

  test("crawlers are enrolled in nothing under the default bot policy", async () => {
    const r = await decide("id.user=u1&app=2.1.0", { ua: BOT });
    assert.deepEqual(enrolled(r), []);
    const x = await call(`${worker.url}/_cleave/v1/decide?env=qa&id.user=u1&explain=1`, {
      headers: { "user-agent": BOT, "x-plan": "pro", authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(x.json.data.explain["new-app"].outcome, "bot");
  });
});

describe("force tokens", () => {
  const future = Date.now() + 3_600_000;

  test("a valid token forces variants past targeting and traffic, and explain says so", async () => {
    const token = mint("nobody=on,mobile-only=off", future);
    const r = await decide(`id.user=u1&force=${token}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.assignments.nobody.variant, "on");
    assert.equal(r.json.data.assignments["mobile-only"].variant, "off");
    const x = await decide(`id.user=u1&explain=1&force=${token}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.deepEqual(x.json.data.explain.nobody, { outcome: "forced", variant: "on" });
    assert.equal(x.json.data.explain["nz-only"].outcome, "not_targeted");
  });

  test("every failure mode is a 400 on the API", async () => {
    const good = mint("nobody=on", future);
    const [body, sig] = good.split(".");
    const cases = {
      unsigned: body,
      "wrong key": mint("nobody=on", future, "other-key"),
      expired: mint("nobody=on", Date.now() - 1000, KEY, { issuedMs: Date.now() - 5000 }),
      tampered: `${Buffer.from(`qa:${Date.now()}:${future}:nobody=off`).toString("base64url")}.${sig}`,
      garbage: "not-a-token",
      "another environment": mintForce(KEY, "prod", "nobody=on", future),
      "longer than 7 days": mint("nobody=on", Date.now() + 8 * 24 * 3_600_000),
      "signed with the secret itself": mint("nobody=on", future, KEY, { key: KEY }),
      "signed with the origins' header key": mint("nobody=on", future, KEY, { key: derivedKey(KEY, "headers") }),
      "the old format (v1)": `${Buffer.from(`${future}:nobody=on`).toString("base64url")}.x`,
    };
    for (const [name, token] of Object.entries(cases)) {
      const r = await decide(`id.user=u1&force=${encodeURIComponent(token)}`);
      assert.equal(r.status, 400, name);
      assert.match(r.json.meta.error, /invalid force token/, name);
    }
  });

  test("in proxy mode a valid cleave_force cookie forces, an invalid one is ignored", async () => {
    const send = async (cookie) => {
      const before = origin.received.length;
      const r = await fetch(`${worker.url}/page`, { headers: { cookie: `cleave_uid=u1; ${cookie}`, "user-agent": DESKTOP, "x-plan": "pro" } });
      assert.equal(r.status, 200);
      await r.text();
      return origin.received[before].headers["cleave-assignments"];
    };
    assert.equal(await send(`cleave_force=${mint("nobody=on", future)}`), 'nobody="on"');
    assert.equal(await send(`cleave_force=${mint("nobody=on", Date.now() - 1, KEY, { issuedMs: Date.now() - 5000 })}`), undefined);
    assert.equal(await send(`cleave_force=${mintForce(KEY, "prod", "nobody=on", future)}`), undefined, "another environment");
    assert.equal(await send("cleave_force=nobody=on"), undefined);
    // Over the 4 KiB token limit a cookie is dropped, even correctly signed.
    const padded = ["nobody=on", ...Array.from({ length: 400 }, (_, i) => `pad-${i}=v`)].join(",");
    assert.equal(await send(`cleave_force=${mint(padded, future)}`), undefined);
  });
});

test("the context endpoint shows the schema and what the request yields", async () => {
  const r = await call(`${worker.url}/_cleave/v1/context?env=qa&app=3.0.0`, {
    headers: { authorization: `Bearer ${TOKEN}`, "user-agent": MOBILE, "x-plan": "team" },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.schema.length, 3);
  assert.equal(r.json.data.attributes.plan, "team");
  assert.equal(r.json.data.attributes.app, "3.0.0");
  assert.equal(r.json.data.attributes["ua.device"], "mobile");
  assert.equal(r.json.data.attributes["ua.os"], "ios");
  assert.equal(r.json.data.schema_error, null);
});
