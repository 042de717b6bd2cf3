// What every view shares with the shell: who is signed in and what their token may do, and
// how to move to another view. The shell (app.js) registers the router; views import this
// module, never the shell.
import { get } from "./api.js";

/** What the token may do; views read it to disable what would be refused. */
export const session = { canEdit: false, canPublish: false, actor: null };

/** Loads the session for the current token; false when the token is refused. */
export async function loadSession() {
  try {
    Object.assign(session, await get("/session"));
    return true;
  } catch (e) {
    if (e.status === 401 || e.status === 403) return false;
    throw e;
  }
}

let router = async () => {};

/** The shell's router: draws the view the URL's hash names. */
export function setRouter(route) {
  router = route;
}

/** Shows `hash` and resolves once it is drawn (so a save's toast comes after its page). */
export function navigate(hash) {
  if (location.hash !== hash) history.pushState(null, "", hash);
  return router();
}
