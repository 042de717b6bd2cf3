// What a visitor cannot do to other visitors or to the origin, against the compiled worker in
// workerd and real local origins: spoof cleave's headers through `_` spellings, slip hop-by-hop
// headers through, get another visitor's page from the edge cache, fill the isolate's memory
// with a chunked body, learn who published, follow a redirect a browser misreads, or make the
// worker read KV for every made-up environment. WebSocket upgrades work end to end.
import assert from "node:assert/strict";
import { request as httpRequest, createServer } from "node:http";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { call, headerSignature, openKv, readJson, startOrigin, startWorker, waitFor } from "./harness.mjs";

const SIGNING_KEY = "e2e-signing-key";
const TOKEN = "security-admin-token";
let snapshot;

before(async () => {
  snapshot = await readJson("tests/fixtures/assignment-snapshot.json");
});

/** A raw HTTP/1.1 request, so headers fetch refuses to send (Keep-Alive, ...) can be sent. */
function rawRequest(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => ok({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", fail);
    req.end(body);
  });
}

describe("proxy headers", () => {
  let worker, origin;
  before(async () => {
    origin = await startOrigin();
    worker = await startWorker({ vars: { ORIGIN_URL: origin.url, CLEAVE_SIGNING_KEY: SIGNING_KEY }, seed: [snapshot] });
  });
  after(async () => {
    await worker?.stop();
    await origin?.close();
  });

  test("underscore spellings of cleave's headers never reach the origin", async () => {
    const r = await rawRequest(`${worker.url}/spoof`, {
      headers: {
        cookie: "cleave_uid=u-7",
        cleave_assignments: 'split="evil"',
        cleave_unit: "spoof",
        cleave_signature: "forged",
        Cleave_Snapshot: "999",
        "Cleave-Unit": "admin",
      },
    });
    assert.equal(r.status, 200);
    const got = origin.received.at(-1).headers;
    for (const name of Object.keys(got)) {
      const normalised = name.toLowerCase().replaceAll("_", "-");
      if (normalised.startsWith("cleave-")) {
        assert.ok(["cleave-unit", "cleave-snapshot", "cleave-assignments", "cleave-signature"].includes(name), `${name} reached the origin`);
      }
    }
    assert.equal(got.cleave_assignments, undefined);
    assert.equal(got.cleave_unit, undefined);
    assert.equal(got.cleave_signature, undefined);
    assert.equal(got.cleave_snapshot, undefined);
    assert.equal(got["cleave-unit"], "u-7");
    assert.equal(got["cleave-snapshot"], "3");
    assert.equal(got["cleave-signature"], headerSignature(SIGNING_KEY, "u-7", "3", got["cleave-assignments"] ?? ""));
  });

  test("hop-by-hop headers are not forwarded", async () => {
    const r = await rawRequest(`${worker.url}/hop`, {
      headers: {
        cookie: "cleave_uid=u-8",
        connection: "keep-alive",
        "keep-alive": "timeout=5",
        "proxy-connection": "keep-alive",
        "proxy-authorization": "Basic c2VjcmV0",
        te: "trailers",
        "x-end-to-end": "kept",
      },
    });
    assert.equal(r.status, 200);
    const got = origin.received.at(-1).headers;
    for (const name of ["keep-alive", "proxy-connection", "proxy-authorization", "te"]) {
      assert.equal(got[name], undefined, `${name} reached the origin`);
    }
    assert.equal(got["x-end-to-end"], "kept");
  });
});

describe("WebSocket", () => {
  let worker, server, wss, handshakes;
  before(async () => {
    handshakes = [];
    server = createServer((_, res) => res.end("not a websocket"));
    wss = new WebSocketServer({ noServer: true });
    server.on("upgrade", (req, socket, head) => {
      handshakes.push(req.headers);
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (m) => ws.send(`echo:${m}`)));
    });
    await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
    const originUrl = `http://127.0.0.1:${server.address().port}`;
    worker = await startWorker({ vars: { ORIGIN_URL: originUrl, CLEAVE_SIGNING_KEY: SIGNING_KEY }, seed: [snapshot] });
  });
  after(async () => {
    await worker?.stop();
    for (const client of wss?.clients ?? []) client.terminate();
    wss?.close();
    await new Promise((ok) => (server ? server.close(ok) : ok()));
  });

  test("an upgrade reaches the origin as a handshake with assignments, and messages echo both ways", async () => {
    const ws = new WebSocket(`${worker.url.replace("http", "ws")}/socket`, { headers: { cookie: "cleave_uid=u-9", cleave_unit: "spoof" } });
    const replies = [];
    await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error("no echo within 10 s")), 10_000);
      ws.on("open", () => ws.send("ping"));
      ws.on("message", (m) => {
        replies.push(String(m));
        if (replies.length === 1) ws.send("pong");
        else {
          clearTimeout(timer);
          ok();
        }
      });
      ws.on("error", (e) => {
        clearTimeout(timer);
        fail(e);
      });
    });
    ws.close();
    assert.deepEqual(replies, ["echo:ping", "echo:pong"]);
    const got = handshakes.at(-1);
    assert.equal(got.upgrade.toLowerCase(), "websocket");
    assert.equal(got["cleave-unit"], "u-9");
    assert.equal(got.cleave_unit, undefined);
    assert.equal(got["cleave-snapshot"], "3");
  });
});

