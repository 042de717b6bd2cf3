// Results over time: one metric's cumulative difference from control at the end of each day,
// with the always-valid confidence sequence as a band (the interval that stays honest when
// read every day), and the same numbers as a table.
import { get } from "./api.js";
import { clear, h, svg } from "./dom.js";

const COLORS = ["#2563eb", "#d97706", "#7c3aed", "#059669", "#db2777"];
const num = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "—" : Number(x).toPrecision(4));

/** The chart: x is the day, y the difference; bands are clipped to what was observed. */
function chart(timeline) {
  const days = timeline.days;
  const series = [...new Set(days.flatMap((d) => d.comparisons.map((c) => c.variant)))];
  const points = days.flatMap((d, i) => d.comparisons.map((c) => ({ ...c, i })));
  const finite = (x, fallback) => (Number.isFinite(x) ? x : fallback);
  const ds = points.map((p) => p.difference);
  const spread = Math.max(1e-9, ...ds.map(Math.abs));
  // A band with no bound yet (too few units) is drawn to the edge, not to infinity.
  const lo = Math.min(0, ...points.map((p) => finite(p.sequentialCiLow, -4 * spread)));
  const hi = Math.max(0, ...points.map((p) => finite(p.sequentialCiHigh, 4 * spread)));
  const pad = (hi - lo) * 0.08 || 1;
  const [min, max] = [lo - pad, hi + pad];
  const width = 600, left = 56, height = 220, bottom = 24;
  const x = (i) => left + (days.length > 1 ? (i / (days.length - 1)) * (width - left - 12) : (width - left - 12) / 2);
  const y = (v) => 8 + (1 - (finite(v, v > 0 ? max : min) - min) / (max - min)) * (height - bottom - 8);
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "timeline-chart", role: "img",
    "aria-label": `${timeline.metric}: cumulative difference from ${timeline.control} over ${days.length} day(s), with always-valid confidence bands` },
  svg("line", { x1: left, x2: width - 8, y1: y(0), y2: y(0), stroke: "#9ca3af", "stroke-dasharray": "4 3" }),
  svg("text", { x: left - 6, y: y(0) + 4, "text-anchor": "end", class: "axis" }, "0"),
  svg("text", { x: left - 6, y: y(max) + 10, "text-anchor": "end", class: "axis" }, num(max)),
  svg("text", { x: left - 6, y: y(min), "text-anchor": "end", class: "axis" }, num(min)),
  svg("text", { x: x(0), y: height - 6, "text-anchor": days.length > 1 ? "start" : "middle", class: "axis" }, days[0].day),
  days.length > 1 && svg("text", { x: x(days.length - 1), y: height - 6, "text-anchor": "end", class: "axis" }, days[days.length - 1].day),
  series.map((variant, s) => {
    const color = COLORS[s % COLORS.length];
    const mine = points.filter((p) => p.variant === variant);
    const upper = mine.map((p) => `${x(p.i)},${y(p.sequentialCiHigh)}`);
    const lower = mine.map((p) => `${x(p.i)},${y(p.sequentialCiLow)}`).reverse();
    return svg("g", { class: "timeline-series", "data-variant": variant },
      mine.length > 1 && svg("polygon", { points: [...upper, ...lower].join(" "), fill: color, "fill-opacity": 0.15 }),
      mine.length === 1 && svg("line", { x1: x(mine[0].i), x2: x(mine[0].i), y1: y(mine[0].sequentialCiLow), y2: y(mine[0].sequentialCiHigh), stroke: color, "stroke-opacity": 0.35, "stroke-width": 8 }),
      svg("polyline", { points: mine.map((p) => `${x(p.i)},${y(p.difference)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 }),
      mine.map((p) => svg("circle", { cx: x(p.i), cy: y(p.difference), r: 3, fill: color },
        svg("title", {}, `${days[p.i].day} ${variant}: ${num(p.difference)} [${num(p.sequentialCiLow)}, ${num(p.sequentialCiHigh)}]`))));
  }));
}

function table(timeline) {
  return h("details", { class: "timeline-table" }, h("summary", {}, "Day by day"),
    h("div", { class: "table-wrap" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Day", "Variant", "Units", "Difference", "Always-valid interval", "One-look interval", "Sequential p"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, timeline.days.flatMap((d) => d.comparisons.map((c) => {
        const units = d.variants.find((v) => v.variant === c.variant)?.units ?? 0;
        return h("tr", { dataset: { day: d.day, series: c.variant } },
          h("td", {}, d.day), h("td", { class: "key" }, c.variant), h("td", { class: "num" }, units),
          h("td", { class: "num difference" }, num(c.difference)),
          h("td", { class: "num" }, `[${num(c.sequentialCiLow)}, ${num(c.sequentialCiHigh)}]`),
          h("td", { class: "num" }, `[${num(c.ciLow)}, ${num(c.ciHigh)}]`),
          h("td", { class: "num" }, Number(c.sequentialPValue).toFixed(4)));
      }))))));
}

/** The "Over time" card, following the metric picked (the first primary one at first). */
export function timelineCard(id, phase, metrics) {
  const body = h("div", { class: "timeline-body" }, h("p", { class: "muted" }, "Loading…"));
  const show = async (metric) => {
    const query = new URLSearchParams({ metric, ...(phase ? { phase } : {}) });
    try {
      const timeline = await get(`/experiments/${id}/timeline?${query}`);
      clear(body, timeline.days.some((d) => d.comparisons.length) ? chart(timeline)
        : h("p", { class: "muted" }, "Not enough data to compare yet."), table(timeline));
    } catch (e) {
      clear(body, h("p", { class: "error" }, `Could not load the timeline: ${e.message}`));
    }
  };
  const first = metrics.find((m) => m.role === "primary") ?? metrics[0];
  if (first) show(first.key);
  return h("section", { class: "card", id: "timeline" },
    h("h2", {}, "Over time"),
    h("p", { class: "muted small" }, "The cumulative difference from control at the end of each day (UTC). The band is the always-valid confidence sequence: it holds however often you look, so a band clear of 0 is a decision."),
    metrics.length > 1 && h("label", {}, "Metric ",
      h("select", { id: "timeline-metric", onchange: (ev) => show(ev.target.value) },
        metrics.map((m) => h("option", { value: m.key, selected: m === first }, m.key)))),
    first ? body : h("p", { class: "muted" }, "No metrics attached."));
}
