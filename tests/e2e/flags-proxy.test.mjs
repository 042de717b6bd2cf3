// Flags in proxy mode (docs/contracts.md §5): the origin gets the visitor's flag values in
// `cleave-flags` (an RFC 8941 dictionary) signed by `cleave-flags-signature`, verified here
// from the documented format with Node's own HMAC; a client cannot send its own; a page of an
// environment with flags is private to its visitor. A real local origin records what it got.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { call, derivedKey, startOrigin, startWorker } from "./harness.mjs";

const SECRET = "flags-proxy-signing-key";
let worker, origin;

const boolean = (key, fallthrough, rules = []) => ({
  key, type: "boolean", off_variant: "off", fallthrough, rules,
  variants: [{ key: "on", value: true }, { key: "off", value: false }],
});

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    vars: { CLEAVE_ENV: "shop", ORIGIN_URL: origin.url, CLEAVE_SIGNING_KEY: SECRET, CLEAVE_EDGE_CACHE: "off" },
    seed: [{
      schema: 1, environment: "shop", version: 3, published_at: "2026-12-02T10:00:00Z", published_by: "e2e",
      experiments: [],
      flags: [
        boolean("new-nav", { variant: "off" }, [{ targeting: [{ conditions: [{ attribute: "plan", operator: "eq", value: "staff" }] }], serve: { variant: "on" } }]),
        boolean("beta", { variant: "on" }),
        { key: "theme", type: "string", off_variant: "blue", fallthrough: { variant: "blue" }, variants: [{ key: "blue", value: "blue" }] },
        { key: "limit", type: "number", off_variant: "n", fallthrough: { variant: "n" }, variants: [{ key: "n", value: 2.5 }] },
        { key: "layout", type: "json", off_variant: "g", fallthrough: { variant: "g" }, variants: [{ key: "g", value: { cols: 3 } }] },
      ],
    }],
  });
});

after(async () => {
  await worker?.stop();
  await origin?.close();
});

test("the origin gets signed flag values and no client can send its own", async () => {
  const r = await call(`${worker.url}/products`, {
    headers: { cookie: "cleave_uid=visitor-1", "cleave-flags": "new-nav, beta", "cleave_flags_signature": "forged" },
  });
  assert.equal(r.status, 200, r.text);
  const got = origin.received.at(-1).headers;
  assert.equal(got["cleave-flags"], 'new-nav=?0, beta, theme="blue", limit=2.5', "json flags do not travel");
  const expected = createHmac("sha256", derivedKey(SECRET, "headers"))
    .update(`flags\nvisitor-1\n3\n${got["cleave-flags"]}`)
    .digest("hex");
  assert.equal(got["cleave-flags-signature"], expected);
  assert.equal(got["cleave-unit"], "visitor-1");
  assert.equal(got["cleave_flags_signature"], undefined);
  assert.match(r.headers.get("cache-control"), /private/, "the page depends on the visitor's flags");
});
