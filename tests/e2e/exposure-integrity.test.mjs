// Every exposure means seen, every event is the visitor's own, no record is lost
// (docs/contracts.md §8), through the real parts: the worker in workerd on the production path (a local Queue
// it produces to and consumes), cleave-admin on Postgres, a local origin for proxy mode.
// - a bulk decide records nothing, a named one exactly the named assigned experiments,
//   `expose=all` and `expose=none` as they say;
// - a confirmation records what the engine assigns, never what the caller says;
// - an origin's `cleave-exposed` narrows a page's exposures and never reaches the visitor;
// - without CLEAVE_SERVER_TOKEN a caller records only for its own cleave_uid;
// - a poisoned record costs no other record its delivery, also across an admin outage;
// - results say what each unit's first exposure rests on.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { ROOT, call, databaseUrl, startAdmin, startOrigin, startWorker, waitFor, freePort } from "./harness.mjs";

const run = promisify(execFile);
const PUBLISHER = "integrity-publisher";
const INGEST = "integrity-ingest";
const SERVER = "integrity-server";
const database = `cleave_integrity_${process.pid}`;
const port = await freePort();
const auth = { authorization: `Bearer ${PUBLISHER}` };
const server = { authorization: `Bearer ${SERVER}` };
let baseUrl, worker, admin, origin, envId;
const ids = {};

async function api(method, path, body) {
  const res = await fetch(`${admin.url}${path}`, {
    method, headers: { ...auth, "content-type": "application/json" }, body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

function launchAdmin() {
  return startAdmin({
    port,
    headers: auth,
    env: {
      DATABASE_URL: databaseUrl(baseUrl, database),
      CLEAVE_ADMIN_TOKENS: `publisher:pub:${PUBLISHER},ingest:edge:${INGEST}`,
      CLEAVE_SINK: "wrangler-local", CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
    },
  });
}

/** Rows of `sql` against the admin's database, each a list of columns. */
async function rows(sql) {
  const { stdout } = await run("psql", ["-At", "-F", "\t", databaseUrl(baseUrl, database), "-c", sql]);
  return stdout.split("\n").filter(Boolean).map((line) => line.split("\t"));
}

/** `{experiment: [variant, source]}` stored for `unit`. */
async function exposuresOf(unit) {
  const found = await rows(`select experiment, variant, coalesce(source, '') from exposures where unit = '${unit}' order by experiment`);
  return Object.fromEntries(found.map(([e, v, s]) => [e, [v, s]]));
}

/** Waits until `unit` has an exposure stored (the queue delivers in order of a second or so). */
async function arrives(unit, ms = 30_000) {
  const [ok] = await waitFor(async () => Object.keys(await exposuresOf(unit)).length > 0, ms);
  assert.ok(ok, `${unit}'s exposure never arrived:\n${worker.output().slice(-3000)}`);
  // What was sent before it has had its chance to arrive too.
  await new Promise((r) => setTimeout(r, 1500));
}

async function decide(query, headers = server) {
  const r = await call(`${worker.url}/_cleave/v1/decide?${query}`, { headers });
  assert.equal(r.status, 200, r.text);
  return r.json.data.assignments;
}

async function postJson(path, body, headers = {}) {
  return call(`${worker.url}${path}`, {
    method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body),
  });
}

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  origin = await startOrigin((req, res) => {
    const headers = { "content-type": "text/html" };
    // The page at /plain declares nothing; the others say they used the hero only.
    if (!req.url.startsWith("/plain")) headers["cleave-exposed"] = "hero";
    res.writeHead(200, headers);
    res.end("<html><head></head><body>page</body></html>");
  });
  worker = await startWorker({
    kvId: "cleave-snapshots-local",
    vars: {
      CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: 300, ORIGIN_URL: origin.url, CLEAVE_SERVER_TOKEN: SERVER,
      CLEAVE_INGEST_URL: `http://127.0.0.1:${port}/ingest`, CLEAVE_INGEST_TOKEN: INGEST, CLEAVE_INGEST_RETRY_SECONDS: 1,
    },
    queues: {
      producers: { CLEAVE_EVENTS: "cleave-events", CLEAVE_DEAD_LETTERS: "cleave-events-dlq" },
      consumers: { "cleave-events": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 20 } },
    },
  });
  admin = await launchAdmin();
  const env = (await api("POST", "/environments", { name: "shop" })).id;
  envId = env;
  for (const key of ["cta", "hero", "pricing"]) {
    const e = await api("POST", "/experiments", { key, name: key, environmentId: env });
    const variants = [];
    for (const v of ["control", "treatment"]) variants.push((await api("POST", `/experiments/${e.id}/variants`, { key: v })).id);
    await api("PUT", `/experiments/${e.id}/allocations`, {
      allocations: [{ variantId: variants[0], rangeStart: 0, rangeEnd: 4999 }, { variantId: variants[1], rangeStart: 5000, rangeEnd: 9999 }],
    });
    if (key === "pricing") await api("PATCH", `/experiments/${e.id}`, { routes: { include: ["/pricing"] } });
    await api("PATCH", `/experiments/${e.id}/status`, { status: "RUNNING" });
    ids[key] = e.id;
  }
  const [live] = await waitFor(async () => Object.keys((await decide("id.user=probe&expose=none")) ?? {}).length === 3, 30_000);
  assert.ok(live, "the worker never served the published snapshot");
});

