// A worker in a bare workerd and a local origin, for bench/run.mjs and bench/profile.mjs.
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { ROOT, waitFor } from "../tests/e2e/harness.mjs";

const WORKERD = join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");

/**
 * A worker in a bare workerd (no dev tooling in front), pinned to core 0. `modules` are
 * [name, kind, path] with kind esModule or wasm; `kv` is a {key: value} map served to the
 * SNAPSHOTS binding; `inspector` a port for the V8 inspector protocol. Returns { url, pid, stop }.
 */
export async function serve({ modules, bindings = {}, kv, inspector }) {
  const dir = mkdtempSync(join(tmpdir(), "cleave-bench-"));
  const port = 19000 + Math.floor(Math.random() * 5000);
  const embed = (kind, path) => {
    const name = `m${copied.length}-${basename(path)}`;
    copyFileSync(path, join(dir, name));
    copied.push(name);
    return `${kind} = embed ${JSON.stringify(name)}`;
  };
  const copied = [];
  const mods = modules.map(([name, kind, path]) => `(name = ${JSON.stringify(name)}, ${embed(kind, path)})`);
  const binds = Object.entries(bindings).map(([k, v]) => `(name = ${JSON.stringify(k)}, text = ${JSON.stringify(String(v))})`);
  const services = ['(name = "main", worker = .main)', '(name = "internet", network = (allow = ["public", "private", "local"]))'];
  let kvWorker = "";
  if (kv) {
    writeFileSync(join(dir, "kv.json"), JSON.stringify(kv));
    binds.push('(name = "SNAPSHOTS", kvNamespace = "kv")');
    services.push('(name = "kv", worker = .kv)');
    kvWorker = `const kv :Workerd.Worker = (modules = [(name = "kv.js", ${embed("esModule", join(ROOT, "bench/http/kv-service.mjs"))}), (name = "kv.json", json = embed "kv.json")], compatibilityDate = "2026-04-20");`;
  }
  writeFileSync(join(dir, "config.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [${services.join(", ")}],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const main :Workerd.Worker = (
  modules = [${mods.join(", ")}],
  bindings = [${binds.join(", ")}],
  compatibilityDate = "2026-04-20",
  globalOutbound = "internet",
);
${kvWorker}
`);
  const inspect = inspector === undefined ? [] : [`--inspector-addr=127.0.0.1:${inspector}`];
  const child = spawn("taskset", ["-c", "0", WORKERD, "serve", ...inspect, join(dir, "config.capnp")], { stdio: ["ignore", "inherit", "inherit"] });
  const url = `http://127.0.0.1:${port}`;
  const [up] = await waitFor(async () => (await fetch(url).then(() => true, () => false)), 15_000);
  if (!up) throw new Error(`workerd did not start (${dir})`);
  return {
    url,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((ok) => child.once("exit", ok));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** scripts/demo-origin.mjs in its own process on core 1 (wrk's). */
export async function startOriginProcess() {
  const port = 24000 + Math.floor(Math.random() * 5000);
  const child = spawn("taskset", ["-c", "1", process.execPath, join(ROOT, "scripts/demo-origin.mjs"), String(port)], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const [up] = await waitFor(async () => (await fetch(url).then(() => true, () => false)), 10_000);
  if (!up) throw new Error("origin did not start");
  return { url, close: async () => { child.kill("SIGTERM"); await new Promise((ok) => child.once("exit", ok)); } };
}
