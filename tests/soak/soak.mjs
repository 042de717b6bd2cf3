// The soak run behind scripts/soak.sh; see there for what it proves. Everything listens on
// 127.0.0.1, and a hard deadline stops the run even if something hangs.
import { execFile, spawn } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, openKv, pool, startOrigin, startWranglerDev, stopGroup, waitFor } from "../e2e/harness.mjs";

const run = promisify(execFile);
const minutes = Number(process.argv[2] ?? 3);
const DURATION_MS = minutes * 60_000;
const PUBLISH_EVERY_MS = 3_000;
const CORRUPT_EVERY = 5; // every 5th change is a corrupt version instead
const CONCURRENCY = 12;
const TOKEN = "soak-token";
const ENV = "soak";
setTimeout(() => {
  console.error("soak: hard deadline reached");
  process.exit(2);
}, DURATION_MS + 180_000).unref();

const keys = generateKeyPairSync("ed25519");
const database = `cleave_soak_${process.pid}`;
const base = process.env.DATABASE_URL;
const dbUrl = Object.assign(new URL(base), { pathname: `/${database}` }).toString();
await run("psql", ["-q", base, "-c", `create database ${database}`]);

const origin = await startOrigin();
const worker = await startWranglerDev({
  kvId: "cleave-snapshots-local",
  vars: {
    CLEAVE_ENV: ENV, ORIGIN_URL: origin.url, CLEAVE_REFRESH_MS: 1000,
    CLEAVE_SNAPSHOT_PUBLIC_KEY: keys.publicKey.export({ format: "jwk" }).x,
  },
});
const port = 21000 + (process.pid % 9000);
const adminUrl = `http://127.0.0.1:${port}`;
const admin = spawn(join(ROOT, "target/debug/cleave-admin"), ["serve", "--port", String(port)], {
  cwd: ROOT, detached: true, stdio: ["ignore", "ignore", "pipe"],
  env: {
    ...process.env, DATABASE_URL: dbUrl, CLEAVE_ADMIN_API_TOKEN: TOKEN, CLEAVE_SINK: "wrangler-local",
    CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"), RUST_LOG: "warn",
    CLEAVE_SNAPSHOT_SIGNING_KEY: keys.privateKey.export({ format: "jwk" }).d,
  },
});
let adminLog = "";
admin.stderr.on("data", (d) => (adminLog = (adminLog + d).slice(-4000)));

async function cleanup() {
  await stopGroup(admin);
  await worker.stop();
  await origin.close();
  await run("psql", ["-q", base, "-c", `drop database if exists ${database}`]).catch(() => {});
}