after(async () => {
  await admin?.stop();
  await worker?.stop();
  await origin?.close();
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

test("a bulk decide records nothing; a named one exactly the named assigned experiments; expose says otherwise", async () => {
  const bulk = await decide("id.user=bulk-1");
  assert.deepEqual(Object.keys(bulk).sort(), ["cta", "hero", "pricing"], "a bulk call still answers every assignment");
  const all = await decide("id.user=all-1&expose=all");
  const named = await decide("id.user=named-1&experiments=cta,no-such");
  assert.deepEqual(Object.keys(named), ["cta"]);
  await decide("id.user=none-1&experiments=cta&expose=none");
  const bad = await call(`${worker.url}/_cleave/v1/decide?id.user=x&expose=some`);
  assert.equal(bad.status, 400);
  assert.match(bad.json.meta.error, /expose "some" must be "all" or "none"/);
  const posted = await postJson("/_cleave/v1/decide", { units: { user: "post-1" }, experiments: ["hero"] }, server);
  assert.equal(posted.status, 200);
  await arrives("post-1");

  assert.deepEqual(await exposuresOf("bulk-1"), {}, "a call that only looks records nothing");
  assert.deepEqual(await exposuresOf("none-1"), {});
  assert.deepEqual(await exposuresOf("named-1"), { cta: [named.cta.variant, "api"] });
  assert.deepEqual(await exposuresOf("all-1"), {
    cta: [all.cta.variant, "api"], hero: [all.hero.variant, "api"], pricing: [all.pricing.variant, "api"],
  });
  assert.deepEqual(Object.keys(await exposuresOf("post-1")), ["hero"]);
});

test("a confirmation records what the engine assigns, never what the caller says", async () => {
  const cookie = { cookie: "cleave_uid=conf-1" };
  const expected = await decide("id.user=conf-1&expose=none");
  const r = await postJson("/_cleave/v1/exposures", { units: { user: "conf-1" }, experiments: ["cta", "hero", "no-such"] }, cookie);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.data.exposed, { cta: expected.cta.variant, hero: expected.hero.variant });
  assert.deepEqual(r.json.data.not_assigned, ["no-such"]);
  assert.deepEqual(r.json.data.recorded, ["cta", "hero"]);
  // A variant named by the caller is not a field of the request at all.
  const forged = await postJson("/_cleave/v1/exposures", { units: { user: "conf-1" }, experiments: ["cta"], variant: "treatment" }, cookie);
  assert.equal(forged.status, 400);
  const empty = await postJson("/_cleave/v1/exposures", { units: { user: "conf-1" } }, cookie);
  assert.equal(empty.status, 400);
  assert.match(empty.json.meta.error, /experiments: name the experiments/);
  await arrives("conf-1");
  assert.deepEqual(await exposuresOf("conf-1"), {
    cta: [expected.cta.variant, "confirmed"], hero: [expected.hero.variant, "confirmed"],
  });
});

test("without the server token a caller records exposures and events only for its own cleave_uid", async () => {
  const me = { cookie: "cleave_uid=me-1" };
  const victim = await decide("id.user=victim-1&experiments=cta,hero", me);
  assert.ok(victim.cta, "assignments are still answered for any unit");
  await decide("id.user=me-1&experiments=cta", me);

  const mixed = await postJson("/_cleave/v1/events", { events: [
    { event_id: "own-1", unit: "me-1", metric: "purchase" },
    { event_id: "forged-1", unit: "victim-1", metric: "purchase" },
    { event_id: "bad-1", unit: "me-1", metric: "Not A Metric" },
  ] }, me);
  assert.equal(mixed.status, 202, mixed.text);
  assert.equal(mixed.json.data.accepted, 1);
  assert.deepEqual(mixed.json.data.refused.map((r) => [r.index, r.status]), [[1, 403], [2, 400]]);
  assert.match(mixed.json.data.refused[0].error, /events\[1\]\.unit: "victim-1" is not this caller's unit/);
  const foreign = await postJson("/_cleave/v1/events", { events: [{ event_id: "forged-2", unit: "victim-1", metric: "purchase" }] });
  assert.equal(foreign.status, 403, foreign.text);
  assert.match(foreign.json.meta.error, /not this caller's unit/);
  const trusted = await postJson("/_cleave/v1/events", { events: [{ event_id: "server-1", unit: "victim-1", metric: "purchase" }] }, server);
  assert.equal(trusted.status, 202, trusted.text);

  await arrives("me-1");
  const [ok] = await waitFor(async () => (await rows("select event_id from events where event_id = 'server-1'")).length === 1, 30_000);
  assert.ok(ok, "the server's event never arrived");
  assert.deepEqual(await exposuresOf("victim-1"), {}, "no exposure for a unit the caller is not");
  assert.deepEqual(Object.keys(await exposuresOf("me-1")), ["cta"]);
  const stored = (await rows("select event_id from events order by event_id")).map(([id]) => id);
  assert.deepEqual(stored, ["own-1", "server-1"]);
});

test("an origin's cleave-exposed narrows a page's exposures and never reaches the visitor", async () => {
  const page = async (path, uid) => {
    const res = await fetch(`${worker.url}${path}`, { headers: { cookie: `cleave_uid=${uid}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("cleave-exposed"), null, "the origin's word to the edge stays at the edge");
    await res.text();
    return origin.received.at(-1).headers["cleave-assignments"];
  };
  const declares = await page("/declares", "px-1");
  const plain = await page("/plain", "px-2");
  const pricing = await page("/pricing", "px-3");
  assert.match(declares, /cta=.*hero=/, "the origin is told every assignment");
  assert.match(pricing, /pricing=/);
  await arrives("px-3");
  const sources = async (uid) => Object.fromEntries(Object.entries(await exposuresOf(uid)).map(([e, [, s]]) => [e, s]));
  assert.deepEqual(await sources("px-1"), { hero: "proxy_declared" });
  assert.deepEqual(await sources("px-2"), { cta: "proxy_implicit", hero: "proxy_implicit" }, "no header: every assignment counts");
  assert.deepEqual(await sources("px-3"), { hero: "proxy_declared", pricing: "proxy_implicit" }, "route-scoped experiments count");
  assert.ok(plain.includes("cta="));
});

test("on the Queue path a poisoned record costs no other record its delivery, across an admin outage", async () => {
  await admin.stop();
  const poisoned = await postJson("/_cleave/v1/events?env=no-such-env", { events: [{ event_id: "poison-1", unit: "q-0", metric: "purchase" }] }, server);
  assert.equal(poisoned.status, 202, "the edge cannot know the admin's environments");
  for (let i = 0; i < 6; i++) await decide(`id.user=q-${i}&experiments=cta`);
  const valid = await postJson("/_cleave/v1/events", { events: [0, 1, 2].map((i) => ({ event_id: `q-buy-${i}`, unit: `q-${i}`, metric: "purchase" })) }, server);
  assert.equal(valid.status, 202);
  const [failed] = await waitFor(async () => /ingest failed .*retrying/.test(worker.output()), 15_000);
  assert.ok(failed, "deliveries should fail while the admin is down");
  admin = await launchAdmin();
  const [arrived] = await waitFor(async () => {
    const units = await rows("select count(distinct unit) from exposures where unit like 'q-%'");
    const events = await rows("select count(*) from events where event_id like 'q-buy-%'");
    return units[0][0] === "6" && events[0][0] === "3";
  }, 60_000);
  assert.ok(arrived, `valid records did not all arrive:\n${worker.output().slice(-3000)}`);
  const [dead] = await waitFor(async () => /record refused and dead-lettered: .*no-such-env.*poison-1/.test(worker.output()), 15_000);
  assert.ok(dead, `the poisoned record was not dead-lettered with its reason:\n${worker.output().slice(-3000)}`);
  assert.match(worker.output(), /"error":"environment: \\"no-such-env\\" is not an environment of this admin"/);
  assert.deepEqual(await rows("select event_id from events where event_id = 'poison-1'"), []);
});

test("an events post larger than a Queue message is split on its way and arrives whole", async () => {
  // 500 events of about 400 bytes: some 200 KB, more than a Queue message's 128 KB.
  const unit = (i) => `big-${i}-${"u".repeat(200)}`;
  const events = Array.from({ length: 500 }, (_, i) => ({ event_id: `big-${i}-${"e".repeat(110)}`, unit: unit(i), metric: "purchase", value: i }));
  const body = JSON.stringify({ events });
  assert.ok(body.length > 128 * 1024 && body.length < 256 * 1024, `${body.length} bytes`);
  const r = await postJson("/_cleave/v1/events", { events }, server);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.data.accepted, 500);
  const [all] = await waitFor(async () => (await rows("select count(*) from events where event_id like 'big-%'"))[0][0] === "500", 60_000);
  assert.ok(all, `not every event arrived:\n${worker.output().slice(-3000)}`);
  assert.doesNotMatch(worker.output(), /could not enqueue/);
});

test("anonymousExposures \"any\" lets a caller name any unit again", async () => {
  const foreign = { events: [{ event_id: "open-1", unit: "stranger-1", metric: "purchase" }] };
  assert.equal((await postJson("/_cleave/v1/events", foreign)).status, 403);
  await api("PUT", `/environments/${envId}/settings`, { anonymousExposures: "any" });
  const published = await api("POST", `/environments/${envId}/publish`);
  // As long as the first publish may take: the wrangler-local sink starts wrangler per key.
  const [open] = await waitFor(async () => (await call(`${worker.url}/_cleave/health`)).json?.data?.version === published.version, 30_000);
  assert.ok(open, "the worker never served the version with the setting");
  const r = await postJson("/_cleave/v1/events", foreign);
  assert.equal(r.status, 202, r.text);
  await decide("id.user=stranger-1&experiments=cta", {});
  await arrives("stranger-1");
  assert.deepEqual(Object.keys(await exposuresOf("stranger-1")), ["cta"]);
  // Back to bound for what follows.
  await api("PUT", `/environments/${envId}/settings`, {});
  await api("POST", `/environments/${envId}/publish`);
});

test("results say what each unit's first exposure rests on", async () => {
  const r = await api("GET", `/experiments/${ids.hero}/results`);
  const total = (source) => r.variants.reduce((n, v) => n + (v.unitsBySource[source] ?? 0), 0);
  // hero: all-1 and post-1 (api), conf-1 (confirmed), px-1 and px-3 (declared), px-2 (implicit).
  assert.equal(total("api"), 2, JSON.stringify(r.variants));
  assert.equal(total("confirmed"), 1);
  assert.equal(total("proxy_declared"), 2);
  assert.equal(total("proxy_implicit"), 1);
  assert.equal(r.variants.reduce((n, v) => n + v.units, 0), 6);
  assert.equal(r.excludedShare, 0);
  assert.deepEqual(r.variants.map((v) => v.excludedUnits), [{}, {}]);
});
