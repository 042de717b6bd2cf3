// Identity sources (docs/contracts.md §8): an environment names where a request carries the id
// of a unit type other than `user` — a header, a cookie, or a JWT claim whose signature the
// worker checks (HS256 with a worker secret, RS256 and ES256 through WebCrypto). Account-unit
// experiments then enrol on proxied pages, the origin gets every unit signed, a variant given
// before login survives it, and only verified ids bind exposures and events. The compiled
// worker in workerd, a real local origin and a local ingest that records what it is sent;
// every token is made here with node:crypto, independently of cleave's code.
import assert from "node:assert/strict";
import { createHash, createHmac, generateKeyPairSync, sign } from "node:crypto";
import { after, before, test } from "node:test";
import { call, derivedKey, startIngest, startOrigin, startWorker, waitFor } from "./harness.mjs";

const SIGNING = "identity-signing-key";
const HS_SECRET = "the site's session secret";
const ISSUER = "https://login.acme.test";
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const otherEc = generateKeyPairSync("ec", { namedCurve: "P-256" });
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });

const b64 = (x) => Buffer.from(x).toString("base64url");
const nowS = () => Math.floor(Date.now() / 1000);

/** A JWT signed as `alg` says, with `claims` (an `exp` an hour out unless given). */
function jwt(alg, claims, { key, kid } = {}) {
  const header = b64(JSON.stringify({ alg, typ: "JWT", ...(kid ? { kid } : {}) }));
  const body = b64(JSON.stringify({ exp: nowS() + 3600, ...claims }));
  const input = `${header}.${body}`;
  let signature;
  if (alg === "HS256") signature = createHmac("sha256", key ?? HS_SECRET).update(input).digest();
  else if (alg === "ES256") signature = sign("sha256", Buffer.from(input), { key: key ?? ec.privateKey, dsaEncoding: "ieee-p1363" });
  else if (alg === "RS256") signature = sign("sha256", Buffer.from(input), key ?? rsa.privateKey);
  else signature = Buffer.alloc(0);
  return `${input}.${b64(signature)}`;
}

const session = (sub, extra = {}, opts) => jwt("HS256", { sub, iss: ISSUER, ...extra }, opts);

const snapshot = {
  schema: 1, environment: "acme", version: 1, published_at: "2026-12-03T10:00:00Z", published_by: "e2e",
  identity: [
    { unit: "account", source: "cookie", name: "session", jwt: { algorithm: "HS256", secret: "CLEAVE_JWT_SESSION", issuer: ISSUER } },
    { unit: "account", source: "header", name: "authorization", jwt: { algorithm: "ES256", keys: [{ ...ec.publicKey.export({ format: "jwk" }), kid: "ec1" }] } },
    { unit: "org", source: "header", name: "x-org-token", jwt: { algorithm: "RS256", claim: "org_id", keys: [rsa.publicKey.export({ format: "jwk" })] } },
    { unit: "team", source: "header", name: "x-team" },
  ],
  experiments: [
    {
      id: "e-pricing", key: "pricing", status: "running", unit: "account", fallback_unit: "user",
      variants: [{ id: "p1", key: "control", ranges: [[0, 4999]] }, { id: "p2", key: "treatment", ranges: [[5000, 9999]] }],
    },
    { id: "e-billing", key: "billing", status: "running", unit: "account", variants: [{ id: "b1", key: "new", ranges: [[0, 9999]] }] },
    { id: "e-org", key: "org-banner", status: "running", unit: "org", variants: [{ id: "o1", key: "on", ranges: [[0, 9999]] }] },
    { id: "e-team", key: "team-tools", status: "running", unit: "team", variants: [{ id: "t1", key: "on", ranges: [[0, 9999]] }] },
  ],
};

/** docs/contracts.md §2, written independently: first eight digest bytes, big-endian, mod 10 000. */
const bucket = (seed, unit) => Number(createHash("sha256").update(`${seed}:${unit}`).digest().readBigUInt64BE(0) % 10000n);
const pricingOf = (unit) => (bucket("pricing", unit) < 5000 ? "control" : "treatment");

let worker, origin, ingest;

