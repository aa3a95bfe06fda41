// An event's details: its original beside its result (or error, skip reason), its
// journey through the destinations, and the entry's uid, time and ids.

import { h, pretty, shownId } from "./dom.js";
import { journeyPanel } from "./journey.js";
import { fieldPanel, wholeEntry } from "./panels.js";

/** The details of `event`, an entry of `namespace`'s `id` read with `status`. */
export function detailsOf(event, { namespace, id, status }) {
  const whole = (uid) => wholeEntry({ namespace, id, status }, uid);
  const left = event.malformed !== undefined
    ? fieldPanel(event, "malformed", "Malformed body", "original", String(event.malformed), whole)
    : fieldPanel(event, "original", "Original", "original", pretty(event.original), whole);
  let right;
  if (event.success !== undefined) right = fieldPanel(event, "success", "Result", "result", pretty(event.success), whole);
  else if (event.error) right = fieldPanel(event, "error", "Error", "error", String(event.error), whole);
  else if (event.skip) right = fieldPanel(event, "skip", "Skipped", "skipped", String(event.skip), whole);
  else if (namespace === "token") right = fieldPanel(event, "", "Result", "result", "Taken by the ingest: what each destination made of it is in its journey below.", whole);
  else right = fieldPanel(event, "", "Pending", "pending", "No result yet.", whole);
  const meta = h("dl", { class: "meta" },
    ...[["uid", event.uid], ["cached at", event.timestamp], ["API key", event.token_id && shownId(event.token_id)], ["destination", event.destination_id && shownId(event.destination_id)]]
      .filter(([, v]) => v)
      .flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { class: "mono", text: v })]));
  const journey = event.malformed !== undefined ? null : journeyPanel(event);
  return h("div", { class: "details" }, left, right, journey, meta);
}
