// The overview (environments and experiments, filtered and searched), the new-experiment
// form and the audit log.
import { api, get } from "./api.js";
import { navigate, session } from "./session.js";
import { ask, clear, field, formErrors, h, statusBadge, submit, toast, when } from "./dom.js";
import { diffView } from "./history.js";

const STATUSES = ["DRAFT", "RUNNING", "PAUSED", "STOPPED", "ARCHIVED"];

function filtersFromHash() {
  const query = new URLSearchParams(location.hash.split("?")[1] ?? "");
  return { q: query.get("q") ?? "", status: query.get("status") ?? "", env: query.get("env") ?? "" };
}

function keepFilters(filters) {
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  const hash = `#/${query.size ? `?${query}` : ""}`;
  history.replaceState(null, "", hash);
}

function matches(experiment, filters) {
  if (filters.status && experiment.status !== filters.status) return false;
  if (filters.env && experiment.environmentId !== filters.env) return false;
  const q = filters.q.trim().toLowerCase();
  return !q || [experiment.key, experiment.name, experiment.description, experiment.layer?.key]
    .some((text) => String(text ?? "").toLowerCase().includes(q));
}

export async function renderList(view) {
  const [environments, experiments] = await Promise.all([get("/environments"), get("/experiments")]);
  const envName = new Map(environments.map((e) => [e.id, e.name]));
  const filters = filtersFromHash();
  const tbody = h("tbody");
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const draw = () => {
    const shown = experiments.filter((e) => matches(e, filters))
      .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
    count.textContent = `${shown.length} of ${experiments.length} experiments`;
    clear(tbody, shown.map((e) => h("tr", {},
      h("td", { class: "key-cell" }, h("a", { href: `#/experiments/${e.id}`, class: "key" }, e.key),
        e.name && h("div", { class: "muted small" }, e.name)),
      h("td", { dataset: { label: "Environment" } }, envName.get(e.environmentId) ?? "?"),
      h("td", {}, statusBadge(e.status)),
      h("td", { class: "num", dataset: { label: "Traffic" } }, `${(e.traffic / 100).toFixed(2)}%`),
      h("td", { class: "variants-cell" }, e.variants.map((v) => h("span", { class: "chip" }, v.key))),
      h("td", { dataset: { label: "Changed" } }, when(e.updatedAt)))));
    keepFilters(filters);
  };
  const search = h("input", { type: "search", id: "filter-q", value: filters.q, placeholder: "key, name, layer…",
    oninput: (ev) => { filters.q = ev.target.value; draw(); } });
  const status = h("select", { id: "filter-status", onchange: (ev) => { filters.status = ev.target.value; draw(); } },
    h("option", { value: "" }, "Any status"), STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)));
  const env = h("select", { id: "filter-env", onchange: (ev) => { filters.env = ev.target.value; draw(); } },
    h("option", { value: "" }, "Any environment"),
    environments.map((e) => h("option", { value: e.id, selected: e.id === filters.env }, e.name)));
  clear(view,
    h("section", { "aria-labelledby": "envs" },
      h("h1", { id: "envs" }, "Environments"),
      h("div", { class: "env-grid" }, environments.map((e) => environmentCard(e, experiments)), newEnvironmentForm())),
    h("section", { "aria-labelledby": "exps" },
      h("div", { class: "section-head" }, h("h1", { id: "exps" }, "Experiments"),
        h("a", { class: "button primary", href: "#/experiments/new" }, "New experiment")),
      h("div", { class: "filters", role: "search" },
        field("Search", search), field("Status", status), field("Environment", env)),
      count,
      h("div", { class: "table-wrap" }, h("table", { class: "list stack" },
        h("thead", {}, h("tr", {}, ["Experiment", "Environment", "Status", "Traffic", "Variants", "Last change"].map((t) => h("th", { scope: "col" }, t)))),
        tbody))));
  draw();
}

function environmentCard(env, experiments) {
  const running = experiments.filter((e) => e.environmentId === env.id && e.status === "RUNNING").length;
  return h("article", { class: "card env", dataset: { env: env.name } },
    h("h2", { class: "key" }, env.name),
    h("p", {}, env.currentVersion ? `Serving v${env.currentVersion}` : "Nothing published yet"),
    h("p", { class: "muted small" }, `${running} running`),
    // A unit a client can set is worth a second look before anyone reads its results.
    (env.identityWarnings ?? []).map((w) => h("p", { class: "warning small identity-warning" }, w)),
    h("div", { class: "actions" },
      h("a", { href: `#/environments/${env.id}/history` }, "Publish history"),
      h("a", { href: `#/environments/${env.id}/flags` }, "Flags"),
      env.settings?.holdout && h("a", { href: `#/environments/${env.id}/holdout` }, "Holdout"),
      h("button", { type: "button", disabled: !session.canPublish, onclick: () => publishWithPlan(env) }, "Publish…")));
}

