// Shared end-to-end plumbing: the compiled worker in workerd through Miniflare's API (local KV,
// Queues and rate limiters persisted on disk where `wrangler dev` keeps them), a real local
// origin that records what it receives, and direct access to the worker's KV. `wrangler dev`
// itself is tested in wrangler-dev.test.mjs and by the README walkthrough. Everything binds to
// 127.0.0.1 and is torn down by the test that started it; a hard timeout stops a worker that
// outlives its test.
import { spawn } from "node:child_process";
import { createHmac, hkdfSync, sign } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getPlatformProxy } from "wrangler";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const BUILT_WORKER = join(ROOT, "worker/build/index.js");
const WORKER_LIFETIME_MS = 10 * 60 * 1000;

export async function readJson(relativePath) {
  return JSON.parse(await readFile(join(ROOT, relativePath), "utf8"));
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const server = createNetServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** A local HTTP origin that records every request and answers with `respond` (or 200 "origin"). */
export async function startOrigin(respond) {
  const received = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const record = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      received.push(record);
      if (respond) return respond(record, res);
      res.writeHead(200, { "content-type": "text/plain", "x-origin": "yes" });
      res.end("origin");
    });
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, received, close: () => new Promise((ok) => server.close(ok)) };
}

/**
 * A local stand-in for the admin's `/ingest` that records every delivery and answers as the
 * admin does (every record received and stored), for tests that only look at what the worker
 * sends. Its `received` are the deliveries, bodies as text.
 */
export function startIngest() {
  return startOrigin((record, res) => {
    const body = JSON.parse(record.body);
    const counted = (list = []) => ({ received: list.length, stored: list.length, refused: [] });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ exposures: counted(body.exposures), events: counted(body.events) }));
  });
}

/**
 * Runs the built worker in workerd through Miniflare's own API (the copy wrangler ships), with
 * its own persisted state directory and vars, after publishing the `seed` snapshots to its KV.
 * The state lives where `wrangler dev --persist-to <dir>/state` keeps it, so
 * `wrangler kv key put --local --persist-to` (the admin's wrangler-local sink) writes the KV
 * this worker reads. `kv: false` starts it without the SNAPSHOTS binding, so every KV access
 * fails. `queues` ({ producers: { BINDING: queue }, consumers: { queue: options } }) and
 * `ratelimits` add those bindings; `main` runs another module instead of the built worker.
 * `pointers` (on for the built worker) binds CLEAVE_POINTERS to its SnapshotPointer object.
 * The worker's console output is collected in `output()`.
 */
