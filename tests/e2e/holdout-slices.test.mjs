// The holdout's own exposures and the slices results are read by, through the real parts:
// the compiled worker in workerd (a local Queue it produces to and consumes), a local origin
// for proxied pages, cleave-admin on Postgres (docs/contracts.md §8).
// - every recording decision records the unit's holdout group, held out or not, by one rule:
//   a proxied page, a decide naming experiments, a confirmation; a look records nothing;
// - each exposure carries the device class and browser the edge read from the request;
// - results by slice and the holdout report count exactly what the edge recorded.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { ROOT, call, databaseUrl, freePort, startAdmin, startOrigin, startWorker, waitFor } from "./harness.mjs";

const run = promisify(execFile);
const PUBLISHER = "holdout-publisher";
const INGEST = "holdout-ingest";
const SERVER = { authorization: "Bearer holdout-server" };
const IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
// Buckets 0..2999 of the holdout's draw are held out: 30% of units.
const HOLDOUT = { salt: "h1", ranges: [[0, 2999]] };
const database = `cleave_holdout_${process.pid}`;
const port = await freePort();
const auth = { authorization: `Bearer ${PUBLISHER}` };
let baseUrl, worker, admin, origin, envId, ctaId;
// Units enrolled in cta so far: unit -> {variant, device}.
const enrolled = new Map();

/** The unit's cta variant, by a look that records nothing. */
async function variantOf(unit) {
  const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}&expose=none`, { headers: SERVER });
  return r.json.data.assignments.cta?.variant;
}

async function api(method, path, body) {
  const res = await fetch(`${admin.url}${path}`, {
    method, headers: { ...auth, "content-type": "application/json" }, body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Whether the holdout keeps `unit` out (docs/contracts.md §2: sha256(seed ":" unit)). */
function heldOut(unit) {
  const d = createHash("sha256").update(`holdout:${HOLDOUT.salt}:${unit}`, "utf8").digest();
  const bucket = Number(d.readBigUInt64BE(0) % 10000n);
  return HOLDOUT.ranges.some(([lo, hi]) => bucket >= lo && bucket <= hi);
}

/** The first of `prefix-0`, `prefix-1`, … the holdout keeps out (`held`) or lets in. */
function pick(prefix, held) {
  for (let i = 0; ; i++) if (heldOut(`${prefix}-${i}`) === held) return `${prefix}-${i}`;
}

async function rows(sql) {
  const { stdout } = await run("psql", ["-At", "-F", "\t", databaseUrl(baseUrl, database), "-c", sql]);
  return stdout.split("\n").filter(Boolean).map((line) => line.split("\t"));
}

/** `{experiment: "variant device browser excluded"}` stored for `unit`. */
async function exposuresOf(unit) {
  const found = await rows(`select experiment, variant, coalesce(device, '-'), coalesce(browser, '-'), coalesce(excluded, '-')
    from exposures where unit = '${unit}' order by experiment`);
  return Object.fromEntries(found.map(([e, ...rest]) => [e, rest.join(" ")]));
}

async function stored(count, ms = 30_000) {
  const [ok] = await waitFor(async () => Number((await rows("select count(*) from exposures"))[0][0]) >= count, ms);
  assert.ok(ok, `fewer than ${count} exposures arrived:\n${worker.output().slice(-3000)}`);
  // What was sent with them has had its chance to arrive too.
  await new Promise((r) => setTimeout(r, 1500));
}

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  origin = await startOrigin((req, res) => {
    res.writeHead(200, { "content-type": "text/html", "cache-control": "no-store" });
    res.end("<html><head></head><body>page</body></html>");
  });
  worker = await startWorker({
    kvId: "cleave-snapshots-local",
    vars: {
      CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: 300, ORIGIN_URL: origin.url, CLEAVE_SERVER_TOKEN: "holdout-server",
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
      CLEAVE_ADMIN_TOKENS: `publisher:pub:${PUBLISHER},ingest:edge:${INGEST}`,
      CLEAVE_SINK: "wrangler-local", CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
    },
  });
  const env = await api("POST", "/environments", { name: "shop" });
  envId = env.id;
  await api("PUT", `/environments/${envId}/settings`, { ...env.settings, holdout: HOLDOUT });
  const e = await api("POST", "/experiments", { key: "cta", name: "cta", environmentId: envId });
  const variants = [];
  for (const v of ["control", "treatment"]) variants.push((await api("POST", `/experiments/${e.id}/variants`, { key: v })).id);
  await api("PUT", `/experiments/${e.id}/allocations`, {
    allocations: [{ variantId: variants[0], rangeStart: 0, rangeEnd: 4999 }, { variantId: variants[1], rangeStart: 5000, rangeEnd: 9999 }],
  });
  await api("POST", "/metric-definitions", { key: "purchase", kind: "conversion", direction: "increase" });
  await api("PUT", `/experiments/${e.id}/metrics`, { metrics: [{ metric: "purchase", role: "primary" }] });
  await api("PATCH", `/experiments/${e.id}/status`, { status: "RUNNING" });
  ctaId = e.id;
  const probe = pick("probe", false);
  const [live] = await waitFor(async () => {
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${probe}&expose=none`);
    return Object.keys(r.json?.data?.assignments ?? {}).length === 1;
  }, 30_000);
  assert.ok(live, "the worker never served the published snapshot");
});

