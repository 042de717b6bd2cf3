// Edge request routing in workerd with local KV and two real local origins: route-scoped
// experiments, variants that send requests to another allowed origin, rewrite the path or
// redirect (with the loop guard), the per-variant edge cache, and pages that learn their
// assignments.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { call, startOrigin, startWorker } from "./harness.mjs";

let worker, main, beta;
const hits = new Map();

const everyone = (key, route) => [{ id: `${key}-v`, key, ranges: [[0, 9999]], ...(route ? { route } : {}) }];

function snapshot() {
  return {
    schema: 1, environment: "cases", version: 1,
    published_at: "2026-11-21T10:00:00Z", published_by: "e2e",
    origins: { beta: beta.url },
    experiments: [
      { id: "e-backend", key: "backend", status: "running",
        routes: { include: ["/shop/*"], exclude: ["/shop/admin/*"] },
        variants: everyone("beta", { origin: "beta" }) },
      { id: "e-pricing", key: "pricing", status: "running", routes: { include: ["/pricing"] },
        variants: everyone("v2", { rewrite: "/pricing-v2" }) },
      { id: "e-landing", key: "landing", status: "running", routes: { include: ["/old"] },
        variants: everyone("new", { redirect: "/new", status: 307 }) },
      { id: "e-cached", key: "cached", status: "running", routes: { include: ["/cached", "/page"] },
        variants: [
          { id: "c-a", key: "a", ranges: [[0, 4999]] },
          { id: "c-b", key: "b", ranges: [[5000, 9999]] },
        ] },
    ],
  };
}

/** The main origin: /cached answers per variant and lets the edge keep it; /page is HTML. */
function respond(record, res) {
  hits.set(record.url, (hits.get(record.url) ?? 0) + 1);
  const variant = record.headers["cleave-assignments"] ?? "none";
  if (record.url.startsWith("/cached")) {
    res.writeHead(200, { "content-type": "text/plain", "cache-control": "public, max-age=300" });
    return res.end(`page for ${variant}`);
  }
  if (record.url === "/page") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    return res.end("<html><head><title>t</title></head><body>hi</body></html>");
  }
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("main");
}

before(async () => {
  main = await startOrigin(respond);
  beta = await startOrigin((record, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("beta");
  });
  worker = await startWorker({
    vars: { ORIGIN_URL: main.url, CLEAVE_EXPOSE_ASSIGNMENTS: "cookie,html" },
    seed: [snapshot()],
  });
});

after(async () => {
  await worker?.stop();
  await main?.close();
  await beta?.close();
});

const visitor = (uid, extra = "") => ({ headers: { cookie: `cleave_uid=${uid}${extra}` }, redirect: "manual" });

test("a routed variant reaches the allowed origin with the original path and query", async () => {
  const r = await call(`${worker.url}/shop/shoes?size=42&c=red`, visitor("u-1"));
  assert.equal(r.status, 200);
  assert.equal(r.text, "beta");
  const got = beta.received.at(-1);
  assert.equal(got.url, "/shop/shoes?size=42&c=red");
  assert.equal(got.headers["cleave-assignments"], 'backend="beta"', "only the route's experiments are evaluated");
  // Excluded path: the experiment does not apply, the main origin answers, nothing assigned.
  const excluded = await call(`${worker.url}/shop/admin/users`, visitor("u-1"));
  assert.equal(excluded.text, "main");
  assert.equal(main.received.at(-1).headers["cleave-assignments"], undefined);
});

test("a rewrite reaches the rewritten path on the origin, query kept", async () => {
  const r = await call(`${worker.url}/pricing?plan=pro`, visitor("u-1"));
  assert.equal(r.text, "main");
  const got = main.received.at(-1);
  assert.equal(got.url, "/pricing-v2?plan=pro");
  assert.equal(got.headers["cleave-assignments"], 'pricing="v2"');
});

