// Signed snapshots in workerd: with CLEAVE_SNAPSHOT_PUBLIC_KEY set, the worker uses a body only
// when the pointer's Ed25519 signature covers this environment, this version, the rollback
// marker and these exact bytes; it never goes back in time without a marker that covers what
// it holds; it follows a pointer only while its signed expiry lies ahead, so an old signed
// pointer written back into KV serves no isolate, warm or cold, once it expired; and whatever
// it refuses, it keeps serving the last good version and says why.
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { after, before, test } from "node:test";
import { call, openKv, readJson, startWorker, waitFor, withExpiry } from "./harness.mjs";

const REFRESH_MS = 200;
const keys = generateKeyPairSync("ed25519");
const stranger = generateKeyPairSync("ed25519");
const PUBLIC_KEY = keys.publicKey.export({ format: "jwk" }).x;
let worker, kv, base;

/** The signed message of cleave_core::pointer::signed_message. */
function message(env, version, rollbackFrom, body) {
  return Buffer.concat([Buffer.from(`cleave-snapshot:v1\n${env}\n${version}\n${rollbackFrom ?? ""}\n`), Buffer.from(body)]);
}

function signature(privateKey, env, version, rollbackFrom, body) {
  return sign(null, message(env, version, rollbackFrom, body), privateKey).toString("base64url");
}

function version(n) {
  return { ...base, version: n, published_at: `2026-11-21T10:00:0${n}Z` };
}

/** The pointer to `snapshot`, signed, expiring `expiresInMs` from now; `pointer` overrides fields. */
function pointerTo(snapshot, pointer = {}) {
  const body = JSON.stringify(snapshot);
  const { rollback_from: from, key = keys.privateKey, env = "cases", signedBody = body, expiresInMs = 3_600_000, ...rest } = pointer;
  const signed = { version: snapshot.version, signature: signature(key, env, snapshot.version, from, signedBody) };
  if (from !== undefined) signed.rollback_from = from;
  const merged = { ...signed, ...rest };
  return expiresInMs === null ? merged : withExpiry(merged, env, key, expiresInMs);
}

/** Writes the body of `snapshot` and a pointer to it; `pointer` overrides the pointer's fields. */
async function publish(snapshot, pointer = {}, kvStore = kv) {
  await kvStore.put(`snapshot:cases:v${snapshot.version}`, JSON.stringify(snapshot));
  await kvStore.put("snapshot:cases:current", JSON.stringify(pointerTo(snapshot, pointer)));
}

async function health() {
  return (await call(`${worker.url}/_cleave/health`)).json;
}

/** Waits until health reports `version` with `stale` and a reason matching `reason` (or fresh). */
async function settles(wantVersion, reason) {
  const [state] = await waitFor(async () => {
    const h = await health();
    const ok = h?.data?.version === wantVersion && (reason ? h.data.stale && reason.test(h.data.reason ?? "") : h.data.stale === false);
    return ok ? h.data : undefined;
  }, REFRESH_MS * 20);
  assert.ok(state, `expected v${wantVersion} ${reason ?? "fresh"}, health says ${JSON.stringify(await health())}`);
  return state;
}

before(async () => {
  base = await readJson("tests/fixtures/assignment-snapshot.json");
  worker = await startWorker({ vars: { CLEAVE_REFRESH_MS: REFRESH_MS, CLEAVE_SNAPSHOT_PUBLIC_KEY: PUBLIC_KEY } });
  kv = await openKv(worker);
});

after(async () => {
  await kv?.dispose();
  await worker?.stop();
});

test("an unsigned snapshot is refused, and with nothing good the site fails open", async () => {
  const body = JSON.stringify(version(1));
  await kv.put("snapshot:cases:v1", body);
  await kv.put("snapshot:cases:current", JSON.stringify({ version: 1 }));
  const [h] = await waitFor(async () => {
    const r = await call(`${worker.url}/_cleave/health`);
    return r.status === 503 && /not signed/.test(r.json.data.reason ?? "") ? r : undefined;
  }, REFRESH_MS * 20);
  assert.ok(h, "health never named the missing signature");
  const decide = await call(`${worker.url}/_cleave/v1/decide?id.user=u1`);
  assert.equal(decide.status, 503);
});

test("signatures, environments, downgrades and rollback markers", async () => {
  await publish(version(1));
  await settles(1);

  // Signed by another key, signed for another environment, or a body changed after signing:
  // each is refused and v1 stays in service, with the reason and its age on /_cleave/health.
  await publish(version(2), { key: stranger.privateKey });
  let state = await settles(1, /v2 signature does not verify/);
  assert.equal(typeof state.age_ms, "number");
  await publish(version(2), { env: "other" });
  await settles(1, /v2 signature does not verify/);
  await publish(version(2), { signedBody: JSON.stringify(version(3)) });
  await settles(1, /v2 signature does not verify/);
  await publish(version(2), { signature: "c2hvcnQ" });
  await settles(1, /v2 has a malformed signature/);
  const decide = await call(`${worker.url}/_cleave/v1/decide?id.user=u1`);
  assert.equal(decide.status, 200);
  assert.equal(decide.json.meta.snapshot.version, 1, "the last good version keeps serving");

  await publish(version(2));
  await settles(2);

  // Back to v1: refused without a marker, and with a forged one; accepted with a signed marker.
  await publish(version(1));
  await settles(2, /v1 is older than v2 in service and the pointer carries no rollback marker/);
  await publish(version(1), { rollback_from: 2, signature: signature(keys.privateKey, "cases", 1, undefined, JSON.stringify(version(1))) });
  await settles(2, /v1 signature does not verify/);
  await publish(version(1), { rollback_from: 2 });
  await settles(1);
  const rollback = await kv.get("snapshot:cases:current");

  // A later publish, then a replay of that old rollback pointer: refused.
  await publish(version(3));
  await settles(3);
  await kv.put("snapshot:cases:current", rollback);
  await settles(3, /v1 is a rollback from v2, older than v3 in service/);
});

