// Publish history of one environment: every version, what changed between two of them, and a
// one-click rollback that first shows what going back would do.
import { api, get } from "./api.js";
import { navigate, session } from "./session.js";
import { ask, clear, h, percent, toast, when } from "./dom.js";

const KIND = {
  started: "starts enrolling",
  stopped: "stops enrolling",
  changed: "changes",
  new_phase: "starts a new phase (new salt: everyone is drawn again)",
};

/** A publish plan in words: who changes variant, experiment by experiment. */
export function planSummary(plan) {
  const items = plan.changes.map((c) => h("li", { dataset: { experiment: c.experiment } },
    h("strong", { class: "key" }, c.experiment), ` ${KIND[c.kind] ?? c.kind}: `,
    h("span", { class: "share" }, `${percent(c.changed_share, 2)} of units change assignment`),
    c.moved_share > 0 && h("span", { class: "moved" }, `, ${percent(c.moved_share, 2)} move between variants`),
    c.traffic[0] !== c.traffic[1] && `; traffic ${(c.traffic[0] / 100).toFixed(2)}% → ${(c.traffic[1] / 100).toFixed(2)}%`,
    c.also_changed.length > 0 && h("div", { class: "muted small" }, `Also changed: ${c.also_changed.join(", ")}`)));
  return h("div", { class: "plan" },
    items.length ? h("ul", {}, items) : h("p", {}, "No experiment changes who is assigned what."),
    plan.holdout_changed && h("p", { class: "warning" }, "The holdout changes: units move in or out of every experiment."),
    plan.needs_confirmation.length > 0 && h("p", { class: "warning", role: "alert" },
      `Moves already-enrolled units between variants in ${plan.needs_confirmation.join(", ")}. `,
      "Their results mix two assignments; a new salt (a new phase) is the clean alternative."));
}

function showValue(value) {
  return value === null || value === undefined ? h("em", {}, "absent") : h("code", {}, JSON.stringify(value));
}

function fieldChanges(changes) {
  return h("table", { class: "diff" }, h("tbody", {}, changes.map((c) => h("tr", {},
    h("th", { scope: "row", class: "key" }, c.path || "(whole)"),
    h("td", { class: "before" }, showValue(c.before)),
    h("td", { class: "after" }, showValue(c.after))))));
}

export function diffView(diff) {
  return h("div", { class: "diff-view", "aria-live": "polite" },
    h("h3", {}, diff.from ? `v${diff.from} → v${diff.to}` : `Nothing → v${diff.to}`),
    diff.settings.length > 0 && h("div", {}, h("h4", {}, "Environment"), fieldChanges(diff.settings)),
    diff.experiments.length === 0 && diff.settings.length === 0 && h("p", {}, "Same content."),
    diff.experiments.map((e) => h("div", { class: `exp-diff ${e.change}` },
      h("h4", {}, h("span", { class: "key" }, e.key), " ", h("span", { class: `badge change-${e.change}` }, e.change)),
      e.fields.length > 0 && fieldChanges(e.fields))),
    h("h4", {}, "Effect on assignments"), planSummary(diff.plan));
}

export async function renderHistory(view, envId) {
  const [env, versions] = await Promise.all([get(`/environments/${envId}`), get(`/environments/${envId}/snapshots`)]);
  const panel = h("div", { class: "card", id: "diff-panel", hidden: true });
  const showDiff = async (version, against) => {
    const query = against ? `?against=${against}` : "";
    const diff = await get(`/environments/${envId}/snapshots/${version}/diff${query}`);
    clear(panel, diffView(diff));
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  };
  const rollback = async (version) => {
    const diff = await get(`/environments/${envId}/snapshots/${version}/diff?against=${env.currentVersion}`);
    const choice = await ask(`Roll ${env.name} back to v${version}?`,
      h("div", {}, h("p", {}, `Every worker serving ${env.name} goes from v${env.currentVersion} to v${version}.`), diffView(diff)),
      [["Cancel", null], [`Roll back to v${version}`, "go", "danger"]]);
    if (!choice) return;
    try {
      await api("POST", `/environments/${envId}/rollback`, { version });
      await navigate(location.hash);
      toast(`${env.name} now serves v${version}`);
    } catch (e) {
      toast(e.message, "error");
    }
  };
  const rows = versions.map((v) => h("tr", { dataset: { version: v.version }, class: v.current ? "current" : "" },
    h("td", { class: "num" }, `v${v.version}`, v.current && h("span", { class: "badge status-running" }, "serving")),
    h("td", {}, when(v.publishedAt)),
    h("td", { class: "key" }, v.publishedBy),
    h("td", { class: "num" }, v.experiments),
    h("td", { class: "key muted" }, v.sha256.slice(0, 12)),
    h("td", { class: "actions" },
      h("button", { type: "button", onclick: () => showDiff(v.version) }, v.version > 1 ? "Diff with previous" : "Contents"),
      !v.current && env.currentVersion && h("button", { type: "button", onclick: () => showDiff(v.version, env.currentVersion) }, "Diff with serving"),
      h("button", { type: "button", class: "danger", disabled: v.current || !session.canPublish,
        onclick: () => rollback(v.version) }, "Roll back to this"))));
  clear(view,
    h("p", {}, h("a", { href: "#/" }, "← All environments")),
    h("h1", {}, "Publish history: ", h("span", { class: "key" }, env.name)),
    h("p", { class: "muted" }, env.currentVersion ? `Serving v${env.currentVersion}.` : "Nothing published yet."),
    h("div", { class: "table-wrap" }, h("table", { class: "list history stack" },
      h("thead", {}, h("tr", {}, ["Version", "Published", "By", "Experiments", "SHA-256", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))),
    panel);
}
