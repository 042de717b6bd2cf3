// An environment holdout's report: everyone else against the units kept out of every
// experiment, i.e. the combined effect of all that has shipped and runs there. Each metric
// reads "rest against held out", so a positive difference is what the experiments added.
import { get } from "./api.js";
import { clear, h, percent } from "./dom.js";
import { metricSection } from "./results.js";

const pfmt = (p) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

export async function renderHoldout(view, id) {
  const env = await get(`/environments/${id}`);
  const back = h("p", {}, h("a", { href: "#/" }, "← Environments"));
  let report;
  try {
    report = await get(`/environments/${id}/holdout`);
  } catch (e) {
    if (e.status !== 409) throw e;
    clear(view, back, h("h1", {}, "Holdout: ", h("span", { class: "key" }, env.name)),
      h("div", { class: "card", id: "no-holdout" }, h("p", {}, e.message),
        h("p", { class: "muted" }, "A holdout keeps a share of units out of every experiment so their combined impact can be measured: ",
          h("code", {}, `"holdout": {"salt": "h1", "ranges": [[0, 500]]}`), " in the environment's settings (PUT /environments/:id/settings, or cleave-admin environments settings) keeps 5% out from the next publish.")));
    return;
  }
  clear(view, back,
    h("h1", {}, "Holdout: ", h("span", { class: "key" }, report.environment)),
    h("p", { class: "muted", id: "holdout-summary" },
      `${percent(report.heldOutShare, 2)} of ${report.unitType} units held out of every experiment (salt ${report.salt}); `,
      `each metric compares everyone else with them; α = ${report.alpha}, ${report.correction} correction across the metrics.`),
    report.srm?.mismatch && h("div", { class: "banner danger", role: "alert", id: "holdout-srm-warning" },
      h("strong", {}, "Sample ratio mismatch. "),
      `Held-out and other units are not split as the holdout's ranges say (sequential p = ${pfmt(report.srm.sequentialPValue)}): `,
      "exposures are being lost for one group, so this comparison cannot be trusted yet."),
    h("section", { class: "card" }, h("h2", {}, "Units"),
      h("div", { class: "table-wrap" }, h("table", { class: "list", id: "holdout-units" },
        h("thead", {}, h("tr", {}, ["Group", "Units", "Expected share", "Observed share"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, report.variants.map((v) => h("tr", { dataset: { group: v.key } },
          h("td", { class: "key" }, v.key === "held_out" ? "held out" : "everyone else"), h("td", { class: "num" }, v.units),
          h("td", { class: "num" }, percent(v.expectedShare, 2)), h("td", { class: "num" }, percent(v.observedShare, 2))))))),
      report.srm && !report.srm.mismatch && h("p", { class: "muted small" }, `No sample ratio mismatch (sequential p = ${pfmt(report.srm.sequentialPValue)}).`),
      h("p", { class: "muted small" }, `${percent(report.excludedShare, 1)} of units are left out (crawlers and forced traffic).`)),
    h("h2", {}, "Metrics"),
    report.metrics.length ? report.metrics.map((m) => metricSection(m, report.control))
      : h("p", { class: "muted" }, "No metrics defined yet: cleave-admin metrics create."));
}
