// One experiment: lifecycle with the publish plan first, settings, variants and payloads,
// the allocation bar and targeting. Each part saves on its own, and a refusal is shown next
// to the field it names.
import { api, get } from "./api.js";
import { navigate, session } from "./session.js";
import { allocationEditor } from "./allocation.js";
import { ask, clear, field, formErrors, h, percent, promoteControl, statusBadge, submit, toast, when } from "./dom.js";
import { planSummary } from "./history.js";
import { targetingEditor } from "./targeting.js";

/** The lifecycle (DRAFT -> RUNNING <-> PAUSED -> STOPPED -> ARCHIVED), as the API enforces it. */
const ALLOWED_FROM = { RUNNING: ["DRAFT", "PAUSED"], PAUSED: ["RUNNING"], STOPPED: ["RUNNING", "PAUSED"], ARCHIVED: ["STOPPED"] };

function lifecycle(experiment) {
  const action = (to, label) => {
    const allowed = ALLOWED_FROM[to].includes(experiment.status);
    const why = !session.canPublish ? "Needs a publisher token" : !allowed ? `Not possible from ${experiment.status}` : undefined;
    return h("button", { type: "button", class: to === "RUNNING" ? "primary" : to === "ARCHIVED" ? "" : "danger",
      disabled: !allowed || !session.canPublish, title: why, dataset: { status: to },
      onclick: () => changeStatus(experiment, to, label) }, label);
  };
  return h("div", { class: "lifecycle", role: "group", "aria-label": "Lifecycle" },
    action("RUNNING", experiment.status === "PAUSED" ? "Resume" : "Start"),
    action("PAUSED", "Pause"), action("STOPPED", "Stop"), action("ARCHIVED", "Archive"),
    experiment.status === "STOPPED" && h("button", { type: "button", disabled: !session.canEdit,
      onclick: () => newPhase(experiment) }, "Run again as a new phase"),
    experiment.status === "DRAFT" && h("button", { type: "button", class: "danger", disabled: !session.canEdit,
      onclick: () => removeDraft(experiment, `/experiments/${experiment.id}`, `Delete ${experiment.key}?`, "#/") }, "Delete draft"));
}

/** Makes a stopped experiment a draft of its next phase under a new salt, once asked. */
async function newPhase(experiment) {
  const salt = h("input", { id: "phase-salt", autocomplete: "off", placeholder: "defaults to <key>-<phase number>" });
  const choice = await ask(`Run ${experiment.key} again?`, h("div", {},
    h("p", {}, "A new phase draws every unit again under a new salt; its results are its own (the earlier phase stays in Results). It becomes a draft: edit it, then start it."),
    field("New salt", salt)), [["Cancel", null], ["New phase", "go", "primary"]]);
  if (!choice) return;
  try {
    const done = await api("POST", `/experiments/${experiment.id}/phases`, salt.value.trim() ? { salt: salt.value.trim() } : {});
    await navigate(location.hash);
    toast(`New phase under salt ${done.salt}`);
  } catch (e) {
    toast(e.message, "error");
  }
}

/** Deletes a draft experiment or one of its variants, once asked; nothing that ran can be. */
async function removeDraft(experiment, path, title, then) {
  const choice = await ask(title, h("p", {}, "A draft never enrolled anyone: it is deleted for good (the audit log keeps what it was)."),
    [["Cancel", null], ["Delete", "go", "danger"]]);
  if (!choice) return;
  try {
    await api("DELETE", path);
    await navigate(then);
    toast("Deleted");
  } catch (e) {
    toast(e.message, "error");
  }
}

/**
 * How many units a draft will need and how long that takes, from a baseline the editor
 * chooses: a conversion rate, or a mean and standard deviation. Recomputed as they type.
 */
