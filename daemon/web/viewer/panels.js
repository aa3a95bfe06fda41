// An event's text panels (original, result, error), cut when huge: the sidecar answers
// an event longer than its byte bound with fields cut (`cut`: their whole lengths), and
// a text too long to draw well is cut here. "Show all" asks for the entry by `uid=`,
// which the sidecar answers whole.

import * as api from "./api.js";
import { h, pretty } from "./dom.js";
import { copyButton } from "./ids.js";
import { jsonOf, jsonTree } from "./json.js";

const SHOWN_CHARS = 65536; // of a text, drawn before "Show all"

function size(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** A titled text with a copy button; `value` (parsed JSON) is drawn as a foldable tree. */
function panel(title, text, kind, value, ...extra) {
  const json = value === undefined ? undefined : jsonOf(value);
  return h("section", { class: `panel panel-${kind}` },
    h("div", { class: "panel-head" }, h("h3", { text: title }), copyButton(text)),
    ...extra,
    json === undefined ? h("pre", { tabindex: "0", text }) : h("pre", { tabindex: "0", class: "json-pre" }, jsonTree(json)));
}

const JSON_FIELDS = ["original", "success"];

/**
 * The panel of one field of `event`. `whole(uid)` fetches the entry whole (a promise of
 * the event, or null when it is no longer cached).
 */
export function fieldPanel(event, field, title, kind, text, whole) {
  const cutBytes = event.cut && event.cut[field];
  const value = JSON_FIELDS.includes(field) ? event[field] : undefined;
  if (!cutBytes && text.length <= SHOWN_CHARS) return panel(title, text, kind, value);
  const shown = cutBytes ? String(event[field]) : text.slice(0, SHOWN_CHARS);
  const total = cutBytes || new Blob([text]).size;
  const note = h("p", { class: "cut-note", "data-bytes": total },
    `Showing the first ${size(new Blob([shown]).size)} of ${size(total)}. `);
  const button = h("button", { type: "button", class: "linkish show-all", text: "Show all" });
  note.append(button);
  const section = panel(title, shown, kind, undefined, note); // a beginning: plain text
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Loading…";
    try {
      const full = cutBytes ? await whole(event.uid) : event;
      if (!full || full[field] === undefined) {
        note.textContent = "This event is no longer cached: only its beginning is shown.";
        return;
      }
      const json = JSON_FIELDS.includes(field);
      const text = json ? pretty(full[field]) : String(full[field]);
      section.replaceWith(panel(title, text, kind, json ? full[field] : undefined));
    } catch (e) {
      button.disabled = false;
      button.textContent = "Show all";
      note.title = e.message;
    }
  });
  return section;
}

/** The entry with this uid, whole, from the lists the page shows; null when gone. */
export async function wholeEntry(params, uid) {
  const { body } = await api.events({ ...params, uid });
  return body.events.length ? body.events[0] : null;
}
