// JSON drawn as a foldable, highlighted tree. Every value reaches the page as a text
// node (never as HTML), and the text of the tree is exactly JSON.stringify(value, null, 2),
// so selecting and copying it gives the JSON back. Bounded: a big document opens only
// its first level, folded parts are drawn when first unfolded, and a container draws at
// most MAX_CHILDREN members before a "show the rest" button.

import { h } from "./dom.js";

const OPEN_ALL_BELOW = 1500; // values: a document with fewer opens whole
const MAX_CHILDREN = 1000; // members of one object or array drawn at first

/** How many values `value` holds, counting up to `limit`. */
function count(value, limit) {
  let n = 0;
  const stack = [value];
  while (stack.length && n < limit) {
    const v = stack.pop();
    n += 1;
    if (v && typeof v === "object") for (const child of Object.values(v)) stack.push(child);
  }
  return n;
}

const pad = (depth) => "  ".repeat(depth);

function leaf(value) {
  if (value === null) return h("span", { class: "j-null", text: "null" });
  if (typeof value === "string") return h("span", { class: "j-str", text: JSON.stringify(value) });
  if (typeof value === "number") return h("span", { class: "j-num", text: JSON.stringify(value) });
  if (typeof value === "boolean") return h("span", { class: "j-bool", text: String(value) });
  return h("span", { class: "j-null", text: JSON.stringify(value) ?? "null" });
}

function summary(value) {
  const n = Array.isArray(value) ? value.length : Object.keys(value).length;
  if (Array.isArray(value)) return `${n} item${n === 1 ? "" : "s"}`;
  return `${n} key${n === 1 ? "" : "s"}`;
}

/** The members of a container from `start`, each on its line, into `body`. */
function members(body, value, depth, openDepth, start) {
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const end = Math.min(entries.length, start + MAX_CHILDREN);
  for (let i = start; i < end; i++) {
    const [key, child] = entries[i];
    body.append("\n" + pad(depth + 1));
    if (!Array.isArray(value)) body.append(h("span", { class: "j-key", text: JSON.stringify(key) }), ": ");
    body.append(node(child, depth + 1, openDepth));
    if (i < entries.length - 1) body.append(h("span", { class: "j-punct", text: "," }));
  }
  if (end < entries.length) {
    const rest = entries.length - end;
    const more = h("button", { type: "button", class: "linkish j-more", "aria-label": `Show the other ${rest} members` });
    more.dataset.label = ` … ${rest} more`;
    more.addEventListener("click", () => {
      more.remove();
      members(body, value, depth, openDepth, end);
    });
    body.append(more);
    return;
  }
  body.append("\n" + pad(depth));
}

/** One value at `depth`; containers at a depth below `openDepth` open. */
function node(value, depth, openDepth) {
  if (!value || typeof value !== "object") return leaf(value);
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  const empty = (Array.isArray(value) ? value.length : Object.keys(value).length) === 0;
  if (empty) return h("span", { class: "j-punct", text: open + close });
  const body = h("span", { class: "j-body" });
  let drawn = false;
  const draw = () => {
    if (!drawn) members(body, value, depth, openDepth, 0);
    drawn = true;
  };
  const opener = h("span", { class: "j-punct j-open", "data-summary": summary(value), text: open });
  const toggle = h("button", { type: "button", class: "j-toggle" });
  const wrap = h("span", { class: "j-node" }, toggle, opener, body, h("span", { class: "j-punct", text: close }));
  const set = (unfolded) => {
    if (unfolded) draw();
    body.hidden = !unfolded;
    wrap.classList.toggle("folded", !unfolded);
    toggle.setAttribute("aria-expanded", String(unfolded));
    toggle.setAttribute("aria-label", `${unfolded ? "Fold" : "Unfold"} ${summary(value)}`);
  };
  toggle.addEventListener("click", (e) => {
    e.stopPropagation();
    set(body.hidden);
  });
  set(depth < openDepth);
  return wrap;
}

/** The tree of a parsed JSON value, in a <pre> (the caller's). */
export function jsonTree(value) {
  const openDepth = count(value, OPEN_ALL_BELOW) < OPEN_ALL_BELOW ? Infinity : 1;
  return h("code", { class: "json" }, node(value, 0, openDepth));
}

/** The parsed value of a field: an object or array (a string holding one, parsed), else
 * undefined (shown as plain text). */
export function jsonOf(value) {
  if (value && typeof value === "object") return value;
  if (typeof value !== "string") return undefined;
  try {
    const parsed = JSON.parse(value);
    return parsed && typeof parsed === "object" ? parsed : undefined;
  } catch {
    return undefined;
  }
}
