// "Download": every cached event the current filters select, as NDJSON (one entry a
// line, newest first), paged with `before=` within the sidecar's answer bounds; an event
// the answers hold cut is fetched whole by `uid=`.

import * as api from "./api.js";
import { wholeEntry } from "./panels.js";

const LIMIT = 1000; // events per id a page (the sidecar caps it at the list's size)
const MAX_PAGES = 1000; // a list holds at most `size` entries: a guard, not a bound met

/** The selected entries as NDJSON lines; `progress(n)` as pages arrive. */
export async function selected({ params, keep, progress }) {
  const lines = [];
  let before = "";
  for (let page = 0; page < MAX_PAGES; page++) {
    const { body, headers } = await api.events({ ...params, limit: LIMIT, before });
    const got = body.events;
    for (const event of got) {
      if (!keep(event)) continue;
      const whole = event.cut ? await wholeEntry(params, event.uid) : event;
      if (whole) lines.push(JSON.stringify(whole));
    }
    progress(lines.length);
    const cut = headers.get("X-Events-Cache-Truncated") === "true";
    const full = got.length >= Math.min(LIMIT, body.cache_capacity_per_interval || LIMIT);
    if (!got.length || !(full || cut) || got[got.length - 1].uid === before) break;
    before = got[got.length - 1].uid;
  }
  return lines;
}

function fileName(namespace, id) {
  const safe = String(id).replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  return `events-cache-${namespace}-${safe}-${stamp}.ndjson`;
}

/** Save the lines as a file through a Blob link (nothing leaves the page). */
export function save(lines, namespace, id) {
  const blob = new Blob(lines.map((line) => line + "\n"), { type: "application/x-ndjson" });
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = fileName(namespace, id);
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60000);
  return link.download;
}
