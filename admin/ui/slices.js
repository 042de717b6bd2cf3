// Results by slice: the same comparisons within each country, device class or browser a unit
// was first exposed from. Exploratory by design — the banner says so, the p-values are
// corrected across every slice — and a split that only goes wrong in one slice is named.
import { get } from "./api.js";
import { clear, h, percent } from "./dom.js";

const DIMENSIONS = { country: "Country", device: "Device", browser: "Browser" };
const fmt = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "—" : Number(x).toPrecision(4));
const pfmt = (p) => (p === null || p === undefined ? "—" : p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

function sliceTable(report) {
  const rows = report.slices.flatMap((slice) => slice.metrics.flatMap((metric) => metric.comparisons.map((c) => {
    const units = (v) => slice.variants.find((a) => a.key === v)?.units ?? 0;
    const mismatch = report.srmMismatches.includes(slice.value);
    return h("tr", { dataset: { slice: slice.value, metric: metric.key, variant: c.variant }, class: mismatch ? "srm-mismatch" : undefined },
      h("td", { class: "key" }, slice.value), h("td", { class: "key" }, metric.key), h("td", { class: "key" }, c.variant),
      h("td", { class: "num" }, `${units(report.control)} / ${units(c.variant)}`),
      h("td", { class: "num" }, fmt(c.difference), c.relative !== null && c.relative !== undefined ? ` (${c.relative >= 0 ? "+" : ""}${percent(c.relative)})` : ""),
      h("td", { class: "num" }, `[${fmt(c.ciLow)}, ${fmt(c.ciHigh)}]`),
      h("td", { class: "num" }, pfmt(c.adjustedSequentialPValue)),
      h("td", {}, h("span", { class: `badge verdict-${c.verdict}` }, c.verdict)));
  })));
  const sizes = report.slices.map((s) => `${s.value} ${s.units}`).join(", ");
  return [
    h("p", { class: "muted small", id: "slice-sizes" }, `Units by ${report.dimension}: ${sizes || "none yet"}`,
      report.otherUnits > 0 ? `, ${report.otherUnits} in smaller slices not shown.` : "."),
    rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "list", id: "slice-table" },
      h("thead", {}, h("tr", {}, ["Slice", "Metric", "Variant", `Units (${report.control} / variant)`, "Difference", "CI", "Adjusted sequential p", "Verdict"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)))
      : h("p", { class: "muted" }, "Not enough data in any slice to compare yet."),
  ];
}

/** The "By slice" card; it loads the first dimension at once and the others on demand. */
export function slicesCard(id, phase) {
  const body = h("div", { class: "slices-body" }, h("p", { class: "muted" }, "Loading…"));
  const show = async (dimension) => {
    const query = new URLSearchParams({ dimension, ...(phase ? { phase } : {}) });
    try {
      const report = await get(`/experiments/${id}/slices?${query}`);
      clear(body,
        report.srmMismatches.length > 0 && h("div", { class: "banner danger", role: "alert", id: "slice-srm-warning" },
          h("strong", {}, "Sample ratio mismatch in a slice: "),
          `${report.srmMismatches.join(", ")}. Units there are not split as allocated; look for what treats that ${report.dimension} differently (a cache, a redirect, a script that fails).`),
        ...sliceTable(report));
    } catch (e) {
      clear(body, h("p", { class: "error" }, `Could not load the slices: ${e.message}`));
    }
  };
  show("country");
  return h("section", { class: "card", id: "slices" },
    h("h2", {}, "By slice"),
    h("div", { class: "banner", id: "slices-exploratory" }, h("strong", {}, "Exploratory. "),
      "Every slice is another look, so some will differ by chance: p-values here are corrected across all slices and metrics together (Benjamini-Hochberg). Treat a slice's finding as a lead to test, not a result to ship."),
    h("label", {}, "Slice by ",
      h("select", { id: "slice-dimension", onchange: (ev) => show(ev.target.value) },
        Object.entries(DIMENSIONS).map(([value, text]) => h("option", { value }, text)))),
    body);
}