export async function startWorker({ vars = {}, kv = true, kvId = "cleave-e2e", persistDir, seed = [], main = BUILT_WORKER, queues, ratelimits, pointers = main === BUILT_WORKER, lifetimeMs = WORKER_LIFETIME_MS } = {}) {
  const { Miniflare } = await import("miniflare");
  const dir = persistDir ?? (await mkdtemp(join(tmpdir(), "cleave-e2e-")));
  let output = "";
  const collect = (stream) => stream.on("data", (d) => (output += d));
  const mf = new Miniflare({
    name: "cleave-e2e",
    modules: true,
    scriptPath: main,
    modulesRoot: ROOT,
    modulesRules: [{ type: "ESModule", include: ["**/*.js", "**/*.mjs"] }, { type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-20",
    defaultPersistRoot: join(dir, "state", "v3"),
    kvNamespaces: kv ? { SNAPSHOTS: kvId } : {},
    bindings: Object.fromEntries(Object.entries({ CLEAVE_ENV: "cases", ...vars }).map(([k, v]) => [k, String(v)])),
    queueProducers: Object.fromEntries(Object.entries(queues?.producers ?? {}).map(([binding, queueName]) => [binding, { queueName }])),
    queueConsumers: queues?.consumers ?? {},
    ratelimits: ratelimits ?? {},
    // The environment's pointer register, as wrangler.toml binds it.
    durableObjects: pointers ? { CLEAVE_POINTERS: "SnapshotPointer" } : {},
    cf: false,
    host: "127.0.0.1",
    port: 0,
    handleRuntimeStdio: (stdout, stderr) => {
      collect(stdout);
      collect(stderr);
    },
  });
  let stopped;
  const stop = () => {
    stopped ??= (async () => {
      clearTimeout(killer);
      await mf.dispose().catch(() => {});
      if (!persistDir) await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  const killer = setTimeout(stop, lifetimeMs);
  killer.unref();
  let url;
  try {
    url = String(await mf.ready).replace(/\/$/, "");
  } catch (e) {
    await stop();
    throw new Error(`workerd did not start: ${e.message}\n${output}`);
  }
  const namespace = kv ? await mf.getKVNamespace("SNAPSHOTS") : undefined;
  const worker = { url, dir, stop, namespace, miniflare: mf, output: () => output };
  if (seed.length > 0) {
    const store = await openKv(worker);
    for (const snapshot of seed) await store.publish(snapshot);
  }
  return worker;
}

/**
 * The built worker under `wrangler dev` (the developer path, with its dev proxy), for what
 * measures the whole process: `cpu` pins wrangler and its workerd to one core, and `pid` leads
 * their process group. `toml` adds raw wrangler.toml lines (other bindings).
 */
export async function startWranglerDev({ vars = {}, kvId = "cleave-e2e", seed = [], cpu, toml = [], lifetimeMs = WORKER_LIFETIME_MS } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "cleave-e2e-"));
  const port = await freePort();
  const config = join(dir, "wrangler.toml");
  const lines = [
    `name = "cleave-e2e"`,
    `main = ${JSON.stringify(BUILT_WORKER)}`,
    `compatibility_date = "2026-04-20"`,
    `[[kv_namespaces]]`, `binding = "SNAPSHOTS"`, `id = ${JSON.stringify(kvId)}`,
    ...toml,
    `[vars]`,
  ];
  for (const [name, value] of Object.entries({ CLEAVE_ENV: "cases", ...vars })) {
    lines.push(`${name} = ${JSON.stringify(String(value))}`);
  }
  await writeFile(config, lines.join("\n") + "\n");
  if (seed.length > 0) {
    const store = await openKv({ config, dir });
    for (const snapshot of seed) await store.publish(snapshot);
    await store.dispose();
  }
  const [command, prefix] = cpu === undefined ? [process.execPath, []] : ["taskset", ["-c", String(cpu), process.execPath]];
  const child = spawn(
    command,
    [...prefix, WRANGLER, "dev", "--config", config, "--persist-to", join(dir, "state"),
      "--ip", "127.0.0.1", "--port", String(port), "--show-interactive-dev-session=false",
      "--log-level", "warn"],
    // Its own process group, so stopping it also stops the workerd it runs.
    { cwd: dir, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" }, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const killer = setTimeout(() => killGroup(child, "SIGKILL"), lifetimeMs);
  killer.unref();
  // A script cancelled by a timeout exits without its cleanup: the worker must not outlive it.
  const onExit = () => killGroup(child, "SIGKILL");
  process.once("exit", onExit);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
    try {
      await fetch(`${url}/_cleave/health`);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`wrangler dev did not start:\n${output}`);
      await new Promise((ok) => setTimeout(ok, 200));
    }
  }
  const stop = async () => {
    clearTimeout(killer);
    process.off("exit", onExit);
    await stopGroup(child);
    await rm(dir, { recursive: true, force: true });
  };
  return { url, dir, config, stop, pid: child.pid, output: () => output };
}

/** Signals the process group a `detached` child leads. */
export function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Stops a `detached` child and everything it started: TERM, then KILL after 5 s. */
export async function stopGroup(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    killGroup(child, "SIGKILL");
    return;
  }
  const exited = new Promise((ok) => child.once("exit", ok));
  killGroup(child, "SIGTERM");
  await Promise.race([exited, new Promise((ok) => setTimeout(ok, 5000))]);
  killGroup(child, "SIGKILL");
}

/**
 * The worker's KV store, opened directly: the Miniflare namespace of a `startWorker` worker,
 * or for a `startWranglerDev` one the same files `wrangler dev` reads, through wrangler's
 * platform proxy.
 */
export async function openKv(worker) {
  let kv = worker.namespace;
  let dispose = async () => {};
  if (!kv) {
    const proxy = await getPlatformProxy({
      configPath: worker.config,
      persist: { path: join(worker.dir, "state", "v3") },
    });
    kv = proxy.env.SNAPSHOTS;
    dispose = proxy.dispose;
  }
  return {
    put: (key, value) => {
      if (value instanceof Uint8Array) value = value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
      return kv.put(key, typeof value === "string" || value instanceof ArrayBuffer ? value : JSON.stringify(value));
    },
    get: (key, type) => kv.get(key, type),
    delete: (key) => kv.delete(key),
    /** Writes the body, then flips the pointer: the order admin publishes in. */
    publish: async (snapshot) => {
      await kv.put(`snapshot:${snapshot.environment}:v${snapshot.version}`, JSON.stringify(snapshot));
      await kv.put(`snapshot:${snapshot.environment}:current`, JSON.stringify({ version: snapshot.version }));
    },
    dispose,
  };
}

/** A pooled connection the server had already closed: after answering a request early (a 413
 * before reading its body) workerd closes that connection, and the next request can race onto
 * it before the client sees the close. Only then, and only without a body, is one retry safe. */
const STALE_SOCKET = new Set(["ECONNRESET", "UND_ERR_SOCKET", "EPIPE"]);

async function fetchPastStaleSocket(url, init) {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (init?.body !== undefined || !STALE_SOCKET.has(e?.cause?.code)) throw e;
    return fetch(url, init);
  }
}

/** GET or POST against the worker; returns status, headers and parsed JSON (if any). */
export async function call(url, init) {
  const res = await fetchPastStaleSocket(url, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Polls `probe` until it returns a truthy value or `ms` pass; returns [value, elapsed ms]. */
export async function waitFor(probe, ms) {
  const start = Date.now();
  for (;;) {
    const value = await probe();
    if (value) return [value, Date.now() - start];
    if (Date.now() - start > ms) return [undefined, Date.now() - start];
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** `base` (a DATABASE_URL) pointing at database `name` instead. */
export function databaseUrl(base, name) {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Runs the built `cleave-admin serve` on `port` with `env` on top of this process's; waits
 * until `GET /environments` (with `headers`) answers. Returns its URL, its output so far,
 * and a stop.
 */
export async function startAdmin({ port, env, headers = {} }) {
  const child = spawn(join(ROOT, "target/debug/cleave-admin"), ["serve", "--port", String(port)], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CLEAVE_GUARDRAIL_INTERVAL: "0", WRANGLER_SEND_METRICS: "false", ...env },
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const [up] = await waitFor(async () => {
    try {
      return (await fetch(`${url}/environments`, { headers })).ok;
    } catch {
      return false;
    }
  }, 30_000);
  if (!up) {
    await stopGroup(child);
    throw new Error(`cleave-admin did not start:\n${output}`);
  }
  return { url, output: () => output, stop: () => stopGroup(child) };
}

/**
 * The per-purpose key cleave derives from CLEAVE_SIGNING_KEY (HKDF-SHA256, salt
 * "cleave-signing-keys"), computed with Node's own HKDF: `headers`, `force` or `sticky`.
 */
export function derivedKey(secret, purpose) {
  const label = { headers: "cleave origin headers v1", force: "cleave force tokens v1", sticky: "cleave sticky records v1" }[purpose];
  return Buffer.from(hkdfSync("sha256", secret, "cleave-signing-keys", label, 32));
}

/** `cleave-signature` as an origin verifies it, with the header key. */
export function headerSignature(secret, unit, version, assignments = "") {
  return createHmac("sha256", derivedKey(secret, "headers")).update(`${unit}\n${version}\n${assignments}`).digest("hex");
}

/** A force token made independently of cleave's code, from the documented format (v2). */
export function mintForce(secret, env, pairs, expiresMs, { issuedMs = Date.now() - 1000, key } = {}) {
  const body = `${env}:${issuedMs}:${expiresMs}:${pairs}`;
  const sig = createHmac("sha256", key ?? derivedKey(secret, "force")).update(`cleave-force:v2\n${body}`).digest();
  return `${Buffer.from(body).toString("base64url")}.${sig.toString("base64url")}`;
}

/**
 * `pointer` with a signed expiry `expiresInMs` from now, as cleave-admin writes it: the
 * Ed25519 signature over cleave_core::pointer::signed_expiry_message, from the documented format.
 */
export function withExpiry(pointer, env, privateKey, expiresInMs = 3_600_000) {
  const expires_at = new Date(Date.now() + expiresInMs).toISOString().replace(/\.\d+Z$/, "Z");
  const { version, rollback_from: from, signature } = pointer;
  const message = `cleave-pointer-expiry:v1\n${env}\n${version}\n${from ?? ""}\n${expires_at}\n${signature ?? ""}`;
  return { ...pointer, expires_at, expiry_signature: sign(null, Buffer.from(message), privateKey).toString("base64url") };
}