function samplePlan(experiment) {
  const input = (id, value, attrs = {}) => h("input", { id, type: "number", value, step: "any", min: 0, ...attrs, oninput: () => update() });
  const kind = h("select", { id: "plan-kind", onchange: () => update() },
    h("option", { value: "rate" }, "a conversion rate"), h("option", { value: "mean" }, "a mean"));
  const baseline = input("plan-baseline", 10);
  const sd = input("plan-sd", "");
  const mde = input("plan-mde", 5);
  const daily = input("plan-daily", "", { placeholder: "visitors a day" });
  const sdField = field("Standard deviation per unit", sd);
  const out = h("p", { class: "plan-estimate", id: "plan-estimate", "aria-live": "polite" });
  const share = experiment.traffic / 10000;
  const arms = new Set(experiment.allocations.map((a) => a.variantId)).size || experiment.variants.length;
  let asked = 0;
  const update = async () => {
    const rate = kind.value === "rate";
    sdField.hidden = rate;
    const query = new URLSearchParams({ baseline: rate ? Number(baseline.value) / 100 : baseline.value,
      mde: Number(mde.value) / 100, variants: Math.max(2, arms) });
    if (!rate && !(Number(sd.value) > 0)) {
      clear(out, "Give the metric's standard deviation per unit: a mean alone says nothing of its spread.");
      out.classList.add("error");
      return;
    }
    if (!rate) query.set("sd", sd.value);
    if (Number(daily.value) > 0) query.set("daily_units", Number(daily.value) * share);
    const mine = ++asked;
    try {
      const plan = await get(`/sample-size?${query}`);
      if (mine !== asked) return;
      clear(out, `${plan.unitsNeeded.toLocaleString("en")} units (${plan.unitsPerVariant.toLocaleString("en")} per variant) `,
        `to detect a ${percent(plan.minimumDetectableEffect, 1)} change with ${percent(plan.power, 0)} power`,
        plan.daysLeft === null || plan.daysLeft === undefined ? "; give the visitors a day for how long that takes."
          : `: about ${Math.ceil(plan.daysLeft)} day(s) with ${percent(share, 2)} of ${Number(daily.value).toLocaleString("en")} visitors a day enrolled.`);
      out.classList.remove("error");
    } catch (e) {
      if (mine !== asked) return;
      clear(out, e.message);
      out.classList.add("error");
    }
  };
  update();
  return h("fieldset", { class: "sample-plan", id: "sample-plan" }, h("legend", {}, "How long will it need?"),
    h("div", { class: "field" }, h("label", { for: "plan-kind" }, "The primary metric is"), kind),
    field("Control's baseline (a rate in %, or the mean)", baseline), sdField,
    field("Smallest change worth detecting (%, relative)", mde), field("Visitors a day", daily), out);
}

async function changeStatus(experiment, to, label) {
  try {
    const preview = await get(`/experiments/${experiment.id}/plan?status=${to}`);
    const body = preview.publishes
      ? h("div", {}, h("p", {}, `${label} publishes a new snapshot of this environment at once. What it changes:`), planSummary(preview.plan))
      : h("p", {}, `${experiment.key} becomes ${to}. Nothing is published.`);
    if (to === "RUNNING" && experiment.status === "DRAFT") body.append(samplePlan(experiment));
    const confirm = (preview.plan?.needs_confirmation.length ?? 0) > 0;
    const choice = await ask(`${label} ${experiment.key}?`, body, [["Cancel", null], [label, "go", confirm ? "danger" : "primary"]]);
    if (!choice) return;
    const done = await api("PATCH", `/experiments/${experiment.id}/status`, { status: to, confirm });
    await navigate(location.hash);
    toast(done.published ? `${experiment.key} is ${to}; published v${done.published.version}` : `${experiment.key} is ${to}`);
  } catch (e) {
    toast(e.message, "error");
  }
}

/** `2026-12-01T09:00:00Z` <-> the local time a datetime-local input shows. */
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function fromLocalInput(text) {
  return text ? new Date(text).toISOString().replace(/\.000Z$/, "Z") : null;
}

function parseRanges(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
    const [a, b] = part.split("-").map((n) => Number(n.trim()));
    return [a, b ?? a];
  });
}

