// Translates a cleave snapshot into GrowthBook features with the same experiments: variations
// and weights from the bucket ranges, coverage from traffic, conditions from targeting, and
// layers as namespaces. Usage: node translate.mjs snapshot.json > features.json
import { readFileSync } from "node:fs";

const snapshot = JSON.parse(readFileSync(process.argv[2], "utf8"));
const ops = { in: "$in", neq: "$ne", eq: "$eq", not_in: "$nin" };
const features = {};
for (const e of snapshot.experiments) {
  const condition = {};
  for (const c of e.targeting?.[0]?.conditions ?? []) condition[c.attribute] = { [ops[c.operator]]: c.value };
  const rule = {
    key: e.key,
    variations: e.variants.map((v) => v.payload),
    weights: e.variants.map((v) => v.ranges.reduce((w, [s, t]) => w + (t - s + 1), 0) / 10000),
    meta: e.variants.map((v) => ({ key: v.key })),
    coverage: (e.traffic ?? 10000) / 10000,
    hashAttribute: "id",
    hashVersion: 2,
  };
  if (Object.keys(condition).length > 0) rule.condition = condition;
  if (e.layer) {
    const [[start, end]] = e.layer.ranges;
    rule.namespace = [e.layer.key, start / 10000, (end + 1) / 10000];
  }
  features[e.key] = { defaultValue: null, rules: [rule] };
}
process.stdout.write(JSON.stringify(features));