before(async () => {
  origin = await startOrigin();
  ingest = await startIngest();
  worker = await startWorker({
    vars: {
      CLEAVE_ENV: "acme", ORIGIN_URL: origin.url, CLEAVE_SIGNING_KEY: SIGNING, CLEAVE_EDGE_CACHE: "off",
      CLEAVE_JWT_SESSION: HS_SECRET, CLEAVE_INGEST_URL: `${ingest.url}/ingest`, CLEAVE_INGEST_TOKEN: "i",
      CLEAVE_INGEST_RETRY_SECONDS: 1,
    },
    queues: {
      producers: { CLEAVE_EVENTS: "cleave-events" },
      consumers: { "cleave-events": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 5 } },
    },
    seed: [snapshot],
  });
});

after(async () => {
  await worker?.stop();
  await origin?.close();
  await ingest?.close();
});

/** A proxied page: what the origin received and the cookies the visitor was given. */
async function page(headers = {}) {
  const r = await call(`${worker.url}/account`, { headers });
  assert.equal(r.status, 200, r.text);
  const got = origin.received.at(-1).headers;
  const cookies = Object.fromEntries(r.headers.getSetCookie().map((c) => c.split(";")[0].split(/=(.*)/s).slice(0, 2)));
  return { got, cookies };
}

const assignments = (got) => Object.fromEntries((got["cleave-assignments"] ?? "").split(", ").filter(Boolean)
  .map((m) => m.split("=")).map(([k, v]) => [k, JSON.parse(v)]));

const unitsSignature = (unit, version, units) =>
  createHmac("sha256", derivedKey(SIGNING, "headers")).update(`units\n${unit}\n${version}\n${units}`).digest("hex");

test("a verified session cookie enrols the account experiment and the origin gets every unit, signed", async () => {
  const { got } = await page({ cookie: `cleave_uid=visitor-1; session=${session("acct-1")}` });
  assert.equal(assignments(got).billing, "new", got["cleave-assignments"]);
  assert.equal(got["cleave-units"], 'account="acct-1";verified, user="visitor-1"');
  assert.equal(got["cleave-units-signature"], unitsSignature("visitor-1", "1", got["cleave-units"]));
});

test("a forged, altered, expired, unsigned or foreign token gives no account", async () => {
  const genuine = session("acct-1");
  const [input] = genuine.split(/\.(?=[^.]*$)/);
  const bad = {
    "another key": session("acct-1", {}, { key: "not the site's secret" }),
    "another subject": `${session("acct-2").split(/\.(?=[^.]*$)/)[0]}.${genuine.split(".")[2]}`,
    expired: session("acct-1", { exp: nowS() - 3600 }),
    "alg none": `${b64(JSON.stringify({ alg: "none" }))}.${input.split(".")[1]}.`,
    "another issuer": session("acct-1", { iss: "https://evil.test" }),
    "no expiry": jwt("HS256", { sub: "acct-1", iss: ISSUER, exp: undefined }),
  };
  for (const [why, token] of Object.entries(bad)) {
    const { got } = await page({ cookie: `cleave_uid=visitor-2; session=${token}`, "x-org-token": token });
    assert.equal(assignments(got).billing, undefined, `${why}: ${got["cleave-assignments"]}`);
    assert.equal(got["cleave-units"], 'user="visitor-2"', why);
  }
  // A client's own `cleave-units` never reaches the origin.
  const { got } = await page({ cookie: "cleave_uid=visitor-2", "cleave-units": 'account="acct-9";verified' });
  assert.equal(got["cleave-units"], 'user="visitor-2"');
});

