// OpenFeature remote evaluation (docs/contracts.md §9) against the compiled worker in workerd:
// the real OpenFeature server SDK with its OFREP provider from npm, every answer checked
// against the vendored OFREP OpenAPI file, bulk ETags across a publish, exposures as §8 says
// (a single evaluation decided by an experiment is one, a bulk one is not), a rollout ramp
// and the kill switch. Exposures go to a local ingest that records what it is sent.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import Ajv2020 from "ajv/dist/2020.js";
import { parse } from "yaml";
import { ROOT, call, openKv, pool, startIngest, startWorker, waitFor } from "./harness.mjs";
import { eventsUrl, withCleaveTracking } from "../../clients/openfeature/cleave-tracking.mjs";

const SERVER = "ofrep-server-token";
let worker, kv, ingest;

const experiment = {
  id: "e1", key: "checkout", status: "running",
  variants: [
    { id: "a", key: "control", payload: { cta: "Buy" }, ranges: [[0, 4999]] },
    { id: "b", key: "treatment", payload: { cta: "Buy now" }, ranges: [[5000, 9999]] },
  ],
};
const boolean = (key, extra) => ({
  key, type: "boolean", off_variant: "off", fallthrough: { variant: "off" },
  variants: [{ key: "on", value: true }, { key: "off", value: false }], ...extra,
});
const staffOnly = [{ conditions: [{ attribute: "plan", operator: "eq", value: "staff" }] }];
const rollout = (traffic) => ({ rollout: { traffic, split: [{ variant: "on", weight: 10000 }] } });

function snapshot(version, { navTraffic = 1000, killed = false } = {}) {
  return {
    schema: 1, environment: "shop", version, published_at: "2026-12-02T10:00:00Z", published_by: "e2e",
    experiments: [experiment],
    flags: [
      boolean("new-nav", { rules: [{ targeting: staffOnly, serve: { variant: "on" } }, { serve: rollout(navTraffic) }] }),
      boolean("killed", { enabled: !killed, fallthrough: { variant: "on" } }),
      boolean("gradual", { fallthrough: { rollout: { split: [{ variant: "on", weight: 5000 }, { variant: "off", weight: 5000 }] } } }),
      { key: "theme", type: "string", variants: [{ key: "blue", value: "blue" }, { key: "red", value: "red" }], off_variant: "blue", fallthrough: { variant: "blue" } },
      {
        key: "limit", type: "number", off_variant: "ten",
        variants: [{ key: "ten", value: 10 }, { key: "twenty", value: 20.5 }],
        fallthrough: { experiment: { key: "checkout", variants: { control: "ten", treatment: "twenty" } } },
      },
      { key: "layout", type: "json", variants: [{ key: "grid", value: { cols: 3 } }], off_variant: "grid", fallthrough: { variant: "grid" } },
    ],
  };
}

/** Event records the ingest has received, `{unit: [[metric, value], ...]}`. */
function tracked() {
  const out = {};
  for (const r of ingest.received) {
    for (const e of JSON.parse(r.body).events ?? []) (out[e.unit] ??= []).push([e.metric, e.value]);
  }
  return out;
}

/** Exposure records the ingest has received, `{unit: [experiment, ...]}`. */
function exposed() {
  const out = {};
  for (const r of ingest.received) {
    for (const e of JSON.parse(r.body).exposures ?? []) (out[e.units?.user ?? e.unit] ??= []).push(e.experiment);
  }
  return out;
}

before(async () => {
  ingest = await startIngest();
  worker = await startWorker({
    vars: {
      CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: 300, CLEAVE_SERVER_TOKEN: SERVER,
      CLEAVE_INGEST_URL: `${ingest.url}/ingest`, CLEAVE_INGEST_TOKEN: "ingest", CLEAVE_INGEST_RETRY_SECONDS: 1,
    },
    queues: {
      producers: { CLEAVE_EVENTS: "cleave-events" },
      consumers: { "cleave-events": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 5 } },
    },
    seed: [snapshot(1), { ...snapshot(1), environment: "staging", flags: [boolean("new-nav", { fallthrough: { variant: "on" } })] }],
  });
  kv = await openKv(worker);
  const options = { baseUrl: `${worker.url}/_cleave`, headers: [["authorization", `Bearer ${SERVER}`]] };
  await OpenFeature.setProviderAndWait(withCleaveTracking(new OFREPProvider(options), options));
});