test("a pointer without a signed expiry, or with a forged one, is refused", async () => {
  await publish(version(4));
  await settles(4);
  await publish(version(5), { expiresInMs: null });
  await settles(4, /v5 pointer carries no signed expiry/);
  const forged = pointerTo(version(5));
  forged.expires_at = "2999-01-01T00:00:00Z";
  await kv.put("snapshot:cases:current", JSON.stringify(forged));
  await settles(4, /expiry: v5 signature does not verify/);
  await publish(version(5));
  await settles(5);
});

test("an old signed pointer written back after it expired serves no isolate, warm or cold", async () => {
  // v6 is published with a short-lived pointer (as the admin does, re-signing it on a schedule).
  await publish(version(6), { expiresInMs: 1500 });
  await settles(6);
  const old = await kv.get("snapshot:cases:current");
  await publish(version(7));
  await settles(7);
  await new Promise((ok) => setTimeout(ok, 1600));
  // Frozen: v7's current pointer is replaced by an expired one of v7. The warm isolate keeps
  // v7 (its last good version) and says why.
  const frozen = pointerTo(version(7), { expiresInMs: -1000 });
  await kv.put("snapshot:cases:current", JSON.stringify(frozen));
  const state = await settles(7, /v7 pointer expired at/);
  assert.equal(state.status, "stale");
  // Rolled back: the old v6 pointer, validly signed but expired, is written back.
  await kv.put("snapshot:cases:current", old);
  await settles(7, /v6 pointer expired at/);

  // A cold isolate (a new worker on the same KV contents) refuses it too, fails open and says why.
  const cold = await startWorker({ vars: { CLEAVE_REFRESH_MS: REFRESH_MS, CLEAVE_SNAPSHOT_PUBLIC_KEY: PUBLIC_KEY } });
  const coldKv = await openKv(cold);
  try {
    await coldKv.put("snapshot:cases:v6", JSON.stringify(version(6)));
    await coldKv.put("snapshot:cases:current", old);
    const [h] = await waitFor(async () => {
      const r = await call(`${cold.url}/_cleave/health`);
      return r.status === 503 && /v6 pointer expired at/.test(r.json.data.reason ?? "") ? r : undefined;
    }, REFRESH_MS * 20);
    assert.ok(h, "a cold isolate served an expired pointer");
    assert.equal(h.json.data.status, "none");
    const decide = await call(`${cold.url}/_cleave/v1/decide?id.user=u1`);
    assert.equal(decide.status, 503);
    // Once the admin re-signs the pointer, the cold isolate follows it.
    await coldKv.put("snapshot:cases:current", JSON.stringify(pointerTo(version(6))));
    const [fresh] = await waitFor(async () => {
      const r = await call(`${cold.url}/_cleave/health`);
      return r.status === 200 && r.json.data.version === 6 ? r : undefined;
    }, REFRESH_MS * 20);
    assert.ok(fresh, "the re-signed pointer was not followed");
  } finally {
    await coldKv.dispose();
    await cold.stop();
  }
});

test("a KV writer's unsigned higher pointer is not taken by the pointer object, so pushes are not frozen", async () => {
  const own = await startWorker({ vars: { CLEAVE_REFRESH_MS: REFRESH_MS, CLEAVE_SNAPSHOT_PUBLIC_KEY: PUBLIC_KEY, CLEAVE_PUBLISH_TOKEN: "push-token" } });
  const store = await openKv(own);
  const push = (pointer) => call(`${own.url}/_cleave/v1/pointer?env=cases`, {
    method: "PUT", headers: { authorization: "Bearer push-token" }, body: JSON.stringify(pointer),
  });
  const served = async (n) => (await waitFor(async () => (await call(`${own.url}/_cleave/health`)).json?.data?.version === n, REFRESH_MS * 20))[0];
  try {
    await store.put("snapshot:cases:v1", JSON.stringify(version(1)));
    assert.equal((await push(pointerTo(version(1)))).status, 200);
    assert.ok(await served(1));
    // KV's pointer now names v9, signed by nobody; the object reads KV every 30 s.
    await store.put("snapshot:cases:current", JSON.stringify({ version: 9 }));
    await new Promise((ok) => setTimeout(ok, 31_000 + REFRESH_MS * 3));
    await store.put("snapshot:cases:v2", JSON.stringify(version(2)));
    const next = await push(pointerTo(version(2)));
    assert.equal(next.status, 200, `the admin's next push is taken: ${next.text}`);
    assert.ok(await served(2), "v2 is served");
  } finally {
    await store.dispose();
    await own.stop();
  }
});