describe("the edge cache follows shared-cache rules", () => {
  let worker, origin;
  // Whether /turns answers as a page the edge may keep.
  let turnsCacheable = false;
  before(async () => {
    // A page the origin calls public, varying on the cookie and echoing the visitor's session.
    origin = await startOrigin((record, res) => {
      const session = /(?:^|; )session=([^;]*)/.exec(record.headers.cookie ?? "")?.[1] ?? "none";
      const vary = record.url.startsWith("/vary") ? { vary: "Cookie" } : {};
      const keep = !record.url.startsWith("/turns") || turnsCacheable;
      res.writeHead(200, { "content-type": "text/html", "cache-control": keep ? "public, max-age=60" : "no-store", ...vary });
      res.end(`<html><head></head><body>session ${session}</body></html>`);
    });
    worker = await startWorker({ vars: { ORIGIN_URL: origin.url }, seed: [snapshot] });
  });
  after(async () => {
    await worker?.stop();
    await origin?.close();
  });

  const page = async (path, cookie) => {
    const r = await fetch(`${worker.url}${path}`, { headers: { cookie } });
    return { text: await r.text(), cache: r.headers.get("cleave-cache") };
  };
  const hits = (path) => origin.received.filter((r) => r.url === path).length;

  test("a visitor with a session cookie never gets, nor leaves, a copy for others", async () => {
    const a = await page("/account", "cleave_uid=u-1; session=alice");
    const b = await page("/account", "cleave_uid=u-1; session=bob");
    assert.match(a.text, /session alice/);
    assert.match(b.text, /session bob/, "bob was served alice's page");
    assert.equal(b.cache, "bypass");
    assert.equal(hits("/account"), 2);
  });

  test("a response that varies on Cookie is not stored, and the page then skips the lookup", async () => {
    const first = await page("/vary", "cleave_uid=u-1");
    assert.equal(first.cache, "miss");
    const again = await page("/vary", "cleave_uid=u-2");
    assert.equal(again.cache, "pass", "a page found uncacheable goes straight to the origin");
    assert.equal(hits("/vary"), 2);
  });

  test("a page that turns cacheable is stored again on its next request", async () => {
    assert.equal((await page("/turns", "cleave_uid=u-1")).cache, "miss");
    assert.equal((await page("/turns", "cleave_uid=u-1")).cache, "pass");
    turnsCacheable = true;
    // Fetched without a lookup, but storable: stored, and the pass is over.
    assert.equal((await page("/turns", "cleave_uid=u-1")).cache, "pass");
    // The copy is stored after the answer went out.
    await new Promise((ok) => setTimeout(ok, 300));
    const [hit] = await waitFor(async () => (await page("/turns", "cleave_uid=u-1")).cache === "hit", 3000);
    assert.ok(hit, "the page that turned cacheable was never served from the edge cache");
    assert.equal(hits("/turns"), 3);
  });

  test("a public page for visitors with only cleave's cookies is still cached per assignment vector", async () => {
    await page("/public", "cleave_uid=u-1");
    const [hit] = await waitFor(async () => (await page("/public", "cleave_uid=u-1")).cache === "hit", 3000);
    assert.ok(hit, "the shareable page was never served from the edge cache");
    assert.equal(hits("/public"), 1);
  });
});

