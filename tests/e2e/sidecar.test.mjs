// The binary sidecar in workerd: cleave-admin writes `snapshot:{env}:v{N}.bin` next to each
// JSON body and names it, signed, in the pointer; the worker decodes the sidecar (about twice
// as fast as the JSON) and answers exactly as it does from the JSON. A sidecar that is missing,
// corrupt or wrongly signed is passed over for the JSON body, and health says why.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { ROOT, call, databaseUrl, openKv, startAdmin, startWorker, waitFor, withExpiry, freePort } from "./harness.mjs";

const run = promisify(execFile);
const REFRESH_MS = 200;
const keys = generateKeyPairSync("ed25519");
const stranger = generateKeyPairSync("ed25519");
const jwk = keys.privateKey.export({ format: "jwk" });
const database = `cleave_sidecar_${process.pid}`;
const port = await freePort();
const USERS = Array.from({ length: 60 }, (_, i) => `user-${i}`);
const AUTH = { authorization: "Bearer sidecar-publisher" };
let baseUrl, worker, admin, kv;

async function api(method, path, body) {
  const headers = { ...AUTH, "content-type": "application/json" };
  const res = await fetch(`${admin.url}${path}`, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function health() {
  return (await call(`${worker.url}/_cleave/health`)).json?.data;
}

/** Waits until the worker serves `version`; returns its health. */
async function serves(version) {
  const [h] = await waitFor(async () => {
    const h = await health();
    return h?.version === version && !h.stale ? h : undefined;
  }, REFRESH_MS * 30);
  assert.ok(h, `expected v${version} in service, health says ${JSON.stringify(await health())}`);
  return h;
}

/** Every user's assignments, payloads included, as the decide API answers them. */
async function decisions() {
  const out = {};
  for (const u of USERS) {
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${u}&ctx.country=${u.endsWith("3") ? "FR" : "US"}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    out[u] = r.json.data.assignments;
  }
  return out;
}

function signature(privateKey, context, version, bytes) {
  const header = Buffer.from(`${context}\nshop\n${version}\n\n`);
  return sign(null, Buffer.concat([header, Buffer.from(bytes)]), privateKey).toString("base64url");
}

/** Re-publishes the JSON body of `from` as version `to`, offering `sidecar` under `binary`. */
async function republish(from, to, sidecar, binary) {
  const snapshot = JSON.parse(await kv.get(`snapshot:shop:v${from}`));
  const body = JSON.stringify({ ...snapshot, version: to });
  await kv.put(`snapshot:shop:v${to}`, body);
  if (sidecar !== undefined) await kv.put(`snapshot:shop:v${to}.bin`, sidecar);
  const pointer = { version: to, signature: signature(keys.privateKey, "cleave-snapshot:v1", to, body), binary };
  await kv.put("snapshot:shop:current", JSON.stringify(withExpiry(pointer, "shop", keys.privateKey)));
}

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  worker = await startWorker({
    kvId: "cleave-snapshots-local",
    vars: { CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: REFRESH_MS, CLEAVE_SNAPSHOT_PUBLIC_KEY: jwk.x },
  });
  kv = await openKv(worker);
  admin = await startAdmin({
    port,
    headers: AUTH,
    env: {
      DATABASE_URL: databaseUrl(baseUrl, database), CLEAVE_SNAPSHOT_SIGNING_KEY: jwk.d,
      CLEAVE_ADMIN_API_TOKEN: "sidecar-publisher",
      CLEAVE_SINK: "wrangler-local", CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
    },
  });
});

after(async () => {
  await kv?.dispose();
  await admin?.stop();
  await worker?.stop();
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

test("the worker decodes the admin's signed sidecar and answers exactly as from the JSON", async () => {
  const env = (await api("POST", "/environments", { name: "shop" })).id;
  await api("POST", "/audiences", {
    key: "na", targetingRules: [{ conditions: [{ attribute: "country", operator: "in", value: ["US", "CA"] }] }],
  });
  const e = await api("POST", "/experiments", { key: "checkout", name: "Checkout", environmentId: env });
  const ids = [];
  for (const [key, payload] of [["control", null], ["treatment", { color: "green", copy: "Buy \"now\" — é" }]]) {
    ids.push((await api("POST", `/experiments/${e.id}/variants`, { key, payload })).id);
  }
  await api("PUT", `/experiments/${e.id}/allocations`, {
    allocations: [{ variantId: ids[0], rangeStart: 0, rangeEnd: 4999 }, { variantId: ids[1], rangeStart: 5000, rangeEnd: 9999 }],
  });
  await api("PATCH", `/experiments/${e.id}`, { traffic: 8000, targetingRules: [{ conditions: [{ audience: "na" }] }] });
  await api("PATCH", `/experiments/${e.id}/status`, { status: "RUNNING" });

  const pointer = JSON.parse(await kv.get("snapshot:shop:current"));
  assert.equal(pointer.version, 1);
  const format = pointer.binary.format;
  assert.equal(typeof format, "number");
  assert.ok(pointer.binary.signature, "the sidecar is signed");
  const sidecar = Buffer.from(await kv.get("snapshot:shop:v1.bin", "arrayBuffer"));
  assert.equal(sidecar.subarray(0, 4).toString(), "CLVB");

  const h = await serves(1);
  assert.equal(h.loaded_from, "binary", JSON.stringify(h));
  assert.equal(h.sidecar_problem, null);
  const fromBinary = await decisions();
  const treated = Object.values(fromBinary).filter((a) => a.checkout?.variant === "treatment");
  assert.ok(treated.length > 5, `some users get the treatment: ${JSON.stringify(fromBinary)}`);
  assert.deepEqual(treated[0].checkout.payload, { color: "green", copy: "Buy \"now\" — é" });
  assert.ok(Object.entries(fromBinary).every(([u, a]) => !u.endsWith("3") || a.checkout === undefined), "targeting holds");

  // v2: the same content, its sidecar corrupt. The worker reads the JSON and says why.
  const garbage = Buffer.concat([Buffer.from("CLVB"), Buffer.from([format, 0, 0, 0]), Buffer.from("garbage")]);
  await republish(1, 2, garbage, { format, signature: signature(keys.privateKey, "cleave-snapshot-binary:v1", 2, garbage) });
  const corrupt = await serves(2);
  assert.equal(corrupt.loaded_from, "json");
  assert.match(corrupt.sidecar_problem, /sidecar of v2 refused: .*malformed/);
  assert.deepEqual(await decisions(), fromBinary, "JSON and sidecar decode to the same decisions");

  // v3: a genuine sidecar, signed by someone else. Passed over: only the key holder's counts.
  await republish(1, 3, sidecar, { format, signature: signature(stranger.privateKey, "cleave-snapshot-binary:v1", 3, sidecar) });
  const forged = await serves(3);
  assert.equal(forged.loaded_from, "json");
  assert.match(forged.sidecar_problem, /sidecar: v3 signature does not verify/);

  // v4: the pointer names a sidecar that was never written; v5: a format this build does not
  // read, which is not a problem at all.
  await republish(1, 4, undefined, { format });
  assert.match((await serves(4)).sidecar_problem, /sidecar of v4 is missing/);
  await republish(1, 5, undefined, { format: 99 });
  const newer = await serves(5);
  assert.deepEqual([newer.loaded_from, newer.sidecar_problem], ["json", null]);
});
