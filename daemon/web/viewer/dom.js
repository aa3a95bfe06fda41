// DOM helpers. Event content only ever reaches the page through text nodes
// (textContent, createTextNode): never innerHTML, never an attribute that runs code.

/** An element: h("li", {class: "x", onclick: f, "aria-label": "y"}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (id) => document.getElementById(id);

/** An entry's status as Jitsu Classic's UI tells it. */
// Invisible characters in an id (controls, and Unicode's format characters: the bidi
// overrides and isolates, zero-width joiners and spaces) are shown as their code points,
// so that an id cannot pass for another: U+202E would show what follows reversed.
const INVISIBLE = /[\p{Cc}\p{Cf}]/gu;

/** An id as the viewer shows it (the id itself is kept for queries). */
export function shownId(id) {
  return String(id).replace(INVISIBLE, (c) => `<U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}>`);
}

export function statusOf(namespace, event) {
  if (event.malformed) return "malformed";
  if (event.error) return "error";
  if (event.skip) return "skip";
  if (event.success || namespace === "token") return "success";
  return "pending";
}

/** When it happened: `timestamp`, else the original's `_timestamp` or `utc_time`. */
export function timeOf(event) {
  const original = typeof event.original === "object" && event.original ? event.original : {};
  return event.timestamp || original._timestamp || original.utc_time || "";
}

function eventType(event) {
  const original = event.original;
  if (original && typeof original === "object") {
    for (const key of ["event_type", "type", "event"]) {
      if (typeof original[key] === "string") return original[key];
    }
  }
  return "";
}

/** One line: the error (or skip reason), else the event's type. */
export function summaryOf(event) {
  return String(event.error || event.skip || eventType(event) || "—").slice(0, 300); // a row, not the whole text
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** Local time, to the millisecond: 2024-05-01 14:00:00.123 (the title holds the UTC text). */
export function localTime(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return iso || "—";
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${day} ${clock}.${pad(d.getMilliseconds(), 3)}`;
}

/** "12 s ago", "5 min ago", "3 h ago", else the local date. */
export function ago(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (!iso || Number.isNaN(t)) return "—";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return localTime(iso).slice(0, 10);
}

/** JSON pretty-printed; text that holds JSON too; other text as it is. */
export function pretty(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") {
    try {
      const parsed = JSON.parse(value);
      if (parsed && typeof parsed === "object") return JSON.stringify(parsed, null, 2);
    } catch {
      // not JSON: shown as it is
    }
    return value;
  }
  return JSON.stringify(value, null, 2);
}

/** Copy text; the Clipboard API needs a secure context, the fallback does not. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the selection way
    }
  }
  const area = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  area.remove();
  return copied;
}

/** The page's fragment for an id (and what to show of it: uid, status, q). */
export function hashOf(namespace, id, params = {}) {
  let hash = `#${namespace}${id !== null && id !== undefined ? "/" + encodeURIComponent(id) : ""}`;
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  if (id !== null && id !== undefined && query) hash += "?" + query;
  return hash;
}
