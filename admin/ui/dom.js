// Small DOM helpers: elements are built, never parsed from strings, so keys and payloads
// from the API are always text.
import { api } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function percent(share, digits = 1) {
  return `${(share * 100).toFixed(digits)}%`;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
}

/** A labelled field; `path` is the API problem path it answers for. */
export function field(label, input, { path, hint } = {}) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert", hidden: true });
  input.setAttribute("aria-describedby", `${id}-error`);
  return h("div", { class: "field", dataset: path ? { path } : {} },
    h("label", { for: id }, label), input, hint && h("p", { class: "hint" }, hint), error);
}

/**
 * Shows each problem next to the field whose path is the longest prefix of the problem's
 * path (an experiment's problems arrive as `experiments[key].…` and are matched without
 * that prefix); the rest go to the form's summary.
 */
export function showProblems(form, problems, fallbackMessage) {
  clearProblems(form);
  const fields = [...form.querySelectorAll("[data-path]")];
  const summary = form.querySelector(".form-errors");
  const unplaced = [];
  for (const problem of problems) {
    const path = String(problem.path ?? "").replace(/^experiments\[[^\]]*\]\.?/, "");
    // The field whose matching alternative is longest: the most specific place.
    const score = (f) => Math.max(-1, ...f.dataset.path.split("|")
      .filter((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`))
      .map((p) => p.length));
    const target = fields.filter((f) => score(f) >= 0).sort((a, b) => score(b) - score(a))[0];
    // The target's own error line first (a row or condition), else its field's.
    const error = target?.querySelector(":scope > .field-error") ?? target?.querySelector(".field-error");
    if (error) {
      error.hidden = false;
      error.append(h("span", {}, problem.message));
      target.classList.add("invalid");
      target.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
    } else unplaced.push(problem.path ? `${problem.path}: ${problem.message}` : problem.message);
  }
  if (summary) {
    const lines = unplaced.length ? unplaced : problems.length ? [] : [fallbackMessage];
    summary.hidden = lines.filter(Boolean).length === 0;
    clear(summary, lines.filter(Boolean).map((l) => h("p", {}, l)));
  }
}

export function clearProblems(form) {
  for (const error of form.querySelectorAll(".field-error")) {
    error.hidden = true;
    error.replaceChildren();
  }
  for (const f of form.querySelectorAll(".invalid")) f.classList.remove("invalid");
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  const summary = form.querySelector(".form-errors");
  if (summary) {
    summary.hidden = true;
    summary.replaceChildren();
  }
}

/** Runs a save; a refusal lands next to the fields, anything else in the form's summary. */
export async function submit(form, action, done) {
  clearProblems(form);
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const result = await action();
    await done?.(result);
    toast("Saved");
  } catch (e) {
    showProblems(form, e.problems ?? [], e.message);
  } finally {
    if (button) button.disabled = false;
  }
}

export function toast(message, kind = "ok") {
  const region = document.getElementById("toasts");
  const note = h("div", { class: `toast toast-${kind}`, role: "status" }, message);
  region.append(note);
  setTimeout(() => note.remove(), 4000);
}

export function formErrors() {
  return h("div", { class: "form-errors", role: "alert", hidden: true });
}

/** A modal dialog; resolves with the button's value, or null when dismissed. */
export function ask(title, body, buttons) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": "dialog-title" },
      h("h2", { id: "dialog-title" }, title), body,
      h("div", { class: "actions" }, buttons.map(([label, value, kind]) =>
        h("button", { type: "button", class: kind ?? "", onclick: () => { dialog.close(); resolve(value); } }, label))));
    dialog.addEventListener("cancel", () => resolve(null));
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * "Copy to another environment": the other environments to choose from, and a button that
 * posts `{environmentId}` to `path` and opens what `open(created)` names.
 */
export function promoteControl(path, environments, currentEnv, canEdit, open) {
  const others = environments.filter((e) => e.id !== currentEnv);
  const target = h("select", { id: "promote-env", "aria-label": "Copy to environment" },
    others.map((e) => h("option", { value: e.id }, e.name)));
  const copy = async () => {
    try {
      const created = await api("POST", path, { environmentId: target.value });
      toast("Copied");
      location.hash = open(created);
    } catch (e) {
      toast(e.message, "error");
    }
  };
  return others.length > 0 && h("div", { class: "promote", role: "group", "aria-label": "Promote" },
    target, h("button", { type: "button", disabled: !canEdit, onclick: copy }, "Copy to environment"));
}
