// Results of one experiment: units per variant against the allocation (with the SRM check),
// each metric's difference from control with its confidence interval drawn as a chart, the
// sequential test's verdict, the Bayesian reading, the sample size plan, guardrail breaches,
// the effect over time and the exploratory reading by slice.
import { api, get } from "./api.js";
import { clear, h, percent, statusBadge, svg, toast } from "./dom.js";
import { navigate, session } from "./session.js";
import { slicesCard } from "./slices.js";
import { timelineCard } from "./timeline.js";

const fmt = (x, digits = 4) => (x === null || x === undefined || Number.isNaN(x) ? "—" : Number(x).toPrecision(digits));
const pfmt = (p) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

/** One row per comparison: the interval as a line, the estimate as a dot, zero as a rule. */
function intervalChart(metric) {
  const rows = metric.comparisons;
  const lo = Math.min(0, ...rows.map((c) => c.ciLow));
  const hi = Math.max(0, ...rows.map((c) => c.ciHigh));
  const pad = (hi - lo) * 0.1 || 1;
  const [min, max] = [lo - pad, hi + pad];
  const width = 600, label = 120, rowH = 34, height = rows.length * rowH + 30;
  const x = (v) => label + ((v - min) / (max - min)) * (width - label - 10);
  const color = { better: "#059669", worse: "#dc2626" };
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "ci-chart", role: "img",
    "aria-label": `${metric.key}: difference from control with ${rows.length} confidence intervals` },
  svg("line", { x1: x(0), x2: x(0), y1: 0, y2: height - 20, stroke: "#9ca3af", "stroke-dasharray": "4 3" }),
  svg("text", { x: x(0), y: height - 6, "text-anchor": "middle", class: "axis" }, "0"),
  // End labels only where they do not run into the zero label.
  x(0) - x(min) > 48 && svg("text", { x: x(min) + 2, y: height - 6, class: "axis" }, fmt(min, 2)),
  x(max) - x(0) > 48 && svg("text", { x: x(max), y: height - 6, "text-anchor": "end", class: "axis" }, fmt(max, 2)),
  rows.map((c, i) => {
    const y = i * rowH + 18;
    const stroke = color[c.verdict] ?? "#6b7280";
    return svg("g", { class: `ci-row verdict-${c.verdict}` },
      svg("text", { x: 4, y: y + 4, class: "label" }, c.variant),
      svg("line", { x1: x(c.ciLow), x2: x(c.ciHigh), y1: y, y2: y, stroke, "stroke-width": 3 }),
      svg("line", { x1: x(c.ciLow), x2: x(c.ciLow), y1: y - 6, y2: y + 6, stroke, "stroke-width": 2 }),
      svg("line", { x1: x(c.ciHigh), x2: x(c.ciHigh), y1: y - 6, y2: y + 6, stroke, "stroke-width": 2 }),
      svg("circle", { cx: x(c.difference), cy: y, r: 5, fill: stroke }),
      svg("title", {}, `${c.variant}: ${fmt(c.difference)} [${fmt(c.ciLow)}, ${fmt(c.ciHigh)}]`));
  }));
}

