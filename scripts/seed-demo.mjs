// Seeds the demo environment through the admin REST API, the way an operator would, and
// starts its experiments (each start publishes). Skips everything if `demo` already exists.
// Usage: node scripts/seed-demo.mjs [admin-url]   (token from CLEAVE_ADMIN_API_TOKEN)
const admin = process.argv[2] ?? "http://127.0.0.1:3001";
const token = process.env.CLEAVE_ADMIN_API_TOKEN;
const headers = { "content-type": "application/json", authorization: `Bearer ${token}`, "x-cleave-actor": "demo-seed" };

async function api(method, path, body) {
  const res = await fetch(`${admin}${path}`, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const EXPERIMENTS = [
  {
    key: "checkout-button-color", name: "Checkout button color",
    description: "Does a green checkout button convert better in North America?",
    targetingRules: [{ conditions: [{ attribute: "country", operator: "in", value: ["US", "CA"] }] }],
    variants: [["control", { color: "#0066cc" }, [0, 4999]], ["treatment", { color: "#00cc66" }, [5000, 9999]]],
  },
  {
    key: "eu-shipping-notice", name: "EU shipping notice",
    targetingRules: [{ conditions: [{ attribute: "cf.country", operator: "in", value: ["DE", "FR", "NL", "ES", "IT"] }] }],
    variants: [["control", null, [0, 4999]], ["notice", { text: "Free returns across the EU" }, [5000, 9999]]],
  },
  {
    key: "hero-copy", name: "Homepage hero copy", layer: { key: "homepage", ranges: [[0, 4999]] },
    variants: [["control", { headline: "Ship faster" }, [0, 4999]], ["benefit", { headline: "Your customers, delighted" }, [5000, 9999]]],
  },
  {
    key: "hero-image", name: "Homepage hero image", layer: { key: "homepage", ranges: [[5000, 9999]] },
    variants: [["photo", { src: "/img/team.jpg" }, [0, 4999]], ["illustration", { src: "/img/drawing.svg" }, [5000, 9999]]],
  },
  {
    key: "free-shipping-banner", name: "Free shipping banner", traffic: 2000,
    variants: [["control", null, [0, 4999]], ["banner", { threshold: 50 }, [5000, 9999]]],
  },
];

const existing = (await api("GET", "/environments")).find((e) => e.name === "demo");
if (existing) {
  console.error(`[seed] environment demo exists (v${existing.currentVersion}); leaving it as it is`);
  process.exit(0);
}
const env = await api("POST", "/environments", { name: "demo" });
for (const spec of EXPERIMENTS) {
  const exp = await api("POST", "/experiments", {
    key: spec.key, name: spec.name, description: spec.description ?? "", environmentId: env.id,
  });
  const patch = {};
  if (spec.targetingRules) patch.targetingRules = spec.targetingRules;
  if (spec.layer) patch.layer = spec.layer;
  if (spec.traffic !== undefined) patch.traffic = spec.traffic;
  if (Object.keys(patch).length > 0) await api("PATCH", `/experiments/${exp.id}`, patch);
  const allocations = [];
  for (const [key, payload, [rangeStart, rangeEnd]] of spec.variants) {
    const v = await api("POST", `/experiments/${exp.id}/variants`, { key, name: key, payload });
    allocations.push({ variantId: v.id, rangeStart, rangeEnd });
  }
  await api("PUT", `/experiments/${exp.id}/allocations`, { allocations });
}
// Start them together: each start publishes, the last one carries all five.
for (const exp of await api("GET", `/experiments?environmentId=${env.id}`)) {
  const started = await api("PATCH", `/experiments/${exp.id}/status`, { status: "RUNNING" });
  console.error(`[seed] started ${exp.key}: demo v${started.published.version}`);
}