function settingsForm(experiment, reload) {
  const input = (id, value, attrs = {}) => h("input", { id, value: value ?? "", autocomplete: "off", ...attrs });
  const name = input("exp-name", experiment.name);
  const description = h("textarea", { id: "exp-description", rows: 2, value: experiment.description });
  const traffic = input("exp-traffic", (experiment.traffic / 100).toString(), { type: "number", min: 0, max: 100, step: 0.01, inputmode: "decimal" });
  const fallback = input("exp-fallback", experiment.fallbackUnit);
  const layerKey = input("exp-layer", experiment.layer?.key);
  const layerRanges = input("exp-layer-ranges", experiment.layer?.ranges.map(([a, b]) => `${a}-${b}`).join(", "), { placeholder: "0-4999, 6000-6999" });
  const startAt = input("exp-start", toLocalInput(experiment.startAt), { type: "datetime-local" });
  const endAt = input("exp-end", toLocalInput(experiment.endAt), { type: "datetime-local" });
  const form = h("form", { class: "card", novalidate: true, onsubmit: (ev) => {
    ev.preventDefault();
    const layer = layerKey.value.trim() ? { key: layerKey.value.trim(), ranges: parseRanges(layerRanges.value) } : null;
    const patch = {
      name: name.value, description: description.value, traffic: Math.round(Number(traffic.value) * 100),
      fallbackUnit: fallback.value.trim() || null, layer, startAt: fromLocalInput(startAt.value), endAt: fromLocalInput(endAt.value),
    };
    submit(form, () => api("PATCH", `/experiments/${experiment.id}`, patch), reload);
  } },
  h("h2", {}, "Settings"), formErrors(),
  h("div", { class: "grid" },
    field("Name", name, { path: "name" }),
    field("Traffic (% of units enrolled)", traffic, { path: "traffic", hint: "Ramping up keeps every enrolled unit in its variant." }),
    field("Description", description, { path: "description" }),
    field("Fallback unit", fallback, { path: "fallbackUnit|fallback_unit", hint: `Hashed when the request has no ${experiment.unit} id` }),
    field("Layer", layerKey, { path: "layer.key|layer", hint: "Experiments in one layer never share a unit" }),
    field("Layer ranges", layerRanges, { path: "layer.ranges|layer.salt" }),
    field("Starts", startAt, { path: "startAt|start_at" }),
    field("Ends", endAt, { path: "endAt|end_at" })),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", disabled: !session.canEdit }, "Save settings")));
  return form;
}

function variantForm(experiment, variant, reload) {
  const name = h("input", { id: `variant-${variant.key}-name`, value: variant.name, autocomplete: "off" });
  const payload = h("textarea", { id: `variant-${variant.key}-payload`, class: "code", rows: 3, spellcheck: "false",
    value: JSON.stringify(variant.payload, null, 2) });
  const form = h("form", { class: "variant", novalidate: true, dataset: { variant: variant.key }, onsubmit: (ev) => {
    ev.preventDefault();
    submit(form, async () => {
      const parsed = parsePayload(payload.value);
      return api("PATCH", `/experiments/${experiment.id}/variants/${variant.id}`, { name: name.value, payload: parsed });
    }, reload);
  } },
  h("h3", { class: "key" }, variant.key), formErrors(),
  field("Name", name, { path: "name" }),
  field("Payload (JSON)", payload, { path: "payload" }),
  variant.allow.length > 0 && h("p", { class: "muted small" }, `Always for: ${variant.allow.join(", ")}`),
  h("div", { class: "actions" }, h("button", { type: "submit", disabled: !session.canEdit }, "Save variant"),
    experiment.status === "DRAFT" && h("button", { type: "button", class: "danger", disabled: !session.canEdit,
      onclick: () => removeDraft(experiment, `/experiments/${experiment.id}/variants/${variant.id}`,
        `Delete variant ${variant.key}?`, location.hash) }, "Delete variant")));
  return form;
}

function parsePayload(text) {
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    const err = new Error("The payload is not valid JSON");
    err.problems = [{ path: "payload", message: `not valid JSON: ${e.message}` }];
    throw err;
  }
}

