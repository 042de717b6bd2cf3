// Feature flags of an environment: the list with each flag's kill switch, the new-flag form,
// and one flag's editor (rules as JSON, a slider for each rollout's share, the kill switch,
// launching or deleting a draft).
import { api, get } from "./api.js";
import { navigate, session } from "./session.js";
import { ask, clear, field, formErrors, h, percent, promoteControl, submit, toast, when } from "./dom.js";

/** What a serve does, in a few words. */
function serveText(serve) {
  if (serve.variant) return `serve ${serve.variant}`;
  if (serve.rollout) {
    const split = serve.rollout.split.map((s) => `${s.variant} ${percent(s.weight / 10000, 0)}`).join(" / ");
    return `roll out to ${percent(serve.rollout.traffic / 10000, 0)}: ${split}`;
  }
  if (serve.experiment) return `as experiment ${serve.experiment.key}`;
  return "?";
}

function state(flag) {
  if (flag.draft) return h("span", { class: "badge status-draft", title: "Serves only force-token previews" }, "DRAFT");
  return h("span", { class: `badge ${flag.enabled ? "status-running" : "status-stopped"}` }, flag.enabled ? "ON" : "KILLED");
}

/** Launches a draft (it serves from the next publish), once asked. */
async function launch(flag) {
  const choice = await ask(`Launch ${flag.key}?`,
    h("p", {}, "From the next publish its rules serve everyone they take. A launched flag never becomes a draft again."),
    [["Cancel", null], ["Launch", "go", "primary"]]);
  if (!choice) return;
  try {
    await api("PATCH", `/flags/${flag.id}`, { draft: false });
    await navigate(location.hash);
    toast("Launched; it goes out with the next publish");
  } catch (e) {
    toast(e.message, "error");
  }
}

/** Deletes a draft for good, or archives a flag that went live, once asked. */
async function remove(flag) {
  const [title, text, verb] = flag.draft
    ? [`Delete ${flag.key}?`, "A draft never served anyone: it is deleted for good (the audit log keeps what it was).", "Delete"]
    : [`Archive ${flag.key}?`, "The next publish leaves it out, and its key is free again.", "Archive"];
  const choice = await ask(title, h("p", {}, text), [["Cancel", null], [verb, "go", "danger"]]);
  if (!choice) return;
  try {
    await api("DELETE", `/flags/${flag.id}`);
    await navigate(`#/environments/${flag.environmentId}/flags`);
    toast(flag.draft ? "Deleted" : "Archived");
  } catch (e) {
    toast(e.message, "error");
  }
}

/** The kill switch: asks, then publishes at once. */
async function toggleKill(flag, after) {
  const killing = flag.enabled;
  const choice = await ask(killing ? `Kill ${flag.key}?` : `Turn ${flag.key} back on?`,
    h("p", {}, killing
      ? `Everyone gets "${flag.offVariant}" from the next refresh. This publishes now, with nothing else.`
      : "Its rules apply again from the next refresh. This publishes now, with nothing else."),
    [["Cancel", null], [killing ? "Kill it" : "Turn on", "go", killing ? "danger" : "primary"]]);
  if (!choice) return;
  try {
    const done = await api("PUT", `/flags/${flag.id}/kill`, { killed: killing });
    toast(done.published ? `Published v${done.published.version}` : "Saved; it goes out with the first publish");
    await after();
  } catch (e) {
    toast(e.message, "error");
  }
}

