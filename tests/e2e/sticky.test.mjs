// Sticky assignments through the compiled worker in workerd: a visitor drawn on the fallback
// unit keeps their variant after login by sending back the signed `sticky` token.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import { call, startWorker } from "./harness.mjs";

const TOKEN = "e2e-admin-token";

const snapshot = {
  schema: 1, environment: "sticky", version: 1,
  published_at: "2026-11-21T10:00:00Z", published_by: "e2e",
  experiments: [{
    id: "id-onboarding", key: "onboarding", status: "running", fallback_unit: "anonymous",
    variants: [
      { id: "a", key: "control", ranges: [[0, 4999]] },
      { id: "b", key: "treatment", ranges: [[5000, 9999]] },
    ],
  }],
};

/** docs/contracts.md §2, written independently: first eight digest bytes, big-endian, mod 10 000. */
const bucket = (seed, unit) =>
  Number(createHash("sha256").update(`${seed}:${unit}`).digest().readBigUInt64BE(0) % 10000n);
const variantOf = (unit) => (bucket("onboarding", unit) < 5000 ? "control" : "treatment");

// a visitor whose variant would flip at login
const [anon, user] = Array.from({ length: 100 }, (_, n) => [`anon-${n}`, `user-${n}`])
  .find(([a, u]) => variantOf(a) !== variantOf(u));

let worker;
before(async () => {
  worker = await startWorker({
    vars: { CLEAVE_ENV: "sticky", CLEAVE_ADMIN_TOKEN: TOKEN, CLEAVE_SIGNING_KEY: "e2e-signing-key" },
    seed: [snapshot],
  });
});
after(async () => worker?.stop());

const decide = (query, headers = {}) =>
  call(`${worker.url}/_cleave/v1/decide?${query}`, { headers });
const variant = (r) => r.json.data.assignments.onboarding?.variant;

test("a visitor keeps the variant drawn on their anonymous id after logging in", async () => {
  const first = await decide(`id.anonymous=${anon}`);
  assert.equal(variant(first), variantOf(anon));
  const token = first.json.data.sticky;
  assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

  const loggedIn = `id.anonymous=${anon}&id.user=${user}`;
  const without = await decide(loggedIn);
  assert.equal(variant(without), variantOf(user), "without the token the login reshuffles");
  assert.equal(without.json.data.sticky, undefined, "a draw on the user id is not recorded");

  const kept = await decide(`${loggedIn}&sticky=${token}&explain=1`, { authorization: `Bearer ${TOKEN}` });
  assert.equal(kept.status, 200);
  assert.equal(variant(kept), variantOf(anon));
  assert.deepEqual(kept.json.data.explain.onboarding, { outcome: "sticky", variant: variantOf(anon) });
  assert.equal(kept.json.data.sticky, token, "the record carries over unchanged");

  const posted = await call(`${worker.url}/_cleave/v1/decide`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ units: { anonymous: anon, user }, sticky: token }),
  });
  assert.equal(variant(posted), variantOf(anon));
});

test("a record is bound to its fallback id, and a bad token is ignored, not refused", async () => {
  const token = (await decide(`id.anonymous=${anon}`)).json.data.sticky;
  const other = await decide(`id.anonymous=someone-else&id.user=${user}&sticky=${token}`);
  assert.equal(variant(other), variantOf(user));

  const [body, sig] = token.split(".");
  const tampered = `${Buffer.from(Buffer.from(body, "base64url").toString().replace(/=(control|treatment)@/, "=zzz@")).toString("base64url")}.${sig}`;
  const r = await decide(`id.anonymous=${anon}&id.user=${user}&sticky=${tampered}`);
  assert.equal(r.status, 200);
  assert.equal(variant(r), variantOf(user));
  assert.equal(r.json.data.sticky_ignored, "sticky token signature does not match");
});
