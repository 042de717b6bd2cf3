// Allocations as a bar over the 0-9999 bucket space: drag a segment's right edge, use the
// arrow keys on it (Shift for 100 at a time), or type the numbers. Gaps are buckets that
// enrol nobody.
import { api } from "./api.js";
import { session } from "./session.js";
import { clear, field, formErrors, h, submit } from "./dom.js";

const BUCKETS = 10000;
const COLORS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];

export function allocationEditor(experiment, reload) {
  const color = new Map(experiment.variants.map((v, i) => [v.id, COLORS[i % COLORS.length]]));
  const keyOf = new Map(experiment.variants.map((v) => [v.id, v.key]));
  let rows = experiment.allocations.map((a) => ({ variantId: a.variantId, start: a.rangeStart, end: a.rangeEnd }));
  const bar = h("div", { class: "alloc-bar", "aria-hidden": "false" });
  const table = h("div", { class: "alloc-rows" });
  const total = h("p", { class: "muted", "aria-live": "polite" });

  const sorted = () => rows.map((r, i) => ({ ...r, i })).sort((a, b) => a.start - b.start);

  /** Moves row i's end, dragging an adjacent right neighbour's start along. */
  const moveEnd = (i, end) => {
    const row = rows[i];
    const next = sorted().find((r) => r.start > row.start);
    const adjacent = next && next.start === row.end + 1;
    const max = next ? (adjacent ? next.end - 1 : next.start - 1) : BUCKETS - 1;
    row.end = Math.max(row.start, Math.min(max, Math.round(end)));
    if (adjacent) rows[next.i].start = row.end + 1;
    draw();
  };

  const layer = h("div", { class: "alloc-segs" });
  let handles = [];

  const handle = (i) => {
    const el = h("div", { class: "alloc-handle", role: "slider", tabindex: session.canEdit ? 0 : -1,
      "aria-valuemax": BUCKETS - 1, dataset: { index: i } });
    el.addEventListener("keydown", (ev) => {
      const step = ev.shiftKey || ev.key.startsWith("Page") ? 100 : 1;
      const delta = { ArrowRight: step, ArrowUp: step, PageUp: step, ArrowLeft: -step, ArrowDown: -step, PageDown: -step }[ev.key];
      if (!session.canEdit || (delta === undefined && ev.key !== "Home" && ev.key !== "End")) return;
      ev.preventDefault();
      moveEnd(i, ev.key === "Home" ? rows[i].start : ev.key === "End" ? BUCKETS - 1 : rows[i].end + delta);
    });
    el.addEventListener("pointerdown", (ev) => {
      if (!session.canEdit) return;
      ev.preventDefault();
      el.focus();
      el.setPointerCapture(ev.pointerId);
      const rect = bar.getBoundingClientRect();
      const move = (e) => moveEnd(i, ((e.clientX - rect.left) / rect.width) * BUCKETS - 1);
      el.addEventListener("pointermove", move);
      el.addEventListener("pointerup", () => el.removeEventListener("pointermove", move), { once: true });
    });
    return el;
  };

  const draw = () => {
    clear(layer, sorted().map((r) => {
      const seg = h("div", { class: "alloc-seg", title: `${keyOf.get(r.variantId) ?? "?"}: ${r.start}-${r.end}` },
        h("span", {}, keyOf.get(r.variantId) ?? "?"));
      seg.style.left = `${(r.start / BUCKETS) * 100}%`;
      seg.style.width = `${(Math.max(0, r.end - r.start + 1) / BUCKETS) * 100}%`;
      seg.style.background = color.get(r.variantId) ?? "#888";
      return seg;
    }));
    for (const [i, el] of handles.entries()) {
      const row = rows[i];
      el.style.left = `${((row.end + 1) / BUCKETS) * 100}%`;
      el.setAttribute("aria-label", `End of the ${keyOf.get(row.variantId) ?? "?"} range`);
      el.setAttribute("aria-valuemin", row.start);
      el.setAttribute("aria-valuenow", row.end);
      el.setAttribute("aria-valuetext", `${keyOf.get(row.variantId) ?? "?"} ends at bucket ${row.end}`);
      el.dataset.variant = keyOf.get(row.variantId) ?? "";
    }
    const used = rows.reduce((n, r) => n + Math.max(0, r.end - r.start + 1), 0);
    total.textContent = `${(used / 100).toFixed(2)}% of buckets allocated; ${((BUCKETS - used) / 100).toFixed(2)}% enrol nobody`;
    for (const [i, row] of rows.entries()) {
      const inputs = table.querySelectorAll(`[data-row="${i}"] input`);
      if (inputs.length === 2 && document.activeElement !== inputs[0] && document.activeElement !== inputs[1]) {
        inputs[0].value = row.start;
        inputs[1].value = row.end;
      }
    }
  };

  const rowEditor = (row, i) => {
    const variant = h("select", { id: `alloc-${i}-variant`, onchange: (ev) => { row.variantId = ev.target.value; draw(); } },
      experiment.variants.map((v) => h("option", { value: v.id, selected: v.id === row.variantId }, v.key)));
    const number = (id, key) => h("input", { id, type: "number", min: 0, max: BUCKETS - 1, step: 1, value: row[key], inputmode: "numeric",
      oninput: (ev) => { row[key] = Number(ev.target.value); draw(); } });
    return h("div", { class: "alloc-row", dataset: { row: i, path: `allocations[${i}]` } },
      field("Variant", variant), field("From bucket", number(`alloc-${i}-start`, "start")),
      field("To bucket", number(`alloc-${i}-end`, "end")),
      h("button", { type: "button", class: "link", "aria-label": `Remove range ${i + 1}`,
        onclick: () => { rows.splice(i, 1); rebuild(); } }, "Remove"),
      h("p", { class: "field-error", role: "alert", hidden: true }));
  };

  const rebuild = () => {
    clear(table, rows.map(rowEditor));
    handles = rows.map((_, i) => handle(i));
    clear(bar, layer, handles);
    draw();
  };

  const even = () => {
    const n = experiment.variants.length;
    rows = experiment.variants.map((v, i) => ({
      variantId: v.id, start: Math.floor((i * BUCKETS) / n), end: Math.floor(((i + 1) * BUCKETS) / n) - 1,
    }));
    rebuild();
  };

  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "alloc-h", onsubmit: (ev) => {
    ev.preventDefault();
    const allocations = rows.map((r) => ({ variantId: r.variantId, rangeStart: r.start, rangeEnd: r.end }));
    submit(form, () => api("PUT", `/experiments/${experiment.id}/allocations`, { allocations }), reload);
  } },
  h("h2", { id: "alloc-h" }, "Allocation"),
  h("p", { class: "muted small" }, "Each unit draws a bucket in 0-9999 from the salt; the range it falls in is its variant. Moving a boundary moves only the units between the old and new position."),
  formErrors(),
  h("div", { class: "alloc-wrap", dataset: { path: "allocations|variants" } }, bar, h("div", { class: "alloc-scale" }, h("span", {}, "0"), h("span", {}, "5000"), h("span", {}, "9999")),
    h("p", { class: "field-error", role: "alert", hidden: true })),
  total, table,
  h("div", { class: "actions" },
    h("button", { type: "button", disabled: !session.canEdit || experiment.variants.length === 0, onclick: even }, "Split evenly"),
    h("button", { type: "button", disabled: !session.canEdit || experiment.variants.length === 0,
      onclick: () => { rows.push({ variantId: experiment.variants[0].id, start: 0, end: 0 }); rebuild(); } }, "Add range"),
    h("button", { type: "submit", class: "primary", disabled: !session.canEdit }, "Save allocation")));
  rebuild();
  return form;
}
