// The dashboard's shell: who is signed in, and which view the URL's hash names.
import { setToken, token } from "./api.js";
import { clear, h } from "./dom.js";
import { renderAudit, renderList, renderNewExperiment } from "./lists.js";
import { renderExperiment } from "./experiment.js";
import { renderFlag, renderFlags } from "./flags.js";
import { renderHistory } from "./history.js";
import { renderHoldout } from "./holdout.js";
import { renderResults } from "./results.js";
import { loadSession, session, setRouter } from "./session.js";

const routes = [
  [/^#?\/?$/, renderList],
  [/^#\/experiments\/new$/, renderNewExperiment],
  [/^#\/experiments\/([0-9a-f-]{36})\/results$/, renderResults],
  [/^#\/experiments\/([0-9a-f-]{36})$/, renderExperiment],
  [/^#\/environments\/([0-9a-f-]{36})\/history$/, renderHistory],
  [/^#\/environments\/([0-9a-f-]{36})\/flags$/, renderFlags],
  [/^#\/environments\/([0-9a-f-]{36})\/holdout$/, renderHoldout],
  [/^#\/flags\/([0-9a-f-]{36})$/, renderFlag],
  [/^#\/audit$/, renderAudit],
];


function showSession() {
  const box = document.getElementById("session");
  const who = session.actor ? `${session.actor} (${session.role})` : "read-only";
  clear(box, h("span", { class: "who" }, who),
    h("button", { type: "button", class: "link", onclick: () => signIn() }, token() ? "Change token" : "Sign in"),
    token() && h("button", { type: "button", class: "link", onclick: () => { setToken(""); location.reload(); } }, "Sign out"));
}

/** Asks for a token until the API accepts one. */
function signIn(message) {
  const view = document.getElementById("view");
  const input = h("input", { type: "password", id: "token", autocomplete: "current-password", required: true });
  const error = h("p", { class: "field-error", role: "alert", hidden: !message }, message ?? "");
  const form = h("form", { class: "card narrow", onsubmit: async (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    if (await loadSession()) {
      showSession();
      await route();
    } else {
      setToken("");
      error.hidden = false;
      error.textContent = "That token was refused. Tokens come from CLEAVE_ADMIN_TOKENS or CLEAVE_ADMIN_API_TOKEN.";
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "Paste an admin token. It stays in this tab only and is sent to this server's API."),
  h("div", { class: "field" }, h("label", { for: "token" }, "Token"), input, error),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  clear(view, form);
  input.focus();
}

async function route() {
  const view = document.getElementById("view");
  const hash = location.hash || "#/";
  for (const [pattern, render] of routes) {
    const match = hash.split("?")[0].match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll(".top nav a")) {
      link.toggleAttribute("aria-current", link.getAttribute("href") === hash);
    }
    try {
      await render(view, ...match.slice(1));
    } catch (e) {
      if (e.status === 401) return signIn("Your token was refused; sign in again.");
      clear(view, h("div", { class: "card error" }, h("h1", {}, "Could not load this page"), h("p", {}, e.message)));
    }
    return;
  }
  clear(view, h("div", { class: "card" }, h("h1", {}, "Not found"), h("a", { href: "#/" }, "Back to the experiments")));
}

setRouter(route);

window.addEventListener("hashchange", () => {
  route().then(() => document.getElementById("view").focus({ preventScroll: true }));
});

(async () => {
  if (await loadSession()) {
    showSession();
    await route();
  } else {
    showSession();
    signIn();
  }
})();