test("a redirect answers with its status and location, query kept, and the loop guard stops it", async () => {
  const before = main.received.length;
  const r = await call(`${worker.url}/old?utm_source=mail`, visitor("u-1"));
  assert.equal(r.status, 307);
  assert.equal(r.headers.get("location"), "/new?utm_source=mail");
  assert.match(r.headers.get("cache-control"), /no-store/);
  assert.match(r.headers.get("set-cookie"), /cleave_hops=1;/);
  assert.equal(main.received.length, before, "a redirect does not reach the origin");
  const third = await call(`${worker.url}/old`, visitor("u-1", "; cleave_hops=2"));
  assert.equal(third.status, 307);
  assert.match(third.headers.get("set-cookie"), /cleave_hops=3;/);
  // After five hops in a row the visitor gets the page, and the counter is cleared.
  const stopped = await call(`${worker.url}/old?x=1`, visitor("u-1", "; cleave_hops=5"));
  assert.equal(stopped.status, 200);
  assert.equal(stopped.text, "main");
  assert.equal(main.received.at(-1).url, "/old?x=1");
  assert.match(stopped.headers.get("set-cookie"), /cleave_hops=; Path=\/; Max-Age=0/);
});

test("a POST is forwarded untouched: same origin, path, method and body", async () => {
  const body = JSON.stringify({ item: 7, qty: 2 });
  const betaBefore = beta.received.length;
  const r = await call(`${worker.url}/shop/cart?step=2`, {
    method: "POST", body, headers: { cookie: "cleave_uid=u-1", "content-type": "application/json" },
  });
  assert.equal(r.text, "main");
  assert.equal(beta.received.length, betaBefore, "the routed origin never sees the POST");
  const got = main.received.at(-1);
  assert.equal(got.method, "POST");
  assert.equal(got.url, "/shop/cart?step=2");
  assert.equal(got.body, body);
  assert.equal(got.headers["content-type"], "application/json");
  assert.equal(got.headers["cleave-assignments"], 'backend="beta"', "still labelled");
});

/** Two visitor ids the `cached` experiment puts in different variants, found through the API. */
async function visitorsInEachVariant() {
  const found = {};
  for (let i = 0; i < 50 && Object.keys(found).length < 2; i++) {
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=cache-${i}&url=/cached`);
    const variant = r.json.data.assignments.cached?.variant;
    found[variant] ??= `cache-${i}`;
  }
  assert.ok(found.a && found.b, `no visitors in both variants: ${JSON.stringify(found)}`);
  return found;
}

test("the decide API can be asked for one URL's experiments", async () => {
  const all = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1`);
  assert.deepEqual(Object.keys(all.json.data.assignments), ["backend", "cached", "landing", "pricing"]);
  const page = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1&url=https://shop.example/pricing`);
  assert.deepEqual(Object.keys(page.json.data.assignments), ["pricing"]);
  const none = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1&url=/about`);
  assert.deepEqual(none.json.data.assignments, {});
  const bad = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1&url=ftp://x`);
  assert.equal(bad.status, 400);
  assert.match(bad.json.meta.error, /url/);
});

test("each variant is cached separately and never served to the other", async () => {
  const { a, b } = await visitorsInEachVariant();
  const seen = [];
  for (const [uid, variant] of [[a, "a"], [b, "b"], [a, "a"], [b, "b"]]) {
    const r = await call(`${worker.url}/cached?q=1`, visitor(uid));
    assert.equal(r.text, `page for cached="${variant}"`, `${uid} got another variant's page`);
    assert.match(r.headers.get("cache-control"), /^private, max-age=300$/, "downstream caches keep it private");
    seen.push(r.headers.get("cleave-cache"));
    // The copy is stored after the answer went out.
    await new Promise((ok) => setTimeout(ok, 300));
  }
  assert.deepEqual(seen, ["miss", "miss", "hit", "hit"]);
  assert.equal(hits.get("/cached?q=1"), 2, "the origin served each variant once");
});

test("pages learn their assignments through a readable cookie and a JSON script", async () => {
  const r = await call(`${worker.url}/page`, visitor("u-1"));
  const variant = main.received.at(-1).headers["cleave-assignments"].match(/"(\w)"/)[1];
  const script = r.text.match(/<script type="application\/json" id="cleave-assignments">(.*?)<\/script>/);
  assert.ok(script, r.text);
  assert.deepEqual(JSON.parse(script[1]), { snapshot: "1", assignments: { cached: variant } });
  assert.ok(r.text.indexOf(script[0]) < r.text.indexOf("</head>"), "inside <head>");
  const cookie = r.headers.get("set-cookie");
  assert.match(cookie, new RegExp(`^cleave_assignments=cached=${variant}; Path=/`));
  assert.doesNotMatch(cookie, /HttpOnly/);
  // A route without experiments is passed through as the origin sent it.
  const plain = await call(`${worker.url}/about`, visitor("u-1"));
  assert.equal(plain.headers.get("set-cookie"), null);
  assert.equal(plain.headers.get("cleave-cache"), null);
});