/** Shows what publishing would change, then publishes on confirmation. */
export async function publishWithPlan(env) {
  let pending;
  try {
    pending = await get(`/environments/${env.id}/pending`);
  } catch (e) {
    // An invalid definition cannot be published; say which.
    const problems = (e.problems ?? []).map((p) => h("li", {}, `${p.path}: ${p.message}`));
    await ask(`${env.name} cannot be published`, h("div", {}, h("p", {}, e.message), h("ul", {}, problems)), [["Close", null]]);
    return;
  }
  const confirm = pending.plan.needs_confirmation.length > 0;
  const choice = await ask(`Publish ${env.name}?`, diffView(pending),
    [["Cancel", null], [confirm ? "Publish and move units" : "Publish", "go", confirm ? "danger" : "primary"]]);
  if (!choice) return;
  try {
    const done = await api("POST", `/environments/${env.id}/publish${confirm ? "?confirm=true" : ""}`);
    await navigate(location.hash);
    toast(done.changed ? `Published v${done.version}` : `Nothing changed; still v${done.version}`);
  } catch (e) {
    toast(e.message, "error");
  }
}

function newEnvironmentForm() {
  const name = h("input", { id: "new-env-name", required: true, autocomplete: "off", placeholder: "staging" });
  const form = h("form", { class: "card env new", novalidate: true, onsubmit: (ev) => {
    ev.preventDefault();
    submit(form, () => api("POST", "/environments", { name: name.value.trim() }), () => navigate("#/"));
  } },
  h("h2", {}, "New environment"), formErrors(),
  field("Name", name, { path: "name" }),
  h("div", { class: "actions" }, h("button", { type: "submit", disabled: !session.canEdit }, "Create")));
  return form;
}

export async function renderNewExperiment(view) {
  const environments = await get("/environments");
  const env = h("select", { id: "new-exp-env", required: true },
    environments.map((e) => h("option", { value: e.id }, e.name)));
  const key = h("input", { id: "new-exp-key", required: true, autocomplete: "off", placeholder: "checkout-cta" });
  const name = h("input", { id: "new-exp-name", autocomplete: "off" });
  const description = h("textarea", { id: "new-exp-description", rows: 3 });
  const unit = h("input", { id: "new-exp-unit", value: "user", autocomplete: "off" });
  const salt = h("input", { id: "new-exp-salt", autocomplete: "off", placeholder: "defaults to the key" });
  const form = h("form", { class: "card", novalidate: true, onsubmit: (ev) => {
    ev.preventDefault();
    submit(form, () => api("POST", "/experiments", {
      environmentId: env.value, key: key.value.trim(), name: name.value, description: description.value,
      unit: unit.value.trim() || undefined, salt: salt.value.trim() || undefined,
    }), (created) => navigate(`#/experiments/${created.id}`));
  } },
  h("h1", {}, "New experiment"), formErrors(),
  environments.length === 0 && h("p", { class: "warning" }, "Create an environment first, on the overview."),
  field("Environment", env, { path: "environmentId" }),
  field("Key", key, { path: "key", hint: "Lowercase, as the worker and headers name it: [a-z][a-z0-9_.-]*" }),
  field("Name", name, { path: "name" }),
  field("Description", description, { path: "description" }),
  field("Unit", unit, { path: "unit", hint: "The id type hashed: user, device, account…" }),
  field("Salt", salt, { path: "salt" }),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", disabled: !session.canEdit }, "Create experiment")));
  clear(view, form);
}

const PAGE = 50;

export async function renderAudit(view) {
  const entries = (await get("/audit")).reverse();
  let shown = PAGE;
  let q = "";
  const list = h("tbody");
  const more = h("button", { type: "button", onclick: () => { shown += PAGE; draw(); } }, "Show more");
  const draw = () => {
    const needle = q.trim().toLowerCase();
    const hits = entries.filter((e) => !needle || [e.actor, e.action, e.entity, e.entityId]
      .some((t) => t.toLowerCase().includes(needle)));
    clear(list, hits.slice(0, shown).map(auditRow));
    more.hidden = hits.length <= shown;
  };
  const search = h("input", { type: "search", id: "audit-q", placeholder: "actor, action, id…",
    oninput: (ev) => { q = ev.target.value; shown = PAGE; draw(); } });
  clear(view, h("section", {},
    h("h1", {}, "Audit log"),
    h("p", { class: "muted" }, "Every change, newest first. The log is append-only and hash-chained (cleave-admin audit verify)."),
    h("div", { class: "filters", role: "search" }, field("Search", search)),
    h("div", { class: "table-wrap" }, h("table", { class: "list audit stack" },
      h("thead", {}, h("tr", {}, ["When", "Who", "What", "Entity", "Change"].map((t) => h("th", { scope: "col" }, t)))),
      list)),
    more));
  draw();
}

function auditRow(entry) {
  const link = entry.entity === "experiment" ? `#/experiments/${entry.entityId}`
    : entry.entity === "environment" ? `#/environments/${entry.entityId}/history` : null;
  return h("tr", {},
    h("td", {}, when(entry.at)),
    h("td", { class: "key" }, entry.actor),
    h("td", {}, h("code", {}, entry.action)),
    h("td", { class: "key" }, link ? h("a", { href: link }, `${entry.entity} ${entry.entityId.slice(0, 8)}`) : `${entry.entity} ${entry.entityId}`),
    h("td", {}, h("details", {}, h("summary", {}, "before / after"),
      h("div", { class: "before-after" },
        h("pre", { class: "json" }, JSON.stringify(entry.before, null, 2)),
        h("pre", { class: "json" }, JSON.stringify(entry.after, null, 2))))));
}
