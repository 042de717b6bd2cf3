// Consent (docs/contracts.md §8): an environment names the cookie (or header) and value that mean
// yes. Without it the edge issues no cleave_uid, records no exposure or event, serves each
// experiment's control (or nothing, as the setting says) and tells the origin
// `cleave-consent: no`. The compiled worker in workerd, a real local origin and a local ingest
// that records what it is sent.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { call, openKv, startIngest, startOrigin, startWorker, waitFor } from "./harness.mjs";

let worker, origin, ingest, kv;

function snapshot(version, without) {
  return {
    schema: 1, environment: "shop", version, published_at: "2026-12-02T10:00:00Z", published_by: "e2e",
    consent: { source: "cookie", name: "cookie_consent", value: "yes", without },
    experiments: [{
      id: "e1", key: "hero", status: "running",
      variants: [
        { id: "a", key: "treatment", ranges: [[0, 4999]] },
        { id: "b", key: "control", ranges: [[5000, 9999]] },
      ],
    }],
  };
}

/** Units the ingest received exposures or events for. */
function recorded() {
  const units = new Set();
  for (const r of ingest.received) {
    const body = JSON.parse(r.body);
    for (const e of body.exposures ?? []) units.add(e.units?.user ?? e.unit);
    for (const e of body.events ?? []) units.add(e.unit);
  }
  return units;
}

before(async () => {
  origin = await startOrigin();
  ingest = await startIngest();
  worker = await startWorker({
    vars: {
      CLEAVE_ENV: "shop", ORIGIN_URL: origin.url, CLEAVE_SIGNING_KEY: "consent-key", CLEAVE_EDGE_CACHE: "off",
      CLEAVE_REFRESH_MS: 300, CLEAVE_INGEST_URL: `${ingest.url}/ingest`, CLEAVE_INGEST_TOKEN: "i", CLEAVE_INGEST_RETRY_SECONDS: 1,
    },
    queues: {
      producers: { CLEAVE_EVENTS: "cleave-events" },
      consumers: { "cleave-events": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 5 } },
    },
    seed: [snapshot(1, "control")],
  });
  kv = await openKv(worker);
});

after(async () => {
  await kv?.dispose();
  await worker?.stop();
  await origin?.close();
  await ingest?.close();
});

const event = (uid, cookie) => call(`${worker.url}/_cleave/v1/events`, {
  method: "POST", headers: { "content-type": "application/json", cookie },
  body: JSON.stringify({ events: [{ event_id: `${uid}-1`, unit: uid, metric: "purchase" }] }),
});

test("without consent: no id, no record, the control, and the origin is told", async () => {
  for (const cookie of [undefined, "cookie_consent=no", "cleave_uid=returning-1; cookie_consent=maybe"]) {
    const r = await call(`${worker.url}/page`, { headers: cookie ? { cookie } : {} });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get("set-cookie"), null, `no cookie of any kind (${cookie})`);
    const got = origin.received.at(-1).headers;
    assert.equal(got["cleave-consent"], "no");
    assert.equal(got["cleave-unit"], undefined, "no id reaches the origin");
    assert.equal(got["cleave-assignments"], 'hero="control"');
  }
  const refused = await event("returning-1", "cleave_uid=returning-1");
  assert.equal(refused.status, 403);
  assert.match(refused.json.meta.error, /consent/);
});

test("with consent: the visitor is identified, assigned and recorded as before", async () => {
  const first = await call(`${worker.url}/page`, { headers: { cookie: "cookie_consent=yes" } });
  const uid = /cleave_uid=([^;]+)/.exec(first.headers.get("set-cookie") ?? "")?.[1];
  assert.ok(uid, "a consenting visitor gets an id");
  const got = origin.received.at(-1).headers;
  assert.deepEqual([got["cleave-consent"], got["cleave-unit"]], ["yes", uid]);
  assert.match(got["cleave-assignments"], /^hero="(control|treatment)"$/);
  const accepted = await event(uid, `cleave_uid=${uid}; cookie_consent=yes`);
  assert.equal(accepted.status, 202, accepted.text);
  const [arrived] = await waitFor(() => recorded().has(uid), 20_000);
  assert.ok(arrived, `nothing recorded for the consenting visitor\n${worker.output().slice(-2000)}`);
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual([...recorded()], [uid], "only the consenting visitor was ever recorded");
});

test("the setting can serve no assignment at all without consent", async () => {
  await kv.publish(snapshot(2, "none"));
  const [served] = await waitFor(async () => {
    await call(`${worker.url}/page`);
    return origin.received.at(-1).headers["cleave-snapshot"] === "2";
  }, 10_000);
  assert.ok(served, "v2 never served");
  const got = origin.received.at(-1).headers;
  assert.equal(got["cleave-assignments"], undefined);
  assert.equal(got["cleave-consent"], "no");
});
