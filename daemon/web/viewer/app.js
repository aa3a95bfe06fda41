// The viewer: the admin token once per tab, then the id list beside the namespace's
// overview or one id's events.
// Everything it shows comes from the public query API; event content is text only.

import * as api from "./api.js";
import { $, fill, h, hashOf } from "./dom.js";
import { EventView } from "./events.js";
import { IdList } from "./ids.js";
import { Overview } from "./overview.js";

const NAMESPACES = ["token", "destination"];
const state = { namespace: "token", id: null, at: {} };

// -- where we are: the URL fragment holds the namespace and id, and what a link to it
// names (uid: an entry; status, q: filters); never the token --------------------------

function readHash() {
  const raw = location.hash.slice(1);
  const mark = raw.indexOf("?");
  const [ns, ...rest] = (mark < 0 ? raw : raw.slice(0, mark)).split("/");
  const params = new URLSearchParams(mark < 0 ? "" : raw.slice(mark + 1));
  state.namespace = NAMESPACES.includes(ns) ? ns : "token";
  state.at = { uid: params.get("uid") || "", status: params.get("status") || "", q: params.get("q") || "" };
  try {
    state.id = rest.length ? decodeURIComponent(rest.join("/")) || null : null;
  } catch {
    state.id = null; // a fragment edited by hand: start from the list
  }
}

function writeHash() {
  const hash = hashOf(state.namespace, state.id);
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// -- errors a person can act on --------------------------------------------------------

function failed(error, retry, target) {
  if (error.status === 401) {
    signOut("The sidecar refused the token (it may have been rotated). Enter it again.");
    return;
  }
  let title;
  let detail = error.message;
  if (error.status === 503) {
    title = "Redis is unavailable (503)";
    detail = `${error.message.replace(/\.+$/, "")}. The sidecar keeps taking events and counts what it cannot write; the cache answers again once Redis is back.`;
  } else if (error.status === 0) title = "The sidecar does not answer";
  else if (error.status === 400) title = "The sidecar refused this query (400)";
  else title = `The sidecar answered ${error.status}`;
  fill(target, h("div", { class: "banner error", role: "alert" },
    h("strong", { text: title }), h("span", { text: detail }),
    h("button", { type: "button", text: "Retry", onclick: retry })));
}

// -- the parts -------------------------------------------------------------------------

const ids = new IdList({ select: (id) => select(id), failed });
const arrived = () => ids.refresh();
const view = new EventView({ failed, reset: (id) => confirmReset(id), arrived, left: () => writeHash() });
const overview = new Overview({ failed, arrived });

/** Show an id (null: the overview); `at`: what a link named (an entry, filters). */
function select(id, at = {}) {
  state.id = id;
  if (!at.uid && !at.status && !at.q) writeHash();
  ids.mark(id);
  $("main").classList.toggle("has-selection", id !== null);
  view.open(state.namespace, id, at);
  if (id === null) overview.show(state.namespace);
  else overview.hide();
  if (id !== null && window.matchMedia("(max-width: 760px)").matches) window.scrollTo(0, 0);
}

/** Show a namespace's ids, and its overview or one of its ids. */
function switchNamespace(namespace, id = null, at = {}) {
  state.namespace = namespace;
  for (const button of document.querySelectorAll(".ns button")) {
    button.setAttribute("aria-pressed", String(button.dataset.ns === namespace));
  }
  select(id, at);
  ids.show(namespace, id);
}

function confirmReset(id) {
  const dialog = $("confirm");
  const what = state.namespace === "token" ? "API key" : "destination";
  fill($("confirm-text"),
    `Forget every cached event of the ${what} `, h("code", { text: id }),
    "? Both its lists, its place in the id list and its limited counts are removed from Redis, for every sidecar. New events of it are cached again as they come.");
  const ok = $("confirm-ok");
  ok.onclick = async () => {
    ok.disabled = true;
    try {
      const answer = (await api.reset(state.namespace, id)).body;
      dialog.close();
      select(null);
      await ids.load();
      fill($("ids-state"), h("p", { class: "banner ok", role: "status" },
        h("code", { text: id }), ` was reset (${answer.deleted_ids} id${answer.deleted_ids === 1 ? "" : "s"} forgotten).`));
    } catch (error) {
      dialog.close();
      failed(error, () => confirmReset(id), $("events-state"));
    } finally {
      ok.disabled = false;
    }
  };
  $("confirm-cancel").onclick = () => dialog.close();
  dialog.showModal();
  $("confirm-cancel").focus();
}

// -- the token -------------------------------------------------------------------------

function showLogin(message) {
  $("main").hidden = true;
  $("signout").hidden = true;
  $("ns").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token-input").value = "";
  $("token-input").focus();
}

function signOut(message) {
  api.token.clear();
  view.open(state.namespace, null);
  overview.hide();
  showLogin(message);
}

async function login(event) {
  event.preventDefault();
  const secret = $("token-input").value.trim();
  const button = event.target.querySelector("button[type=submit]");
  if (!secret) return;
  button.disabled = true;
  $("login-error").textContent = "Checking…";
  try {
    await api.summary({ namespace: state.namespace, limit: 1 }, { secret });
  } catch (error) {
    if (error.status === 401) {
      $("login-error").textContent = `Wrong token: the sidecar refused it (401: ${error.message}).`;
      $("token-input").select();
      return;
    } else if (error.status === 0) {
      $("login-error").textContent = `The sidecar does not answer: ${error.message}.`;
      return;
    } // 503 and the like: the token was accepted first; the page says the rest
  } finally {
    button.disabled = false;
  }
  api.token.set(secret);
  start();
}

function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("signout").hidden = false;
  $("ns").hidden = false;
  switchNamespace(state.namespace, state.id, state.at);
}

/** A link of the page (a journey's step, a stream row, a signature's id) was followed. */
function followed() {
  if (!api.token.get() || $("main").hidden) return;
  const shown = state.namespace;
  readHash();
  if (state.namespace !== shown) switchNamespace(state.namespace, state.id, state.at);
  else select(state.id, state.at);
}

// -- wiring ----------------------------------------------------------------------------

for (const button of document.querySelectorAll(".ns button")) {
  button.addEventListener("click", () => {
    if (button.dataset.ns !== state.namespace || state.id !== null) switchNamespace(button.dataset.ns);
  });
}
$("login-form").addEventListener("submit", login);
window.addEventListener("hashchange", followed);
$("signout").addEventListener("click", () => signOut(""));
$("back").addEventListener("click", () => select(null));
$("skip").addEventListener("click", () => $("events-pane").focus());
document.addEventListener("keydown", (e) => {
  const typing = e.target.closest("input, select, textarea, dialog");
  if (e.key === "/" && !typing && !$("main").hidden) {
    e.preventDefault();
    $("id-search").focus();
  }
});

readHash();
if (api.token.get()) start();
else showLogin("");
