// Demo origin for the local stack: answers every request with what cleave told it — the unit,
// snapshot version and assignments — and whether the signature checks out.
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

createServer((req, res) => {
  const h = req.headers;
  const body = {
    origin: "cleave demo origin",
    path: req.url,
    unit: h["cleave-unit"] ?? null,
    snapshot: h["cleave-snapshot"] ?? null,
    assignments: h["cleave-assignments"] ?? null,
    signature_valid: verify(h),
  };
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(body, null, 2) + "\n");
}).listen(port, "127.0.0.1", () => console.log(`demo origin on http://127.0.0.1:${port}`));
