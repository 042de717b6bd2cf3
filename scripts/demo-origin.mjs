// Demo origin for the local stack: answers every request with what cleave told it — the unit,
// snapshot version and assignments — and whether the signature checks out. It also shows how
// an origin declares what its page used: `?show=a,b` renders only those experiments, and the
// `cleave-exposed` response header tells the edge so (the edge records exposures for those
// alone and removes the header); without `show`, the page renders every assignment.
// Usage: node scripts/demo-origin.mjs [port]   (CLEAVE_HEADER_KEY to verify signatures: the
// hex key `cleave-admin header-key` prints. An origin never holds CLEAVE_SIGNING_KEY itself,
// which would let it mint QA force tokens.)
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8788);
const key = process.env.CLEAVE_HEADER_KEY ? Buffer.from(process.env.CLEAVE_HEADER_KEY, "hex") : undefined;

function verify(h) {
  if (!key || !h["cleave-signature"]) return null;
  const signed = `${h["cleave-unit"] ?? ""}\n${h["cleave-snapshot"] ?? ""}\n${h["cleave-assignments"] ?? ""}`;
  const want = createHmac("sha256", key).update(signed).digest();
  const got = Buffer.from(h["cleave-signature"], "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Experiment keys of a `cleave-assignments` dictionary (`a="x", b="y"`). */
function experiments(header) {
  return (header ?? "").split(",").map((m) => m.split("=")[0].trim()).filter(Boolean);
}

createServer((req, res) => {
  const h = req.headers;
  const show = new URL(req.url, "http://origin").searchParams.get("show");
  const assigned = experiments(h["cleave-assignments"]);
  const rendered = show === null ? assigned : assigned.filter((k) => show.split(",").includes(k));
  const body = {
    origin: "cleave demo origin",
    path: req.url,
    unit: h["cleave-unit"] ?? null,
    snapshot: h["cleave-snapshot"] ?? null,
    assignments: h["cleave-assignments"] ?? null,
    signature_valid: verify(h),
    rendered,
  };
  res.writeHead(200, { "content-type": "application/json", "cleave-exposed": rendered.join(", ") });
  res.end(JSON.stringify(body, null, 2) + "\n");
}).listen(port, "127.0.0.1", () => console.log(`demo origin on http://127.0.0.1:${port}`));
