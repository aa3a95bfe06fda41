// An event's journey in its details: the API key's entry and what each destination made
// of it (GET journey?event_id=), each step a link to its id's list at that entry.

import * as api from "./api.js";
import { fill, h, hashOf, localTime, shownId, summaryOf, timeOf } from "./dom.js";
import { jsonOf } from "./json.js";

// The sidecar's default sidecar.journey.event_id_from, in its order.
const PATHS = [["eventn_ctx", "event_id"], ["eventn_ctx_event_id"], ["event_id"], ["message_id"], ["messageId"]];
const RECORD_FIELD = "eventn_ctx_event_id";

function idText(value) {
  if (typeof value === "string" && value !== "") return value;
  if (Number.isInteger(value)) return String(value);
  return null;
}

/** The event's own id, found as the sidecar finds it by default; null when none. */
export function eventIdOf(event) {
  const original = jsonOf(event.original);
  for (const path of PATHS) {
    let v = original;
    for (const key of path) v = v && typeof v === "object" && !Array.isArray(v) ? v[key] : undefined;
    if (idText(v) !== null) return idText(v);
  }
  const record = jsonOf(event.success)?.record;
  if (Array.isArray(record)) {
    const field = record.find((f) => f && f.field === RECORD_FIELD);
    if (field && idText(field.value) !== null) return idText(field.value);
  }
  return null;
}

function outcome(entry, status) {
  if (status === "success") {
    const result = jsonOf(entry.success);
    const where = result && (result.table || result.url);
    return where ? `delivered: ${where}` : "delivered";
  }
  return summaryOf(entry);
}

function step({ kind, namespace, id, entry, status, current }) {
  const t = timeOf(entry);
  const what = kind === "API key" ? `received: ${summaryOf(entry)}` : outcome(entry, status);
  const link = h("a", { class: "j-link mono", href: hashOf(namespace, id, { uid: entry.uid }), title: `Open ${shownId(id)} at this entry`, text: shownId(id) });
  return h("li", { class: `j-step s-${status}`, "data-status": status, "data-id": id, "data-uid": entry.uid || "" },
    h("span", { class: `badge s-${status}`, text: status }),
    h("span", { class: "j-kind muted", text: kind }),
    h("span", { class: "j-who" }, link, current ? h("span", { class: "j-here", text: "this entry" }) : null),
    h("time", { class: "j-time mono muted", datetime: t, title: t, text: localTime(t) }),
    h("span", { class: "j-what", title: what, text: what }));
}

function steps(answer, uid) {
  const rows = [
    ...answer.received.map((entry) => step({ kind: "API key", namespace: "token", id: entry.token_id, entry, status: "received", current: entry.uid === uid })),
    ...answer.destinations.map((d) => step({ kind: "destination", namespace: "destination", id: d.destination_id, entry: d.event, status: d.status, current: d.event.uid === uid })),
  ];
  const notes = [];
  if (!answer.received.length) notes.push("No API key entry carries this id (expired, trimmed, or not received through the cache).");
  if (!answer.destinations.length) notes.push("No destination has a result for it yet.");
  return [h("ol", { class: "j-steps" }, rows), ...notes.map((text) => h("p", { class: "hint j-note", text }))];
}

/** The journey section of an event's details; it looks the journey up at once. */
export function journeyPanel(event) {
  const eventId = eventIdOf(event);
  const body = h("div", { class: "j-body", role: "status" });
  const head = h("div", { class: "panel-head" }, h("h3", { text: "Journey" }),
    eventId !== null ? h("span", { class: "j-id mono", title: "event id", text: eventId }) : null);
  const section = h("section", { class: "panel panel-journey" }, head, body);
  if (eventId === null) {
    fill(body, h("p", { class: "hint", text: "This event carries no event id (eventn_ctx.event_id, event_id, message_id…), so its way through the destinations cannot be looked up." }));
    return section;
  }
  const load = async () => {
    fill(body, h("span", { class: "loading", text: "Looking up its journey…" }));
    try {
      const { body: answer, headers } = await api.journey(eventId);
      fill(body, steps(answer, event.uid),
        headers.get("X-Events-Cache-Truncated") === "true" ? h("p", { class: "hint", text: "The answer was cut at the sidecar's byte bound: some steps are missing." }) : null);
    } catch (error) {
      if (error.status === 404) fill(body, h("p", { class: "hint j-none", text: `No journey: ${error.message}.`.replace(/\.\.$/, ".") }));
      else fill(body, h("p", { class: "error-text" }, `The journey could not be looked up (${error.message}). `,
        h("button", { type: "button", class: "linkish", text: "Retry", onclick: load })));
    }
  };
  load();
  return section;
}