after(async () => {
  await OpenFeature.close();
  await kv?.dispose();
  await worker?.stop();
  await ingest?.close();
});

const evaluate = (path, context, headers = {}) =>
  call(`${worker.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ context }) });

test("the OpenFeature server SDK reads every type, with reasons and variants", async () => {
  const client = OpenFeature.getClient();
  const staff = await client.getBooleanDetails("new-nav", false, { targetingKey: "u-1", plan: "staff" });
  assert.deepEqual([staff.value, staff.reason, staff.variant], [true, "TARGETING_MATCH", "on"]);
  const theme = await client.getStringDetails("theme", "none", { targetingKey: "u-1" });
  assert.deepEqual([theme.value, theme.reason, theme.variant], ["blue", "STATIC", "blue"]);
  const layout = await client.getObjectDetails("layout", {}, { targetingKey: "u-1" });
  assert.deepEqual([layout.value, layout.reason], [{ cols: 3 }, "STATIC"]);
  const killed = await client.getBooleanDetails("killed", true, { targetingKey: "u-1" });
  assert.deepEqual([killed.value, killed.reason], [true, "STATIC"]);
  // An experiment-served flag agrees with the decide API's assignment.
  for (const uid of ["u-1", "u-2", "u-3", "u-4", "u-5", "u-6"]) {
    const limit = await client.getNumberDetails("limit", 0, { targetingKey: uid });
    const decided = await call(`${worker.url}/_cleave/v1/decide?id.user=${uid}`);
    const variant = decided.json.data.assignments.checkout.variant;
    assert.equal(limit.value, variant === "treatment" ? 20.5 : 10, uid);
    assert.equal(limit.reason, "SPLIT");
    assert.equal(limit.flagMetadata.experiment, "checkout");
    assert.deepEqual(decided.json.data.flags.limit, { value: limit.value, variant: limit.variant, reason: "SPLIT" });
    // The experiment itself evaluates to its variant's payload.
    const payload = await client.getObjectDetails("checkout", {}, { targetingKey: uid });
    assert.deepEqual([payload.value, payload.variant], [variant === "treatment" ? { cta: "Buy now" } : { cta: "Buy" }, variant]);
  }
});

test("errors give the code's default with OpenFeature's error codes", async () => {
  const client = OpenFeature.getClient();
  const missing = await client.getBooleanDetails("no-such-flag", true, { targetingKey: "u-1" });
  assert.deepEqual([missing.value, missing.reason, missing.errorCode], [true, "ERROR", "FLAG_NOT_FOUND"]);
  const keyless = await client.getBooleanDetails("gradual", false, {});
  assert.deepEqual([keyless.value, keyless.reason, keyless.errorCode], [false, "ERROR", "TARGETING_KEY_MISSING"]);
  const mistyped = await client.getStringDetails("new-nav", "x", { targetingKey: "u-1" });
  assert.deepEqual([mistyped.value, mistyped.reason, mistyped.errorCode], ["x", "ERROR", "TYPE_MISMATCH"]);
  const bad = await call(`${worker.url}/_cleave/ofrep/v1/evaluate/flags/theme`, { method: "POST", body: "{not json" });
  assert.equal(bad.status, 400);
  assert.deepEqual([bad.json.key, bad.json.errorCode], ["theme", "PARSE_ERROR"]);
  const notContext = await call(`${worker.url}/_cleave/ofrep/v1/evaluate/flags`, { method: "POST", body: '{"context": 5}' });
  assert.equal(notContext.status, 400);
  assert.deepEqual(notContext.json, { errorCode: "INVALID_CONTEXT", errorDetails: "context must be a JSON object" });
  const wrongMethod = await call(`${worker.url}/_cleave/ofrep/v1/evaluate/flags/theme`);
  assert.equal(wrongMethod.status, 405);
});

test("/_cleave/env/{env} evaluates another environment", async () => {
  const r = await evaluate("/_cleave/env/staging/ofrep/v1/evaluate/flags/new-nav", { targetingKey: "u-1" });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.value, r.json.reason], [true, "STATIC"]);
  const home = await evaluate("/_cleave/ofrep/v1/evaluate/flags/new-nav", { targetingKey: "u-1", plan: "free" });
  assert.equal(typeof home.json.value, "boolean");
  const none = await evaluate("/_cleave/env/nowhere/ofrep/v1/evaluate/flags/new-nav", { targetingKey: "u-1" });
  assert.equal(none.status, 503);
  assert.match(none.json.errorDetails, /no snapshot for environment "nowhere"/);
});

test("every answer matches the OFREP OpenAPI file", async () => {
  const spec = parse(readFileSync(join(ROOT, "tests/fixtures/ofrep-openapi.yaml"), "utf8"));
  // OFREP 0.3.0 lists value types under oneOf, but an integer is also a float and
  // codeDefaultFlag (no properties) matches any object: read as anyOf, "at least one".
  const text = JSON.stringify(spec.components.schemas).replaceAll('"oneOf"', '"anyOf"');
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: "ofrep", components: { schemas: JSON.parse(text) } });
  const check = (name, body, what) => {
    const validate = ajv.getSchema(`ofrep#/components/schemas/${name}`);
    assert.ok(validate(body), `${what}: ${JSON.stringify(body)}\n${ajv.errorsText(validate.errors)}`);
  };
  const single = "/_cleave/ofrep/v1/evaluate/flags";
  for (const key of ["new-nav", "killed", "theme", "limit", "layout", "checkout"]) {
    const r = await evaluate(`${single}/${key}`, { targetingKey: "u-9", plan: "staff" });
    assert.equal(r.status, 200, `${key}: ${r.text}`);
    assert.match(r.headers.get("content-type"), /^application\/json/);
    check("serverEvaluationSuccess", r.json, key);
  }
  const notFound = await evaluate(`${single}/nope`, { targetingKey: "u-9" });
  assert.equal(notFound.status, 404);
  check("flagNotFound", notFound.json, "not found");
  const keyless = await evaluate(`${single}/gradual`, {});
  assert.equal(keyless.status, 400);
  check("evaluationFailure", keyless.json, "targeting key missing");
  const bulk = await evaluate(single, { targetingKey: "u-9" });
  assert.equal(bulk.status, 200);
  check("bulkEvaluationSuccess", bulk.json, "bulk");
  assert.deepEqual(bulk.json.flags.map((f) => f.key), ["checkout", "gradual", "killed", "layout", "limit", "new-nav", "theme"]);
  const bulkBad = await call(`${worker.url}${single}`, { method: "POST", body: "[]" });
  assert.equal(bulkBad.status, 400);
  check("bulkEvaluationFailure", bulkBad.json, "bulk failure");
});