describe("request bodies", () => {
  let worker;
  before(async () => {
    worker = await startWorker({ vars: { CLEAVE_INGEST_URL: "http://127.0.0.1:9/ingest" }, seed: [snapshot] });
  });
  after(async () => worker?.stop());

  /**
   * Streams up to `mib` MiB as a chunked body (no Content-Length) on a raw connection, and
   * stops the moment the answer's first bytes arrive: returns the status line and how much
   * was sent by then.
   */
  function chunkedPost(path, mib) {
    const { port } = new URL(worker.url);
    return new Promise((ok) => {
      const socket = connect(Number(port), "127.0.0.1");
      let answer = "";
      let sent = 0;
      let over = false;
      const finish = () => {
        if (over) return;
        over = true;
        socket.destroy();
        ok({ status: answer.split("\r\n")[0], sent });
      };
      socket.on("data", (d) => {
        answer += d;
        if (answer.includes("\r\n")) finish();
      });
      socket.on("error", finish);
      socket.on("close", finish);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
      const pump = () => {
        while (!over && !answer && sent < mib * 1024 * 1024) {
          sent += chunk.length;
          if (!socket.write(frame)) return socket.once("drain", pump);
        }
      };
      pump();
    });
  }

  test("an oversized chunked body is refused with 413 before it is read, never held in wasm memory", async () => {
    const memory = async () => (await call(`${worker.url}/_cleave/health`)).json.data.wasm_memory_bytes;
    const start = await memory();
    for (const path of ["/_cleave/v1/events", "/_cleave/v1/decide"]) {
      // The worker answers and closes while bytes are still on their way; the client's
      // kernel may then take the reset before this process read the answer. That race is
      // the client's, not the worker's: try again, up to three times.
      let r;
      for (let attempt = 0; attempt < 3 && !r?.status; attempt++) r = await chunkedPost(path, 20);
      assert.match(r.status, /^HTTP\/1\.1 413/, `${path}: ${JSON.stringify(r)}`);
      assert.ok(r.sent < 20 * 1024 * 1024, `${path}: the whole body was sent before the answer`);
    }
    const grown = (await memory()) - start;
    assert.ok(grown < 2 * 1024 * 1024, `wasm memory grew by ${grown} bytes`);
    const declared = await call(`${worker.url}/_cleave/v1/decide`, { method: "POST", body: "x".repeat(70_000) });
    assert.equal(declared.status, 413);
    assert.match(declared.json.meta.error, /request body is longer than \d+ bytes/);
    const small = await call(`${worker.url}/_cleave/v1/decide`, { method: "POST", body: JSON.stringify({ units: { user: "u-1" } }) });
    assert.equal(small.status, 200, small.text);
  });
});

describe("API hardening", () => {
  let worker, kv;
  before(async () => {
    const ingest = await startOrigin((_, res) => res.end("{}"));
    worker = await startWorker({
      vars: { CLEAVE_ADMIN_TOKEN: TOKEN, CLEAVE_INGEST_URL: `${ingest.url}/ingest`, CLEAVE_REFRESH_MS: 200 },
      seed: [snapshot],
    });
    worker.ingest = ingest;
    kv = await openKv(worker);
  });
  after(async () => {
    await kv?.dispose();
    await worker?.stop();
    await worker?.ingest?.close();
  });

  test("public answers carry the version and time, never who published", async () => {
    const decide = await call(`${worker.url}/_cleave/v1/decide?id.user=u-1`);
    assert.equal(decide.json.meta.snapshot.version, 3);
    assert.equal(typeof decide.json.meta.snapshot.published_at, "string");
    assert.equal(decide.json.meta.snapshot.published_by, undefined);
    assert.doesNotMatch(decide.text, /fixtures@cleave\.dev/);
    const health = await call(`${worker.url}/_cleave/health`);
    assert.doesNotMatch(health.text, /fixtures@cleave\.dev/);
    const introspection = await call(`${worker.url}/_cleave/v1/snapshot`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(introspection.json.meta.snapshot.published_by, "fixtures@cleave.dev");
  });

  test("made-up environments cost a bounded number of KV reads per isolate", async () => {
    const reasons = [];
    for (let i = 0; i < 20; i++) {
      const r = await call(`${worker.url}/_cleave/health?env=random-${i}-${Date.now()}`);
      assert.equal(r.status, 503);
      reasons.push(r.json.data.reason);
    }
    const limited = reasons.filter((r) => /too many lookups of environments/.test(r ?? "")).length;
    assert.ok(limited >= 10, `only ${limited} of 20 lookups were held back: ${reasons.join(" | ")}`);
    const own = await call(`${worker.url}/_cleave/health`);
    assert.equal(own.status, 200, "the worker's own environment is never held back");
  });

  test("a snapshot carrying a redirect a browser reads as another host is refused", async () => {
    const evil = structuredClone(snapshot);
    evil.version = 4;
    const exp = evil.experiments.find((e) => e.key === "split");
    exp.routes = { include: ["/landing"] };
    exp.variants[1].route = { redirect: "/\\evil.example" };
    await kv.publish(evil);
    const [state] = await waitFor(async () => {
      const h = (await call(`${worker.url}/_cleave/health`)).json.data;
      return h.stale && /must be an http\(s\) URL or a path/.test(h.reason ?? "") ? h : undefined;
    }, 5000);
    assert.ok(state, "the worker took a snapshot with a backslash redirect");
    assert.equal(state.version, 3, "the last good version keeps serving");
  });
});