after(async () => {
  await admin?.stop();
  await worker?.stop();
  await origin?.close();
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

test("every recording decision records the unit's holdout group, held out or not, with its device and browser", async () => {
  // Units on either side of the holdout, for each way a decision records.
  const units = {};
  for (const held of [true, false]) {
    const side = held ? "in" : "out";
    units[`page-${side}`] = pick(`page-${side}`, held);
    units[`decide-${side}`] = pick(`decide-${side}`, held);
    units[`confirm-${side}`] = pick(`confirm-${side}`, held);
    units[`look-${side}`] = pick(`look-${side}`, held);
    units[`bot-${side}`] = pick(`bot-${side}`, held);
  }
  for (const side of ["in", "out"]) {
    const page = await call(`${worker.url}/`, { headers: { cookie: `cleave_uid=${units[`page-${side}`]}`, "user-agent": IPHONE } });
    assert.equal(page.status, 200, page.text);
    const decided = await call(`${worker.url}/_cleave/v1/decide?id.user=${units[`decide-${side}`]}&experiments=cta`,
      { headers: { ...SERVER, "user-agent": DESKTOP } });
    assert.equal(decided.status, 200, decided.text);
    const confirmed = await call(`${worker.url}/_cleave/v1/exposures`, {
      method: "POST", headers: { ...SERVER, "content-type": "application/json", "user-agent": DESKTOP },
      body: JSON.stringify({ units: { user: units[`confirm-${side}`] }, experiments: ["cta"] }),
    });
    assert.equal(confirmed.status, 200, confirmed.text);
    // A call that only looks records nothing, the holdout included.
    const looked = await call(`${worker.url}/_cleave/v1/decide?id.user=${units[`look-${side}`]}`, { headers: SERVER });
    assert.equal(looked.status, 200, looked.text);
    const crawled = await call(`${worker.url}/`, { headers: { cookie: `cleave_uid=${units[`bot-${side}`]}`, "user-agent": GOOGLEBOT } });
    assert.equal(crawled.status, 200, crawled.text);
  }
  await stored(11);
  for (const [way, device] of [["page", "mobile"], ["decide", "desktop"], ["confirm", "desktop"]]) {
    const unit = units[`${way}-out`];
    enrolled.set(unit, { variant: await variantOf(unit), device });
  }

  for (const side of ["in", "out"]) {
    const group = side === "in" ? "held_out" : "rest";
    const page = await exposuresOf(units[`page-${side}`]);
    assert.equal(page.$holdout, `${group} mobile safari -`, JSON.stringify(page));
    for (const way of ["decide", "confirm"]) {
      const got = await exposuresOf(units[`${way}-${side}`]);
      assert.equal(got.$holdout, `${group} desktop chrome -`, `${way}: ${JSON.stringify(got)}`);
      // Held out of every experiment: no experiment exposure; the rest are enrolled in cta.
      assert.equal(got.cta === undefined, side === "in", `${way}: ${JSON.stringify(got)}`);
    }
    assert.deepEqual(await exposuresOf(units[`look-${side}`]), {});
  }
  // Crawlers are recorded as such and left out of the report.
  const bots = await rows("select variant, excluded from exposures where experiment = '$holdout' and device = 'bot' order by variant");
  assert.deepEqual(bots, [["held_out", "bot"], ["rest", "bot"]]);
});

test("results by slice and the holdout report count exactly what the edge recorded", async () => {
  const events = [];
  const recorded = new Set((await rows("select distinct unit from exposures where experiment = '$holdout' and excluded is null")).map(([u]) => u));
  for (let i = 0; i < 240; i++) {
    const unit = `buyer-${i}`;
    const phone = i % 3 === 0;
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}&experiments=cta`,
      { headers: { ...SERVER, "user-agent": phone ? IPHONE : DESKTOP } });
    assert.equal(r.status, 200, r.text);
    recorded.add(unit);
    const variant = r.json.data.assignments.cta?.variant;
    if (variant) enrolled.set(unit, { variant, device: phone ? "mobile" : "desktop" });
    if (i % (heldOut(unit) ? 5 : 2) === 0) events.push({ event_id: `p-${i}`, unit, metric: "purchase" });
  }
  const posted = await call(`${worker.url}/_cleave/v1/events`, {
    method: "POST", headers: { "content-type": "application/json", ...SERVER }, body: JSON.stringify({ events }),
  });
  assert.equal(posted.status, 202, posted.text);

  const [report] = await waitFor(async () => {
    const r = await api("GET", `/environments/${envId}/holdout?metrics=purchase`);
    const units = r.variants.reduce((n, v) => n + v.units, 0);
    const converted = r.metrics[0].variants.reduce((n, v) => n + v.conversions, 0);
    return units === recorded.size && converted === events.length ? r : undefined;
  }, 30_000);
  assert.ok(report, `the holdout report never counted ${recorded.size} units and ${events.length} purchases`);
  const held = [...recorded].filter(heldOut).length;
  assert.deepEqual(report.variants.map((v) => [v.key, v.units, v.expectedShare]),
    [["held_out", held, 0.3], ["rest", recorded.size - held, 0.7]]);
  assert.equal(report.heldOutShare, 0.3);
  assert.equal(report.metrics[0].comparisons[0].variant, "rest");
  assert.equal(report.srm.mismatch, false, JSON.stringify(report.srm));

  // By device: every enrolled buyer in the slice it was first exposed from.
  const byDevice = await api("GET", `/experiments/${ctaId}/slices?dimension=device`);
  assert.equal(byDevice.exploratory, true);
  assert.equal(byDevice.correction, "benjamini_hochberg");
  for (const slice of byDevice.slices) {
    for (const arm of slice.variants) {
      const want = [...enrolled.values()].filter((a) => a.device === slice.value && a.variant === arm.key).length;
      assert.equal(arm.units, want, `${slice.value} ${arm.key}`);
    }
  }
  assert.deepEqual(byDevice.slices.map((s) => s.value).sort(), ["desktop", "mobile"]);
  const byBrowser = await api("GET", `/experiments/${ctaId}/slices?dimension=browser`);
  assert.deepEqual(byBrowser.slices.map((s) => s.value).sort(), ["chrome", "safari"]);
  // Run locally, every request carries the same placeholder `cf.country`: one slice of all.
  const byCountry = await api("GET", `/experiments/${ctaId}/slices?dimension=country`);
  assert.equal(byCountry.slices.length, 1, JSON.stringify(byCountry.slices.map((s) => s.value)));
  assert.match(byCountry.slices[0].value, /^[A-Z]{2}$/);
  assert.equal(byCountry.slices[0].units, enrolled.size);
});