test("RS256 and ES256 tokens verify through WebCrypto; a token of another key does not", async () => {
  const es = jwt("ES256", { sub: "acct-3" }, { kid: "ec1" });
  const rs = jwt("RS256", { sub: "someone", org_id: 77 });
  const { got } = await page({ cookie: "cleave_uid=visitor-3", authorization: `Bearer ${es}`, "x-org-token": rs });
  assert.equal(got["cleave-units"], 'account="acct-3";verified, org="77";verified, user="visitor-3"');
  assert.deepEqual([assignments(got).billing, assignments(got)["org-banner"]], ["new", "on"]);
  // The verdict is kept per isolate: the same token again answers the same.
  assert.equal((await page({ cookie: "cleave_uid=visitor-3", authorization: `Bearer ${es}` })).got["cleave-units"],
    'account="acct-3";verified, user="visitor-3"');

  const forged = jwt("ES256", { sub: "acct-3" }, { kid: "ec1", key: otherEc.privateKey });
  const wrongRsa = jwt("RS256", { org_id: 77 }, { key: generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey });
  const refused = await page({ cookie: "cleave_uid=visitor-3", authorization: `Bearer ${forged}`, "x-org-token": wrongRsa });
  assert.equal(refused.got["cleave-units"], 'user="visitor-3"');
  assert.equal(assignments(refused.got).billing, undefined);
});

test("a visitor keeps the variant they had before logging in", async () => {
  const first = await page();
  const uid = first.cookies.cleave_uid;
  const sticky = first.cookies.cleave_sticky;
  assert.ok(uid && sticky, `a new visitor gets an id and a sticky record: ${JSON.stringify(first.cookies)}`);
  const before = assignments(first.got).pricing;
  assert.equal(before, pricingOf(uid), "drawn on the fallback unit, the cookie id");
  // An account whose own draw differs, so keeping the variant is the record's doing.
  const account = Array.from({ length: 200 }, (_, n) => `acct-login-${n}`).find((a) => pricingOf(a) !== before);
  const login = await page({ cookie: `cleave_uid=${uid}; cleave_sticky=${sticky}; session=${session(account)}` });
  assert.equal(assignments(login.got).pricing, before, "the variant survives login");
  assert.match(login.got["cleave-units"], new RegExp(`account="${account}";verified`));
  // Without the record the account draws on itself.
  const elsewhere = await page({ cookie: `cleave_uid=${uid}; session=${session(account)}` });
  assert.equal(assignments(elsewhere.got).pricing, pricingOf(account));
});

test("an unverified header assigns but binds nothing; a verified id records exposures and events", async () => {
  const { got } = await page({ cookie: `cleave_uid=visitor-5; session=${session("acct-5")}`, "x-team": "team-7" });
  assert.equal(assignments(got)["team-tools"], "on");
  assert.match(got["cleave-units"], /team="team-7"(,|$)/, "no `verified` on a header a client sets");
  const exposed = () => ingest.received.flatMap((r) => JSON.parse(r.body).exposures ?? []);
  const [arrived] = await waitFor(() => exposed().some((e) => e.unit === "acct-5"), 20_000);
  assert.ok(arrived, `the verified account's exposure never arrived\n${worker.output().slice(-2000)}`);
  await new Promise((r) => setTimeout(r, 1500));
  const mine = exposed().filter((e) => ["acct-5", "visitor-5", "team-7"].includes(e.unit));
  assert.deepEqual(mine.map((e) => `${e.experiment}:${e.unit_type}`).sort(), ["billing:account", "pricing:account"].sort(),
    "the team-unit exposure is not recorded: a client chose that id");

  // The decide API fills the unit type from the request and binds it the same way.
  const decided = await call(`${worker.url}/_cleave/v1/decide?experiments=billing`, {
    headers: { cookie: `session=${session("acct-6")}` },
  });
  assert.equal(decided.status, 200, decided.text);
  assert.equal(decided.json.data.units.account, "acct-6");
  assert.equal(decided.json.data.assignments.billing.variant, "new");
  const event = (cookie, unit) => call(`${worker.url}/_cleave/v1/events`, {
    method: "POST", headers: { "content-type": "application/json", cookie },
    body: JSON.stringify({ events: [{ event_id: `${unit}-buy`, unit, metric: "purchase" }] }),
  });
  assert.equal((await event(`session=${session("acct-6")}`, "acct-6")).status, 202);
  const forged = await event(`session=${session("acct-6", {}, { key: "guess" })}`, "acct-6");
  assert.equal(forged.status, 403, forged.text);
  assert.equal((await event("x=1", "team-7")).status, 403, "an unverified id is not the caller's");
});
