// OFREP from the browser (docs/contracts.md §9): OpenFeature's web SDK with its OFREP provider
// from npm, in headless Chromium, on a page served from another origin than the worker's. The
// environment allows that origin (CORS, preflight answered at the edge) and asks for a client
// key; the provider evaluates in bulk, revalidates with If-None-Match (304s), and sees a
// publish on its next poll. A page from an origin not allowed reads nothing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { ROOT, call, openKv, startWorker, waitFor } from "./harness.mjs";

const CHROMIUM = process.env.CLEAVE_CHROMIUM ?? "/usr/bin/chromium";
const KEY = "browser-client-key-0123";
const SERVER = "browser-server-token";
let worker, kv, browser, allowedPage, otherPage, script;

/** A page server on its own port: its own origin. */
async function pageServer() {
  const server = createServer((req, res) => {
    if (req.url === "/flags.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(script);
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end('<!doctype html><html><head><script src="/flags.js"></script></head><body>shop</body></html>');
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((ok) => server.close(ok)) };
}

function snapshot(version, theme, origin) {
  return {
    schema: 1, environment: "web", version, published_at: "2026-12-02T10:00:00Z", published_by: "e2e",
    experiments: [],
    ofrep: { allowed_origins: [origin], client_key_hashes: [createHash("sha256").update(KEY).digest("hex")] },
    flags: [
      {
        key: "theme", type: "string", off_variant: "blue", fallthrough: { variant: theme },
        variants: [{ key: "blue", value: "blue" }, { key: "red", value: "red" }],
      },
      {
        key: "new-nav", type: "boolean", off_variant: "off", fallthrough: { variant: "off" },
        variants: [{ key: "on", value: true }, { key: "off", value: false }],
        rules: [{ targeting: [{ conditions: [{ attribute: "plan", operator: "eq", value: "free" }] }], serve: { variant: "on" } }],
      },
    ],
  };
}

before(async () => {
  script = execFileSync(join(ROOT, "node_modules/.bin/esbuild"), [join(ROOT, "tests/e2e/pages/ofrep-web.mjs"), "--bundle", "--format=iife", "--log-level=warning"]).toString();
  allowedPage = await pageServer();
  otherPage = await pageServer();
  worker = await startWorker({
    vars: { CLEAVE_ENV: "web", CLEAVE_REFRESH_MS: 300, CLEAVE_SERVER_TOKEN: SERVER },
    seed: [snapshot(1, "blue", allowedPage.url)],
  });
  kv = await openKv(worker);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  await kv?.dispose();
  await worker?.stop();
  await allowedPage?.close();
  await otherPage?.close();
});

test("preflight and client keys are answered at the edge", async () => {
  const bulk = `${worker.url}/_cleave/ofrep/v1/evaluate/flags`;
  const preflight = await fetch(bulk, {
    method: "OPTIONS",
    headers: { origin: allowedPage.url, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-api-key" },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), allowedPage.url);
  assert.match(preflight.headers.get("access-control-allow-headers"), /x-api-key/);
  assert.match(preflight.headers.get("access-control-allow-methods"), /POST/);
  const refused = await fetch(bulk, { method: "OPTIONS", headers: { origin: otherPage.url, "access-control-request-method": "POST" } });
  assert.equal(refused.status, 403);
  assert.equal(refused.headers.get("access-control-allow-origin"), null);
  const post = (headers) => call(bulk, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: '{"context":{"targetingKey":"u"}}' });
  assert.equal((await post({})).status, 401, "no key");
  assert.equal((await post({ "x-api-key": "wrong-key-0123456789" })).status, 401, "a wrong key");
  const keyed = await post({ "x-api-key": KEY, origin: otherPage.url });
  assert.equal(keyed.status, 200);
  assert.equal(keyed.headers.get("access-control-allow-origin"), null, "another site may not read it");
  assert.equal((await post({ authorization: `Bearer ${KEY}` })).status, 200);
  assert.equal((await post({ authorization: `Bearer ${SERVER}` })).status, 200, "the server token stands for any key");
});

test("the web SDK on another site reads flags, revalidates with 304s and sees a publish", async () => {
  const page = await browser.newPage();
  const statuses = [];
  page.on("response", (r) => {
    if (r.url().includes("/ofrep/v1/")) statuses.push(r.status());
  });
  await page.goto(allowedPage.url);
  await page.evaluate((o) => window.startFlags(o), { baseUrl: `${worker.url}/_cleave`, key: KEY, targetingKey: "visitor-1", pollInterval: 300 });
  assert.deepEqual(await page.evaluate(() => window.flag("theme", "none")), { value: "blue", reason: "STATIC", variant: "blue", errorCode: null });
  assert.deepEqual(await page.evaluate(() => window.flag("new-nav", false)), { value: true, reason: "TARGETING_MATCH", variant: "on", errorCode: null });
  const [revalidated] = await waitFor(() => statuses.filter((s) => s === 304).length >= 2, 10_000);
  assert.ok(revalidated, `no 304 revalidations: ${statuses}`);
  await kv.publish(snapshot(2, "red", allowedPage.url));
  const [changed] = await waitFor(async () => (await page.evaluate(() => window.flag("theme", "none"))).value === "red", 15_000);
  assert.ok(changed, `the publish never reached the page: ${statuses}`);
  assert.ok(statuses.includes(200) && statuses[0] === 200, `${statuses}`);
  await page.close();
});

test("a page from an origin the environment does not allow reads nothing", async () => {
  const page = await browser.newPage();
  await page.goto(otherPage.url);
  await page
    .evaluate((o) => window.startFlags(o), { baseUrl: `${worker.url}/_cleave`, key: KEY, targetingKey: "visitor-2", pollInterval: 0 })
    .catch(() => {});
  const read = await page.evaluate(() => window.flag("theme", "none"));
  assert.equal(read.value, "none");
  assert.equal(read.reason, "ERROR");
  await page.close();
});
