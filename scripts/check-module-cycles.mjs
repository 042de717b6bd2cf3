// Fails when modules import each other in a cycle: the top-level modules of each crate (what
// `crate::x` paths name, tests and comments left out) and the dashboard's ES modules. A cycle
// means two modules can only be understood, and changed, together.
//
//   node scripts/check-module-cycles.mjs
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function files(dir, ext) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path, ext);
    return path.endsWith(ext) ? [path] : [];
  });
}

/** Rust source without comments and without inline `#[cfg(test)] mod tests { … }` blocks. */
function rustCode(text) {
  const cut = text.search(/#\[cfg\(test\)\]\s*mod tests\s*\{/);
  return (cut >= 0 ? text.slice(0, cut) : text).replace(/\/\/.*$/gm, "");
}

function crateGraph(src) {
  const graph = new Map();
  for (const path of files(src, ".rs")) {
    const rel = relative(src, path);
    if (/(^|\/)tests(\.rs|\/)/.test(rel)) continue;
    const top = rel.split("/")[0].replace(/\.rs$/, "");
    if (top === "lib" || top === "main") continue;
    const uses = graph.get(top) ?? new Set();
    for (const [, target] of rustCode(readFileSync(path, "utf8")).matchAll(/crate::([a-z_][a-z0-9_]*)/g)) {
      if (target !== top) uses.add(target);
    }
    graph.set(top, uses);
  }
  return graph;
}

function dashboardGraph(dir) {
  const graph = new Map();
  for (const path of files(dir, ".js")) {
    const uses = new Set();
    for (const [, target] of readFileSync(path, "utf8").matchAll(/from "\.\/([^"]+)"/g)) uses.add(target);
    graph.set(basename(path), uses);
  }
  return graph;
}

/** Every cycle's modules, by Tarjan's strongly connected components. */
function cycles(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const checked = [
  ["core", crateGraph(join(root, "core/src"))],
  ["worker", crateGraph(join(root, "worker/src"))],
  ["admin", crateGraph(join(root, "admin/src"))],
  ["dashboard", dashboardGraph(join(root, "admin/ui"))],
];
let failed = false;
for (const [name, graph] of checked) {
  for (const cycle of cycles(graph)) {
    console.error(`${name}: modules import each other in a cycle: ${cycle.join(" <-> ")}`);
    failed = true;
  }
}
if (failed) process.exit(1);
console.error(`no module cycles (${checked.map(([name, g]) => `${name} ${g.size}`).join(", ")} modules)`);