test("a bulk ETag changes with the context and the snapshot, and If-None-Match gets 304", async () => {
  const bulk = "/_cleave/ofrep/v1/evaluate/flags";
  const first = await evaluate(bulk, { targetingKey: "u-7", plan: "free" });
  const etag = first.headers.get("etag");
  assert.match(etag, /^"1-[0-9a-f]{16}"$/);
  const again = await evaluate(bulk, { plan: "free", targetingKey: "u-7" }, { "if-none-match": etag });
  assert.equal(again.status, 304);
  assert.equal(again.text, "");
  const other = await evaluate(bulk, { targetingKey: "u-8", plan: "free" }, { "if-none-match": etag });
  assert.equal(other.status, 200);
  assert.notEqual(other.headers.get("etag"), etag);
  await kv.publish(snapshot(2));
  const [fresh] = await waitFor(async () => {
    const r = await evaluate(bulk, { targetingKey: "u-7", plan: "free" }, { "if-none-match": etag });
    return r.status === 200 ? r : undefined;
  }, 10_000);
  assert.ok(fresh, "the publish never showed");
  assert.match(fresh.headers.get("etag"), /^"2-/);
  assert.equal(fresh.json.metadata.version, 2);
});

test("a single evaluation an experiment decided is an exposure; bulk and unbound callers record none", async () => {
  const before = ingest.received.length;
  await evaluate("/_cleave/ofrep/v1/evaluate/flags", { targetingKey: "bulk-user" }, { authorization: `Bearer ${SERVER}` });
  await evaluate("/_cleave/ofrep/v1/evaluate/flags/limit", { targetingKey: "stranger" });
  await evaluate("/_cleave/ofrep/v1/evaluate/flags/theme", { targetingKey: "static-user" }, { authorization: `Bearer ${SERVER}` });
  const flagged = await evaluate("/_cleave/ofrep/v1/evaluate/flags/limit", { targetingKey: "single-user" }, { authorization: `Bearer ${SERVER}` });
  const direct = await evaluate("/_cleave/ofrep/v1/evaluate/flags/checkout", { targetingKey: "direct-user" }, { authorization: `Bearer ${SERVER}` });
  assert.equal(flagged.status, 200);
  assert.equal(direct.status, 200);
  const [arrived] = await waitFor(() => exposed()["single-user"] && exposed()["direct-user"], 20_000);
  assert.ok(arrived, `exposures never arrived (${ingest.received.length - before} deliveries)\n${worker.output().slice(-2000)}`);
  await new Promise((r) => setTimeout(r, 1500));
  const seen = exposed();
  assert.deepEqual(seen["single-user"], ["checkout"]);
  assert.deepEqual(seen["direct-user"], ["checkout"]);
  for (const unit of ["bulk-user", "stranger", "static-user"]) assert.equal(seen[unit], undefined, unit);
});

test("raising a rollout keeps everyone already in, and the kill switch serves off on the next refresh", async () => {
  const users = Array.from({ length: 300 }, (_, i) => `ramp-${i}`);
  const values = async () => {
    const out = new Map();
    await pool(users, 8, async (uid) => {
      const r = await evaluate("/_cleave/ofrep/v1/evaluate/flags/new-nav", { targetingKey: uid });
      out.set(uid, [r.json.value, r.json.reason]);
    });
    return out;
  };
  await kv.publish(snapshot(3, { navTraffic: 1000 }));
  await waitFor(async () => (await evaluate("/_cleave/ofrep/v1/evaluate/flags", { targetingKey: "x" })).json?.metadata?.version === 3, 10_000);
  const ten = await values();
  await kv.publish(snapshot(4, { navTraffic: 2000 }));
  await waitFor(async () => (await evaluate("/_cleave/ofrep/v1/evaluate/flags", { targetingKey: "x" })).json?.metadata?.version === 4, 10_000);
  const twenty = await values();
  const on = (m) => [...m.values()].filter(([v]) => v).length;
  assert.ok(on(ten) > 10 && on(twenty) > on(ten), `${on(ten)} then ${on(twenty)}`);
  for (const uid of users) if (ten.get(uid)[0]) assert.equal(twenty.get(uid)[0], true, `${uid} left the rollout`);
  await kv.publish(snapshot(5, { navTraffic: 2000, killed: true }));
  const [off] = await waitFor(async () => {
    const r = await evaluate("/_cleave/ofrep/v1/evaluate/flags/killed", { targetingKey: "u-1" });
    return r.json.reason === "DISABLED" ? r : undefined;
  }, 10_000);
  assert.ok(off, "the kill switch never showed");
  assert.deepEqual([off.json.value, off.json.variant], [false, "off"]);
});

test("OpenFeature track calls become cleave events", async () => {
  assert.equal(eventsUrl("https://edge.example.com/_cleave"), "https://edge.example.com/_cleave/v1/events");
  assert.equal(eventsUrl("https://edge.example.com/_cleave/env/staging"), "https://edge.example.com/_cleave/v1/events?env=staging");
  const client = OpenFeature.getClient();
  client.track("purchase", { targetingKey: "buyer-1" }, { value: 42.5 });
  client.track("signup", { targetingKey: "buyer-1" });
  const [arrived] = await waitFor(() => (tracked()["buyer-1"] ?? []).length === 2, 20_000);
  assert.ok(arrived, `events never arrived\n${worker.output().slice(-2000)}`);
  assert.deepEqual(tracked()["buyer-1"].sort(), [["purchase", 42.5], ["signup", 1]]);
});
