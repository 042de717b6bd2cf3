// Draft preview: a draft (experiment or flag) travels in the snapshot marked `draft` and enrols nobody, and a
// verified force token previews it, through the decide API and on proxied pages (the
// `cleave_force` cookie). The compiled worker in workerd; force tokens minted independently of
// cleave's code from the documented format.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { call, mintForce, startOrigin, startWorker } from "./harness.mjs";

const KEY = "draft-preview-key";
const SERVER = "draft-preview-server-token";
let worker, origin;

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    vars: {
      CLEAVE_ENV: "shop", ORIGIN_URL: origin.url, CLEAVE_SIGNING_KEY: KEY, CLEAVE_EDGE_CACHE: "off",
      CLEAVE_SERVER_TOKEN: SERVER,
    },
    seed: [{
      schema: 1, environment: "shop", version: 1, published_at: "2026-12-02T10:00:00Z", published_by: "e2e",
      experiments: [{
        id: "d", key: "new-checkout", status: "draft",
        variants: [
          { id: "a", key: "control", ranges: [[0, 4999]] },
          { id: "b", key: "redesign", payload: { layout: "one-page" }, ranges: [[5000, 9999]] },
        ],
      }],
      flags: [{
        key: "new-banner", type: "string", draft: true,
        variants: [{ key: "spring", value: "spring" }, { key: "none", value: "" }],
        off_variant: "none", fallthrough: { variant: "spring" },
      }],
    }],
  });
});

after(async () => {
  await worker?.stop();
  await origin?.close();
});

test("a draft enrols nobody unforced, and a force token previews it", async () => {
  for (let i = 0; i < 50; i++) {
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=visitor-${i}`);
    assert.deepEqual(r.json.data.assignments, {}, "a draft enrols nobody");
  }
  const token = mintForce(KEY, "shop", "new-checkout=redesign", Date.now() + 600_000);
  const forced = await call(`${worker.url}/_cleave/v1/decide?id.user=qa-1&force=${encodeURIComponent(token)}`);
  assert.equal(forced.status, 200, forced.text);
  assert.equal(forced.json.data.assignments["new-checkout"].variant, "redesign");
  assert.deepEqual(forced.json.data.assignments["new-checkout"].payload, { layout: "one-page" });
  const page = await call(`${worker.url}/checkout`, { headers: { cookie: `cleave_uid=qa-1; cleave_force=${token}` } });
  assert.equal(page.status, 200);
  assert.equal(origin.received.at(-1).headers["cleave-assignments"], 'new-checkout="redesign"');
  const plain = await call(`${worker.url}/checkout`, { headers: { cookie: "cleave_uid=qa-1" } });
  assert.equal(plain.status, 200);
  assert.equal(origin.received.at(-1).headers["cleave-assignments"], undefined);
});

test("a draft flag serves nobody unforced, and a force token previews it", async () => {
  const plain = await call(`${worker.url}/_cleave/v1/decide?id.user=visitor-1`);
  assert.equal(plain.status, 200, plain.text);
  assert.equal(plain.json.data.flags?.["new-banner"], undefined, "a draft flag is in no answer");
  const ofrep = await call(`${worker.url}/_cleave/ofrep/v1/evaluate/flags/new-banner`, {
    method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${SERVER}` },
    body: JSON.stringify({ context: { targetingKey: "visitor-1" } }),
  });
  assert.equal(ofrep.status, 404, ofrep.text);
  assert.equal(ofrep.json.errorCode, "FLAG_NOT_FOUND");

  const token = mintForce(KEY, "shop", "new-banner=spring", Date.now() + 600_000);
  const forced = await call(`${worker.url}/_cleave/v1/decide?id.user=qa-1&force=${encodeURIComponent(token)}`);
  assert.equal(forced.status, 200, forced.text);
  assert.deepEqual(forced.json.data.flags["new-banner"], { value: "spring", variant: "spring", reason: "TARGETING_MATCH" });
  await call(`${worker.url}/home`, { headers: { cookie: `cleave_uid=qa-1; cleave_force=${token}` } });
  assert.equal(origin.received.at(-1).headers["cleave-flags"], 'new-banner="spring"');
  await call(`${worker.url}/home`, { headers: { cookie: "cleave_uid=qa-1" } });
  assert.equal(origin.received.at(-1).headers["cleave-flags"], undefined);
});