export async function renderFlags(view, envId) {
  const [env, flags] = await Promise.all([get(`/environments/${envId}`), get(`/environments/${envId}/flags`)]);
  const redraw = () => navigate(location.hash);
  const rows = flags.map((f) => h("tr", { dataset: { flag: f.key } },
    h("td", { class: "key-cell" }, h("a", { href: `#/flags/${f.id}`, class: "key" }, f.key),
      f.name && h("div", { class: "muted small" }, f.name)),
    h("td", { dataset: { label: "Type" } }, f.type),
    h("td", {}, state(f)),
    h("td", { dataset: { label: "Rules" } }, h("ol", { class: "rules" },
      f.rules.map((r) => h("li", {}, `${r.targeting.length ? "if targeted: " : ""}${serveText(r.serve)}`)),
      h("li", {}, `otherwise ${serveText(f.fallthrough)}`))),
    h("td", { dataset: { label: "Changed" } }, when(f.updatedAt)),
    h("td", {}, h("button", { type: "button", class: f.enabled ? "danger kill" : "kill", disabled: !session.canPublish,
      onclick: () => toggleKill(f, redraw) }, f.enabled ? "Kill" : "Turn on"))));
  clear(view,
    h("section", { "aria-labelledby": "flags" },
      h("div", { class: "section-head" }, h("h1", { id: "flags" }, `Flags of ${env.name}`),
        h("a", { href: "#/" }, "Back to the overview")),
      h("p", { class: "muted" }, "Edits wait for a publish (Publish… on the overview); the kill switch publishes at once."),
      h("div", { class: "table-wrap" }, h("table", { class: "list stack" },
        h("thead", {}, h("tr", {}, ["Flag", "Type", "State", "Rules", "Last change", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))),
      flags.length === 0 && h("p", { class: "muted" }, "No flags yet.")),
    newFlagForm(envId));
}

function newFlagForm(envId) {
  const key = h("input", { id: "new-flag-key", required: true, autocomplete: "off", placeholder: "new-nav" });
  const type = h("select", { id: "new-flag-type" }, ["boolean", "string", "number", "json"].map((t) => h("option", { value: t }, t)));
  const draft = h("input", { id: "new-flag-draft", type: "checkbox" });
  const form = h("form", { class: "card", novalidate: true, onsubmit: (ev) => {
    ev.preventDefault();
    // A boolean starts as on/off, off for everyone; other types start with one value to edit.
    const values = { boolean: [true, false], string: ["a", "b"], number: [0, 1], json: [{}, { on: true }] }[type.value];
    const variants = type.value === "boolean"
      ? [{ key: "on", value: true }, { key: "off", value: false }]
      : values.map((value, i) => ({ key: `v${i + 1}`, value }));
    const off = variants[variants.length - 1].key;
    submit(form, () => api("POST", `/environments/${envId}/flags`, {
      key: key.value.trim(), type: type.value, variants, offVariant: off, fallthrough: { variant: off }, draft: draft.checked,
    }), (created) => navigate(`#/flags/${created.id}`));
  } },
  h("h2", {}, "New flag"), formErrors(),
  field("Key", key, { path: "key", hint: "Shares the key space with the environment's experiments" }),
  field("Type", type, { path: "type" }),
  field("Start as a draft", draft, { path: "draft", hint: "A draft serves only force-token previews until it is launched" }),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", disabled: !session.canEdit }, "Create flag")));
  return form;
}

/** A slider for a rollout's share, in whole per cent; it writes `traffic` back into `rollout`. */
function rolloutSlider(label, rollout, onchange) {
  const shown = h("output", {}, percent(rollout.traffic / 10000, 0));
  const input = h("input", { type: "range", min: 0, max: 100, step: 1, value: String(Math.round(rollout.traffic / 100)),
    class: "rollout", oninput: (ev) => {
      rollout.traffic = Number(ev.target.value) * 100;
      shown.textContent = percent(rollout.traffic / 10000, 0);
      onchange();
    } });
  return h("div", { class: "field slider" }, h("label", {}, label, " ", shown), input,
    h("p", { class: "hint" }, "Raising it keeps everyone already in."));
}

export async function renderFlag(view, id) {
  const [flag, environments] = await Promise.all([get(`/flags/${id}`), get("/environments")]);
  const spec = { rules: structuredClone(flag.rules), fallthrough: structuredClone(flag.fallthrough) };
  const json = (value) => JSON.stringify(value, null, 2);
  const rules = h("textarea", { id: "flag-rules", rows: 12, class: "code", value: json(spec.rules) });
  const fallthrough = h("textarea", { id: "flag-fallthrough", rows: 4, class: "code", value: json(spec.fallthrough) });
  const variants = h("textarea", { id: "flag-variants", rows: 6, class: "code", value: json(flag.variants) });
  const offVariant = h("input", { id: "flag-off", value: flag.offVariant, autocomplete: "off" });
  const name = h("input", { id: "flag-name", value: flag.name, autocomplete: "off" });
  const sliders = h("div", { class: "sliders" });
  // The sliders edit the rules' rollouts; the JSON follows them, and they follow the JSON
  // (redrawn only when the JSON changed, so a slider in use is never replaced under it).
  let drawnFrom = null;
  const drawSliders = () => {
    if (drawnFrom === rules.value + fallthrough.value) return;
    drawnFrom = rules.value + fallthrough.value;
    let parsed;
    try {
      parsed = { rules: JSON.parse(rules.value), fallthrough: JSON.parse(fallthrough.value) };
    } catch {
      return;
    }
    const sync = () => {
      rules.value = json(parsed.rules);
      fallthrough.value = json(parsed.fallthrough);
      drawnFrom = rules.value + fallthrough.value;
    };
    const serves = [...parsed.rules.map((r, i) => [`Rule ${i + 1} rollout`, r.serve]), ["Fallthrough rollout", parsed.fallthrough]];
    clear(sliders, serves.filter(([, s]) => s?.rollout).map(([label, s]) => rolloutSlider(label, s.rollout, sync)));
  };
  rules.addEventListener("change", drawSliders);
  fallthrough.addEventListener("change", drawSliders);
  const parse = (input, path) => {
    try {
      return JSON.parse(input.value);
    } catch (e) {
      throw Object.assign(new Error(`${path} is not JSON: ${e.message}`), { problems: [{ path, message: `not JSON: ${e.message}` }] });
    }
  };
  const form = h("form", { class: "card", novalidate: true, onsubmit: (ev) => {
    ev.preventDefault();
    submit(form, async () => api("PATCH", `/flags/${id}`, {
      name: name.value, variants: parse(variants, "variants"), offVariant: offVariant.value.trim(),
      rules: parse(rules, "rules"), fallthrough: parse(fallthrough, "fallthrough"),
    }), () => navigate(location.hash));
  } },
  h("div", { class: "section-head" }, h("h1", {}, h("span", { class: "key" }, flag.key), " ", state(flag)),
    h("a", { href: `#/environments/${flag.environmentId}/flags` }, "All flags")),
  h("p", { class: "muted" }, `${flag.type} flag, hashed on ${flag.unit}. Saving waits for a publish.`,
    flag.draft ? " A draft: it serves only previews (a force token naming one of its variants) until launched." : ""),
  formErrors(),
  field("Name", name, { path: "name" }),
  field("Variants", variants, { path: "variants", hint: '[{"key": "on", "value": true}, …], every value of the flag\'s type' }),
  field("Off variant", offVariant, { path: "offVariant", hint: "Served when the flag is killed" }),
  sliders,
  field("Rules", rules, { path: "rules", hint: 'In order; each {"targeting": [...], "serve": {"variant"} | {"rollout": {"traffic", "split"}} | {"experiment": {"key", "variants"}}}' }),
  field("Fallthrough", fallthrough, { path: "fallthrough", hint: "What everyone no rule served gets" }),
  h("div", { class: "actions" },
    h("button", { type: "submit", class: "primary", disabled: !session.canEdit }, "Save"),
    h("button", { type: "button", class: flag.enabled ? "danger kill" : "kill", disabled: !session.canPublish,
      onclick: () => toggleKill(flag, () => navigate(location.hash)) }, flag.enabled ? "Kill switch" : "Turn on"),
    flag.draft && h("button", { type: "button", class: "launch", disabled: !session.canEdit, onclick: () => launch(flag) }, "Launch"),
    h("button", { type: "button", class: "danger remove", disabled: !session.canEdit, onclick: () => remove(flag) },
      flag.draft ? "Delete draft" : "Archive")));
  clear(view, form, promoteControl(`/flags/${id}/promote`, environments, flag.environmentId, session.canEdit,
    (created) => `#/flags/${created.id}`));
  drawSliders();
}