async function api(method, path, body) {
  const res = await fetch(`${adminUrl}${path}`, {
    method, headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}\n${adminLog}`);
  return json;
}

/** workerd's resident memory in KiB: every workerd under the wrangler process group. */
async function workerdRssKib() {
  const { stdout } = await run("ps", ["-eo", "pid,pgid,rss,comm"]);
  return stdout.split("\n").map((l) => l.trim().split(/\s+/))
    .filter(([, pgid, , comm]) => Number(pgid) === worker.pid && comm === "workerd")
    .reduce((sum, [, , rss]) => sum + Number(rss), 0);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

try {
  await waitFor(async () => (await fetch(`${adminUrl}/environments`).catch(() => ({ ok: false }))).ok, 30_000);
  const env = await api("POST", "/environments", { name: ENV });
  // "always" enrols everyone (100% traffic), so every answer must carry it; "ramp" changes.
  const experiments = {};
  for (const key of ["always", "ramp"]) {
    const exp = await api("POST", "/experiments", { key, name: key, environmentId: env.id });
    const a = await api("POST", `/experiments/${exp.id}/variants`, { key: "control" });
    const b = await api("POST", `/experiments/${exp.id}/variants`, { key: "treatment" });
    await api("PUT", `/experiments/${exp.id}/allocations`, { allocations: [
      { variantId: a.id, rangeStart: 0, rangeEnd: 4999 }, { variantId: b.id, rangeStart: 5000, rangeEnd: 9999 }] });
    experiments[key] = exp.id;
  }
  await api("PATCH", `/experiments/${experiments.ramp}`, { traffic: 1000 });
  await api("PATCH", `/experiments/${experiments.always}/status`, { status: "RUNNING" });
  await api("PATCH", `/experiments/${experiments.ramp}/status`, { status: "RUNNING" });
  const [first] = await waitFor(async () => {
    const h = await fetch(`${worker.url}/_cleave/health`).then((r) => r.json()).catch(() => undefined);
    return h?.data?.version ? h.data : undefined;
  }, 20_000);
  if (!first) throw new Error("the first publish never reached the worker");
  const kv = await openKv(worker);

  const stats = { requests: 0, proxied: 0, api: 0, status5xx: 0, unassigned: 0, errors: 0, publishes: 0, corrupt: 0, publishFailures: 0 };
  const rss = [];
  const wasm = [];
  const deadline = Date.now() + DURATION_MS;
  const originBefore = origin.received.length;
  let latest = first.version;

  const publisher = (async () => {
    for (let change = 1; Date.now() < deadline - PUBLISH_EVERY_MS; change++) {
      await new Promise((ok) => setTimeout(ok, PUBLISH_EVERY_MS));
      try {
        if (change % CORRUPT_EVERY === 0) {
          // A corrupt version: alternately a signed body that is not a snapshot, and an
          // unsigned pointer. Each must be refused while the last good version keeps serving.
          const version = latest + 1;
          const body = `{"schema": 1, "environment": "${ENV}", "version": ${version}, "experiments": [`;
          await kv.put(`snapshot:${ENV}:v${version}`, body);
          const pointer = { version };
          if (change % (2 * CORRUPT_EVERY) === 0) {
            const message = Buffer.concat([Buffer.from(`cleave-snapshot:v1\n${ENV}\n${version}\n\n`), Buffer.from(body)]);
            pointer.signature = sign(null, message, keys.privateKey).toString("base64url");
          }
          await kv.put(`snapshot:${ENV}:current`, JSON.stringify(pointer));
          stats.corrupt += 1;
        } else {
          await api("PATCH", `/experiments/${experiments.ramp}`, { traffic: 1000 + ((change * 1700) % 9000) });
          const published = await api("POST", `/environments/${env.id}/publish?confirm=true`);
          latest = published.version;
          stats.publishes += 1;
        }
      } catch (e) {
        stats.publishFailures += 1;
        console.error(`soak: publisher: ${e.message}`);
      }
    }
  })();

  const sampler = (async () => {
    while (Date.now() < deadline) {
      rss.push({ at: Date.now(), kib: await workerdRssKib() });
      const h = await fetch(`${worker.url}/_cleave/health`).then((r) => r.json()).catch(() => undefined);
      if (h?.data?.wasm_memory_bytes) wasm.push(h.data.wasm_memory_bytes);
      await new Promise((ok) => setTimeout(ok, 5_000));
    }
  })();

  const load = Array.from({ length: CONCURRENCY }, async (_, lane) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const user = `user-${lane}-${i % 5000}`;
      stats.requests += 1;
      try {
        if (i % 3 === 2) {
          stats.api += 1;
          const res = await fetch(`${worker.url}/_cleave/v1/decide?id.user=${user}&ctx.country=US`);
          const json = await res.json();
          if (res.status >= 500) stats.status5xx += 1;
          else if (!json.data?.assignments?.always) stats.unassigned += 1;
        } else {
          stats.proxied += 1;
          const res = await fetch(`${worker.url}/page/${i}`, { headers: { cookie: `cleave_uid=${user}` } });
          await res.arrayBuffer();
          if (res.status >= 500) stats.status5xx += 1;
        }
      } catch (e) {
        stats.errors += 1;
      }
    }
  });
  await Promise.all([...load, publisher, sampler]);
  await kv.dispose();

  const seen = origin.received.slice(originBefore);
  const originUnassigned = seen.filter((r) => !/\balways="/.test(r.headers["cleave-assignments"] ?? "")).length;
  const versions = new Set(seen.map((r) => r.headers["cleave-snapshot"]));
  const steady = rss.slice(2).map((s) => s.kib); // after warm-up
  const third = Math.max(1, Math.floor(steady.length / 3));
  const early = median(steady.slice(0, third));
  const late = median(steady.slice(-third));
  const growth = early ? (late - early) / early : 0;
  const wasmSteady = wasm.slice(2);
  const wasmEarly = median(wasmSteady.slice(0, Math.max(1, Math.floor(wasmSteady.length / 3))));
  const wasmLate = median(wasmSteady.slice(-Math.max(1, Math.floor(wasmSteady.length / 3))));
  const health = await fetch(`${worker.url}/_cleave/health`).then((r) => r.json());
  const report = {
    minutes, ...stats, origin_received: seen.length, origin_unassigned: originUnassigned,
    versions_seen_by_origin: versions.size, final_version: health.data.version, final_status: health.data.status,
    wasm_memory_mib: { early: +(wasmEarly / 2 ** 20).toFixed(2), late: +(wasmLate / 2 ** 20).toFixed(2) },
    // Context only: under wrangler dev, workerd's RSS grows at the same rate for a trivial
    // JS worker (dev tooling keeps per-request state), so it cannot judge cleave.
    workerd_rss_mib: { early: +(early / 1024).toFixed(1), late: +(late / 1024).toFixed(1), growth_pct: +(growth * 100).toFixed(1) },
    req_per_s: +(stats.requests / (DURATION_MS / 1000)).toFixed(0),
    wasm_memory_series_mib: wasm.map((b) => +(b / 2 ** 20).toFixed(2)),
  };
  const failures = [];
  if (stats.status5xx) failures.push(`${stats.status5xx} responses were 5xx`);
  if (stats.errors) failures.push(`${stats.errors} requests failed outright`);
  if (seen.length !== stats.proxied) failures.push(`origin got ${seen.length} of ${stats.proxied} proxied requests`);
  if (stats.unassigned || originUnassigned) failures.push(`${stats.unassigned} API and ${originUnassigned} proxied answers lacked assignments`);
  if (stats.publishFailures) failures.push(`${stats.publishFailures} publishes failed`);
  if (versions.size < 2) failures.push("the origin never saw a new version");
  if (!wasmEarly || wasmLate > wasmEarly * 1.1) failures.push(`the worker's wasm memory grew from ${wasmEarly} to ${wasmLate} bytes`);
  console.log(JSON.stringify(report, null, 2));
  if (failures.length) {
    console.error(`soak FAILED:\n- ${failures.join("\n- ")}`);
    process.exitCode = 1;
  } else {
    console.error("soak ok");
  }
} finally {
  await cleanup();
}