/** One metric's card: the interval chart, the table of comparisons and the CUPED reading. */
export function metricSection(metric, control) {
  const means = new Map(metric.variants.map((v) => [v.variant, v]));
  return h("section", { class: "card metric", dataset: { metric: metric.key } },
    h("h3", {}, h("span", { class: "key" }, metric.key), " ", h("span", { class: "badge" }, metric.role),
      h("span", { class: "muted small" }, ` ${metric.kind}, ${metric.direction === "increase" ? "higher is better" : "lower is better"}`)),
    metric.comparisons.length ? intervalChart(metric) : h("p", { class: "muted" }, "Not enough data to compare yet."),
    h("div", { class: "table-wrap" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Variant", "Units", metric.kind === "conversion" ? "Rate" : "Mean", "Difference", "CI", "p", "Adjusted p", "Sequential p", "Chance to beat control", "Verdict"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {},
        h("tr", {}, h("td", { class: "key" }, control, " (control)"), h("td", { class: "num" }, means.get(control)?.units ?? 0),
          h("td", { class: "num" }, fmt(means.get(control)?.mean)), h("td", { colspan: 7 }, "")),
        metric.comparisons.map((c) => h("tr", { dataset: { variant: c.variant } },
          h("td", { class: "key" }, c.variant), h("td", { class: "num" }, means.get(c.variant)?.units ?? 0),
          h("td", { class: "num" }, fmt(means.get(c.variant)?.mean)),
          h("td", { class: "num" }, fmt(c.difference), c.relative !== null && c.relative !== undefined ? ` (${c.relative >= 0 ? "+" : ""}${percent(c.relative)})` : ""),
          h("td", { class: "num" }, `[${fmt(c.ciLow)}, ${fmt(c.ciHigh)}]`),
          h("td", { class: "num" }, pfmt(c.pValue)), h("td", { class: "num" }, pfmt(c.adjustedPValue)),
          h("td", { class: "num" }, pfmt(c.adjustedSequentialPValue)),
          h("td", { class: "num chance", title: c.bayesian ? `lift ${percent(c.bayesian.lift)} [${percent(c.bayesian.liftCiLow)}, ${percent(c.bayesian.liftCiHigh)}], expected loss ${percent(c.bayesian.expectedLoss, 2)}` : undefined },
            c.bayesian ? percent(c.bayesian.chanceToBeatControl, 1) : "—"),
          h("td", {}, h("span", { class: `badge verdict-${c.verdict}` }, c.verdict))))))),
    metric.cuped && h("div", { class: "cuped" },
      h("p", { class: "muted small" }, `CUPED, with each unit's ${metric.key} over the ${metric.cuped.preWindowDays} days before its first exposure: `,
        `variance ${percent(-metric.cuped.varianceReduction, 0)} (θ = ${fmt(metric.cuped.theta)}).`),
      h("ul", { class: "cuped-comparisons" }, metric.cuped.comparisons.map((c) => h("li", { dataset: { variant: c.variant } },
        h("span", { class: "key" }, c.variant), `: adjusted ${fmt(c.difference)} [${fmt(c.ciLow)}, ${fmt(c.ciHigh)}], p ${pfmt(c.pValue)}, sequential p ${pfmt(c.sequentialPValue)}`)))));
}

/** Which reading sets the verdicts; editors change it here (it publishes nothing). */
function decisionPicker(id, decision) {
  const words = { sequential: "the sequential test", bayesian: "the Bayesian chance to beat control" };
  return h("label", { class: "decision-picker" }, "Verdicts follow ",
    h("select", { id: "results-decision", disabled: !session.canEdit, title: session.canEdit ? undefined : "Needs an editor token",
      onchange: async (ev) => {
        try {
          await api("PUT", `/experiments/${id}/decision`, { decision: ev.target.value });
          await navigate(location.hash);
          toast(`Verdicts now follow ${words[ev.target.value]}.`);
        } catch (e) {
          toast(e.message, "error");
        }
      } },
    Object.entries(words).map(([value, text]) => h("option", { value, selected: value === decision }, text))),
    " (guardrails always use the sequential test).");
}

/** How each unit's first exposure was learned, in the words the results page uses. */
const SOURCES = { api: "decide API", confirmed: "confirmed", proxy_declared: "page declared", proxy_implicit: "page (implicit)", unknown: "unrecorded" };
const REASONS = { forced: "forced", allow_listed: "allow-listed", bot: "crawlers" };

