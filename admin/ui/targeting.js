// Targeting rules: any rule may match; within a rule every condition must hold. A condition
// is an attribute test with any of the operators, an audience, or (for all/any/not groups)
// JSON edited as text.
import { api } from "./api.js";
import { session } from "./session.js";
import { clear, field, formErrors, h, submit } from "./dom.js";

// How the editor words an operator; the operators themselves, and the value each takes, come
// from the API (`GET /targeting/operators`, core's list). One the API adds shows by its name.
const WORDING = {
  eq: "equals", neq: "does not equal", in: "is one of", not_in: "is none of", contains: "contains",
  not_contains: "does not contain", starts_with: "starts with", ends_with: "ends with",
  regex: "matches regex", gt: ">", gte: "≥", lt: "<", lte: "≤", semver_eq: "version =",
  semver_gt: "version >", semver_gte: "version ≥", semver_lt: "version <", semver_lte: "version ≤",
  before: "is before (time)", after: "is after (time)", exists: "is present", not_exists: "is absent",
};

function kindOf(condition) {
  if (condition.audience !== undefined) return "audience";
  if (condition.all || condition.any || condition.not) return "json";
  return "test";
}

function valueText(condition) {
  const v = condition.value;
  if (v === undefined || v === null) return "";
  return Array.isArray(v) ? v.join(", ") : String(v);
}

function parseValue(operand, text) {
  if (operand === "nothing") return undefined;
  if (operand === "list") return text.split(",").map((s) => s.trim()).filter(Boolean);
  if (operand === "number" && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

/** `operators`: `[{name, operand}]` as `GET /targeting/operators` lists them. */
export function targetingEditor(experiment, audiences, operators, reload) {
  const operandOf = (name) => operators.find((o) => o.name === name)?.operand ?? "text";
  // Working copy: [{conditions: [{kind, attribute, operator, value, audience, json}]}]
  const rules = (experiment.targetingRules ?? []).map((rule) => ({
    conditions: rule.conditions.map((c) => ({
      kind: kindOf(c), attribute: c.attribute ?? "", operator: c.operator ?? "eq", value: valueText(c),
      audience: c.audience ?? audiences[0]?.key ?? "", json: JSON.stringify(c, null, 2),
    })),
  }));
  const list = h("div", { class: "rules" });
  const blank = () => ({ kind: "test", attribute: "", operator: "eq", value: "", audience: audiences[0]?.key ?? "", json: "{\n  \"any\": []\n}" });

  const conditionEditor = (condition, r, c) => {
    const at = `targeting[${r}].conditions[${c}]`;
    const kind = h("select", { "aria-label": "Condition kind", onchange: (ev) => { condition.kind = ev.target.value; draw(); } },
      [["test", "Attribute"], ["audience", "Audience"], ["json", "Group (JSON)"]].map(([v, t]) => h("option", { value: v, selected: condition.kind === v }, t)));
    const remove = h("button", { type: "button", class: "link", "aria-label": `Remove condition ${c + 1} of rule ${r + 1}`,
      onclick: () => { rules[r].conditions.splice(c, 1); draw(); } }, "Remove");
    let body;
    if (condition.kind === "test") {
      const attribute = h("input", { id: `rule-${r}-${c}-attribute`, value: condition.attribute, autocomplete: "off", placeholder: "country",
        oninput: (ev) => { condition.attribute = ev.target.value; } });
      const operator = h("select", { id: `rule-${r}-${c}-operator`, onchange: (ev) => { condition.operator = ev.target.value; draw(); } },
        operators.map(({ name }) => h("option", { value: name, selected: condition.operator === name }, WORDING[name] ? `${WORDING[name]} (${name})` : name)));
      const operand = operandOf(condition.operator);
      const value = h("input", { id: `rule-${r}-${c}-value`, value: condition.value, autocomplete: "off", disabled: operand === "nothing",
        placeholder: operand === "list" ? "DE, AT, CH" : "", oninput: (ev) => { condition.value = ev.target.value; } });
      body = [field("Attribute", attribute, { path: `${at}.attribute` }), field("Operator", operator, { path: `${at}.operator` }),
        field(operand === "list" ? "Values (comma-separated)" : "Value", value, { path: `${at}.value` })];
    } else if (condition.kind === "audience") {
      const audience = h("select", { id: `rule-${r}-${c}-audience`, onchange: (ev) => { condition.audience = ev.target.value; } },
        audiences.map((a) => h("option", { value: a.key, selected: condition.audience === a.key }, a.name ? `${a.key} — ${a.name}` : a.key)));
      body = [field("Audience", audience, { path: `${at}.audience`, hint: audiences.length ? undefined : "No audiences defined yet" })];
    } else {
      const json = h("textarea", { id: `rule-${r}-${c}-json`, class: "code", rows: 4, spellcheck: "false", value: condition.json,
        oninput: (ev) => { condition.json = ev.target.value; } });
      body = [field("Condition (JSON: all / any / not)", json, { path: at })];
    }
    return h("div", { class: "condition", dataset: { path: at } }, field("Kind", kind), body, remove,
      h("p", { class: "field-error", role: "alert", hidden: true }));
  };

  const draw = () => {
    clear(list, rules.length === 0 ? h("p", { class: "muted" }, "No rules: every unit can be enrolled.") : null,
      rules.map((rule, r) => h("fieldset", { class: "rule", dataset: { path: `targeting[${r}]` } },
        h("legend", {}, r === 0 ? "Rule 1" : `or rule ${r + 1}`, h("span", { class: "muted small" }, " — every condition must hold")),
        rule.conditions.map((c, i) => conditionEditor(c, r, i)),
        h("div", { class: "actions" },
          h("button", { type: "button", onclick: () => { rule.conditions.push(blank()); draw(); } }, "Add condition"),
          h("button", { type: "button", class: "link", onclick: () => { rules.splice(r, 1); draw(); } }, "Remove rule")))));
  };

  const toApi = () => rules.map((rule, r) => ({
    conditions: rule.conditions.map((c, i) => {
      if (c.kind === "audience") return { audience: c.audience };
      if (c.kind === "json") {
        try {
          return JSON.parse(c.json);
        } catch (e) {
          const err = new Error("A condition is not valid JSON");
          err.problems = [{ path: `targeting[${r}].conditions[${i}]`, message: `not valid JSON: ${e.message}` }];
          throw err;
        }
      }
      const value = parseValue(operandOf(c.operator), c.value);
      return value === undefined ? { attribute: c.attribute.trim(), operator: c.operator }
        : { attribute: c.attribute.trim(), operator: c.operator, value };
    }),
  }));

  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "targeting-h", onsubmit: (ev) => {
    ev.preventDefault();
    submit(form, async () => api("PATCH", `/experiments/${experiment.id}`, { targetingRules: toApi() }), reload);
  } },
  h("h2", { id: "targeting-h" }, "Targeting"),
  h("p", { class: "muted small" }, "A unit is eligible when any rule holds. Attributes come from the request (country, path, query, headers, the context schema)."),
  formErrors(), list,
  h("div", { class: "actions" },
    h("button", { type: "button", onclick: () => { rules.push({ conditions: [blank()] }); draw(); } }, "Add rule"),
    h("button", { type: "submit", class: "primary", disabled: !session.canEdit }, "Save targeting")));
  draw();
  return form;
}