function newVariantForm(experiment, reload) {
  const key = h("input", { id: "new-variant-key", required: true, autocomplete: "off", placeholder: "treatment" });
  const name = h("input", { id: "new-variant-name", autocomplete: "off" });
  const payload = h("textarea", { id: "new-variant-payload", class: "code", rows: 2, spellcheck: "false", placeholder: "{\"color\": \"blue\"}" });
  const form = h("form", { class: "variant new", novalidate: true, onsubmit: (ev) => {
    ev.preventDefault();
    submit(form, () => api("POST", `/experiments/${experiment.id}/variants`,
      { key: key.value.trim(), name: name.value, payload: parsePayload(payload.value) }), reload);
  } },
  h("h3", {}, "Add a variant"), formErrors(),
  field("Key", key, { path: "key" }), field("Name", name, { path: "name" }), field("Payload (JSON)", payload, { path: "payload" }),
  h("div", { class: "actions" }, h("button", { type: "submit", disabled: !session.canEdit }, "Add variant")));
  return form;
}

export async function renderExperiment(view, id) {
  const [experiment, environments, audiences, operators, phases] = await Promise.all([
    get(`/experiments/${id}`), get("/environments"), get("/audiences").catch(() => []), get("/targeting/operators"),
    get(`/experiments/${id}/phases`),
  ]);
  const env = environments.find((e) => e.id === experiment.environmentId);
  const reload = () => renderExperiment(view, id);
  clear(view,
    h("p", {}, h("a", { href: "#/" }, "← All experiments")),
    h("div", { class: "section-head" },
      h("div", {},
        h("h1", { class: "key", id: "experiment-key" }, experiment.key), " ", statusBadge(experiment.status),
        h("p", { class: "muted" }, experiment.name, " · ", h("span", { class: "key" }, env?.name ?? "?"),
          env?.currentVersion ? ` (serving v${env.currentVersion})` : "", ` · unit ${experiment.unit} · salt `,
          h("code", { class: "key" }, experiment.salt), ` · changed ${when(experiment.updatedAt)}`)),
      h("nav", { class: "actions", "aria-label": "Experiment" },
        h("a", { class: "button", href: `#/experiments/${id}/results` }, "Results"),
        env && h("a", { class: "button", href: `#/environments/${env.id}/history` }, "Publish history"))),
    lifecycle(experiment),
    promoteControl(`/experiments/${id}/promote`, environments, experiment.environmentId, session.canEdit,
      (created) => `#/experiments/${created.id}`),
    experiment.status === "ARCHIVED" && h("p", { class: "warning" }, "Archived experiments are read-only."),
    settingsForm(experiment, reload),
    h("section", { class: "card", "aria-labelledby": "variants-h" },
      h("h2", { id: "variants-h" }, "Variants"),
      h("div", { class: "variants" }, experiment.variants.map((v) => variantForm(experiment, v, reload)),
        newVariantForm(experiment, reload))),
    allocationEditor(experiment, reload),
    targetingEditor(experiment, audiences, operators, reload),
    phases.length > 1 && phaseHistory(phases, env));
}

/** Each phase's history: the versions that carried it under its salt, and what changed. */
function phaseHistory(phases, env) {
  return h("section", { class: "card", "aria-labelledby": "phases-h" },
    h("h2", { id: "phases-h" }, "Phases"),
    phases.slice().reverse().map((p) => h("details", { class: "phase", dataset: { phase: p.number }, open: !p.endedAt },
      h("summary", {}, `Phase ${p.number} · salt `, h("code", { class: "key" }, p.salt),
        ` · from ${when(p.startedAt)}${p.endedAt ? ` to ${when(p.endedAt)}` : " (current)"}`),
      h("p", { class: "muted small" }, p.versions.length
        ? ["Published in ", p.versions.map((v, i) => [i ? ", " : "",
          h("a", { href: `#/environments/${env?.id}/history` }, `v${v.version}`), ` (${v.status})`])]
        : "Not published in this phase."),
      h("ol", { class: "changes" }, p.changes.map((c) => h("li", {},
        h("span", { class: "key" }, c.action), ` by ${c.actor}, ${when(c.at)}`))))));
}