/** `3 decide API, 2 confirmed`, or a dash when there is nothing. */
function breakdown(counts, words) {
  const parts = Object.entries(counts ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${words[k] ?? k}`);
  return parts.length ? parts.join(", ") : "–";
}

export async function renderResults(view, id) {
  const phase = new URLSearchParams(location.hash.split("?")[1] ?? "").get("phase");
  const [experiment, results, phases] = await Promise.all([get(`/experiments/${id}`),
    get(`/experiments/${id}/results${phase ? `?phase=${encodeURIComponent(phase)}` : ""}`), get(`/experiments/${id}/phases`)]);
  // Each phase has results of its own; the current one unless the URL names another.
  const phasePicker = phases.length > 1 && h("label", { class: "phase-picker" }, "Phase ",
    h("select", { id: "results-phase", onchange: (ev) => { location.hash = `#/experiments/${id}/results?phase=${ev.target.value}`; } },
      phases.map((p) => h("option", { value: p.number, selected: p.salt === results.salt }, `${p.number} (${p.salt})`))));
  const excluded = Object.entries(results.excludedUnits).filter(([, n]) => n > 0);
  const decided = results.metrics.flatMap((m) => m.comparisons).filter((c) => c.sequentialSignificant).length;
  clear(view,
    h("p", {}, h("a", { href: `#/experiments/${id}` }, `← ${experiment.key}`)),
    h("h1", {}, "Results: ", h("span", { class: "key" }, experiment.key), " ", statusBadge(results.status)),
    phasePicker,
    decisionPicker(id, results.decision),
    h("p", { class: "muted" }, `Phase (salt) ${results.salt}; control ${results.control}; α = ${results.alpha}; ${results.correction} correction across primary and secondary metrics.`),
    results.srm?.mismatch && h("div", { class: "banner danger", role: "alert", id: "srm-warning" },
      h("strong", {}, "Sample ratio mismatch. "),
      `Units are not split as allocated (sequential p = ${pfmt(results.srm.sequentialPValue)}; one-look χ² = ${fmt(results.srm.chiSquare)}, p = ${pfmt(results.srm.pValue)}). `,
      "Assignment or exposure logging is losing units for some variant; no result here can be trusted until that is found."),
    results.guardrailBreaches.length > 0 && h("div", { class: "banner danger", role: "alert", id: "guardrail-warning" },
      h("strong", {}, "Guardrail breached. "),
      results.guardrailBreaches.map((b) => `${b.metric} is worse in ${b.variant} (sequential p = ${pfmt(b.sequentialPValue)}). `)),
    h("div", { class: "banner", id: "sequential-status" },
      h("strong", {}, "Sequential test: "),
      decided > 0 ? `${decided} comparison(s) reached a decision; it stays valid however often you look.`
        : "no decision yet. Keep the experiment running; looking early does not inflate false positives."),
    h("section", { class: "card" }, h("h2", {}, "Units"),
      h("div", { class: "table-wrap" }, h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Variant", "Units", "Exposures", "Expected share", "Observed share", "First exposure from", "Left out"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, results.variants.map((v) => h("tr", { dataset: { unitsVariant: v.key } }, h("td", { class: "key" }, v.key), h("td", { class: "num" }, v.units),
          h("td", { class: "num" }, v.exposures), h("td", { class: "num" }, percent(v.expectedShare, 2)),
          h("td", { class: "num" }, percent(v.observedShare, 2)),
          h("td", { class: "sources" }, breakdown(v.unitsBySource, SOURCES)),
          h("td", { class: "left-out" }, breakdown(v.excludedUnits, REASONS))))))),
      h("p", { class: "muted small", id: "excluded-share" }, `${percent(results.excludedShare, 1)} of exposed units are left out of results (forced, allow-listed or crawlers).`),
      results.srm && !results.srm.mismatch && h("p", { class: "muted small" }, `No sample ratio mismatch (sequential p = ${pfmt(results.srm.sequentialPValue)}, valid however often you look; one-look p = ${pfmt(results.srm.pValue)}).`),
      excluded.length > 0 && h("p", { class: "muted small" }, "Left out: ", excluded.map(([why, n]) => `${n} ${why.replace("_", "-")}`).join(", "))),
    results.plan && h("p", { class: "banner", id: "plan" },
      h("strong", {}, "Sample size: "),
      `${results.plan.metric} needs ${results.plan.unitsNeeded.toLocaleString("en")} units (${results.plan.unitsPerVariant.toLocaleString("en")} per variant) `,
      `to detect a ${percent(results.plan.minimumDetectableEffect, 1)} change with ${percent(results.plan.power, 0)} power; `,
      results.plan.daysLeft === null || results.plan.daysLeft === undefined ? "no enrolment to extrapolate yet."
        : results.plan.daysLeft === 0 ? "it has them." : `about ${Math.ceil(results.plan.daysLeft)} more day(s) at the enrolment rate so far.`),
    results.metrics.length > 0 && timelineCard(id, phase, results.metrics),
    results.metrics.length > 0 && slicesCard(id, phase),
    h("h2", {}, "Metrics"),
    results.metrics.length ? results.metrics.map((m) => metricSection(m, results.control))
      : h("p", { class: "muted" }, "No metrics attached: cleave-admin metrics use, or PUT /experiments/:id/metrics."));
}
