// The events of one id: filters, newest first, "load older" by `before`, rows that
// expand to the original and its result, and the live tail.

import * as api from "./api.js";
import { detailsOf } from "./details.js";
import { $, fill, h, hashOf, localTime, shownId, statusOf, summaryOf, timeOf } from "./dom.js";
import * as download from "./download.js";

const PAGE = 50;
const SCAN_PAGE = 200; // per request while a status is filtered in the page
const SCAN_ROUNDS = 10;
const TOP_PX = 40;

/** What the server filters: the errors-only lists for error and malformed. */
const serverStatus = (status) => (status === "error" || status === "malformed" ? "error" : "");

export class EventView {
  /** `hooks.failed(error, retry, stateEl)`, `hooks.reset(id)`, `hooks.arrived()` (a live
   * entry came), `hooks.left()` (the filters changed: no longer at one entry). */
  constructor(hooks) {
    this.hooks = hooks;
    this.namespace = "token";
    this.id = null;
    this.seq = 0;
    this.before = null;
    this.seen = new Set();
    this.buffer = [];
    this.paused = false;
    this.tail = null;
    this.at = null; // a uid: the list starts at that entry (a link to it)
    this.list = $("events");
    this.stateEl = $("events-state");
    this.pane = $("events-pane");
    this.bindFilters();
    $("older").addEventListener("click", () => this.load({ older: true }));
    $("live").addEventListener("change", () => this.retail());
    $("tail-pause").addEventListener("click", () => this.setPaused(!this.paused));
    $("tail-show").addEventListener("click", () => this.flush(true));
    $("reset").addEventListener("click", () => this.hooks.reset(this.id));
    $("download").addEventListener("click", () => this.download());
    const onScroll = () => {
      if (!this.paused && this.buffer.length && this.atTop()) this.flush(false);
    };
    this.pane.addEventListener("scroll", onScroll, { passive: true });
    window.addEventListener("scroll", onScroll, { passive: true });
  }

  bindFilters() {
    const reload = () => {
      if (this.at) this.hooks.left();
      this.at = null;
      this.load();
      this.retail();
    };
    let debounce = null;
    $("f-q").addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(reload, 300);
    });
    $("f-status").addEventListener("change", reload);
    $("f-time").addEventListener("change", () => {
      $("f-custom").hidden = $("f-time").value !== "custom";
      reload();
    });
    $("f-since").addEventListener("change", reload);
    $("f-until").addEventListener("change", reload);
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    $("f-clear").addEventListener("click", () => {
      for (const id of ["f-status", "f-time", "f-q", "f-since", "f-until"]) $(id).value = "";
      $("f-custom").hidden = true;
      reload();
    });
  }

  /** The filters as query parameters (times in UTC), and the status to check here. */
  filters() {
    const status = $("f-status").value;
    const time = $("f-time").value;
    let since = "";
    let until = "";
    if (time === "custom") {
      const iso = (value) => (value ? new Date(value).toISOString() : "");
      since = iso($("f-since").value);
      until = iso($("f-until").value);
    } else if (time) {
      since = new Date(Date.now() - Number(time) * 1000).toISOString();
    }
    return { status, since, until, q: $("f-q").value.trim() };
  }

  /** Whether an event passes the filters: the status here, the rest for live entries. */
  matches(event, f, full) {
    const status = statusOf(this.namespace, event);
    if (f.status === "error" ? !["error", "malformed"].includes(status) : f.status && status !== f.status) {
      return false;
    }
    if (!full) return true;
    const t = new Date(timeOf(event)).getTime();
    if (f.since && t < new Date(f.since).getTime()) return false;
    if (f.until && t > new Date(f.until).getTime()) return false;
    return !f.q || JSON.stringify(event).toLowerCase().includes(f.q.toLowerCase());
  }

  /** Show an id (null: none); `at.uid`: from that entry on; `at.status`, `at.q`: those
   * filters (the others cleared). */
  open(namespace, id, at = {}) {
    this.namespace = namespace;
    this.id = id;
    this.at = at.uid || null;
    if (at.uid || at.status || at.q) {
      for (const field of ["f-status", "f-time", "f-q", "f-since", "f-until"]) $(field).value = "";
      $("f-custom").hidden = true;
      $("f-status").value = at.status || "";
      $("f-q").value = at.q || "";
    }
    $("download-state").textContent = "";
    $("events-view").hidden = id === null;
    this.stopTail();
    if (id === null) return;
    // Only the token namespace has malformed bodies, only destinations pending results.
    const only = { malformed: "token", pending: "destination" };
    const status = $("f-status");
    for (const option of status.options) option.hidden = (only[option.value] || namespace) !== namespace;
    if (status.selectedOptions[0]?.hidden) status.value = "";
    fill($("events-title"), h("span", { class: "ns-label", text: namespace === "token" ? "API key " : "destination " }), h("span", { class: "mono", text: shownId(id) }));
    this.load();
    this.retail();
  }

  /** The newest page again (or the next older one). */
  async load({ older = false } = {}) {
    const seq = ++this.seq;
    const f = this.filters();
    if (!older) {
      this.before = null;
      $("at-note").hidden = true;
      this.loading = true; // live entries wait in the buffer meanwhile
      this.buffer = [];
      this.showNew();
      this.list.setAttribute("aria-busy", "true");
      fill(this.stateEl, h("span", { class: "loading", text: "Loading events…" }));
    }
    $("older").disabled = true;
    let result;
    try {
      const first = !older && this.at ? await this.entryAt(() => seq !== this.seq) : [];
      result = await this.fetchPage(f, older ? this.before : this.at, () => seq !== this.seq);
      if (result) result.events = first.concat(result.events);
    } catch (error) {
      if (seq !== this.seq) return;
      this.list.removeAttribute("aria-busy");
      if (!older) fill(this.list);
      $("older").hidden = true;
      $("events-counts").textContent = "";
      this.hooks.failed(error, () => this.load({ older }), this.stateEl);
      return;
    } finally {
      $("older").disabled = false;
      if (seq === this.seq) this.loading = false;
    }
    if (!result || seq !== this.seq) return;
    this.list.removeAttribute("aria-busy");
    this.before = result.before;
    if (!older) this.seen.clear();
    const rows = result.events.filter((e) => !this.seen.has(e.uid)).map((e) => this.row(e));
    if (older) this.list.append(...rows);
    else fill(this.list, rows);
    if (!older && this.at) this.markAt();
    if (!older && this.buffer.length) this.incoming([]); // what arrived while loading
    $("older").hidden = !result.more;
    this.header(result.answer, result.truncated);
    this.stateNote(f, older, result);
  }

  /** The entry a link named, alone (it may have expired: then the newest page). */
  async entryAt(stale) {
    const { body } = await api.events({ namespace: this.namespace, id: this.id, uid: this.at });
    if (stale() || body.events.length) return body.events;
    this.at = null;
    fill($("at-note"), "That entry is no longer cached: the newest events are shown.");
    $("at-note").hidden = false;
    return [];
  }

  /** The entry a link named: opened, marked, in view; a note leads back to the newest. */
  markAt() {
    const li = [...this.list.children].find((row) => row.dataset.uid === this.at);
    if (!li) return;
    li.classList.add("at");
    li.querySelector(".event-btn").click();
    fill($("at-note"), "Starting at the linked entry, then older ones. ",
      h("a", { href: hashOf(this.namespace, this.id), text: "Show the newest events" }));
    $("at-note").hidden = false;
  }

  /** Pages of the API until a page's worth matched (a status filtered here) or no more. */
  async fetchPage(f, before, stale) {
    const local = f.status && f.status !== "error";
    const limit = local ? SCAN_PAGE : PAGE;
    const events = [];
    let answer = null;
    let more = true;
    let truncated = false;
    for (let round = 0; round < (local ? SCAN_ROUNDS : 1) && more && events.length < PAGE; round++) {
      const params = { namespace: this.namespace, id: this.id, status: serverStatus(f.status), limit, since: f.since, until: f.until, q: f.q, before };
      const { body, headers } = await api.events(params);
      if (stale()) return null;
      answer = body;
      const cut = headers.get("X-Events-Cache-Truncated") === "true";
      truncated ||= cut;
      const got = body.events;
      // A page cut by the sidecar's bound (events or bytes) holds fewer: more follow.
      more = got.length > 0 && (got.length >= Math.min(limit, body.cache_capacity_per_interval) || cut);
      if (got.length) before = got[got.length - 1].uid;
      events.push(...got.filter((e) => this.matches(e, f, false)));
    }
    return { events, answer, more, before, truncated };
  }

  header(answer, truncated) {
    const shown = this.list.childElementCount;
    const parts = [`${answer.total_events} cached`, `${shown} shown`];
    if (truncated) parts.push("page cut at the sidecar's answer bound (sidecar.api.max_response_bytes or max_response_events): Load older for the rest");
    $("events-counts").textContent = parts.join(" · ");
    const limited = $("limited");
    limited.hidden = !answer.last_minute_limited;
    limited.textContent = answer.last_minute_limited
      ? `${answer.last_minute_limited} events of this id were rate limited in the last minute: ` +
        `the cache keeps at most ${answer.cache_capacity_per_interval} per ${answer.interval_seconds} s ` +
        "(server.cache.events.size and time_window_sec), so some are missing here."
      : "";
  }

  stateNote(f, older, result) {
    if (this.list.childElementCount) {
      fill(this.stateEl);
      return;
    }
    if (f.status || f.since || f.until || f.q) {
      fill(this.stateEl, h("p", { class: "hint" }, "No event of this id matches these filters. ",
        h("button", { type: "button", class: "linkish", text: "Clear the filters", onclick: () => $("f-clear").click() })));
    } else if (!older) {
      fill(this.stateEl, h("p", { class: "hint", text: "This id has no cached events (they may have expired or been reset)." }));
    }
    if (!result.more) $("older").hidden = true;
  }

  row(event) {
    this.seen.add(event.uid);
    const status = statusOf(this.namespace, event);
    const t = timeOf(event);
    const li = h("li", { class: `event s-${status}`, "data-uid": event.uid || "", "data-status": status });
    const button = h("button", { type: "button", class: "event-btn", "aria-expanded": "false" },
      h("time", { class: "ev-time mono", datetime: t, title: t, text: localTime(t) }),
      h("span", { class: `badge s-${status}`, text: status }),
      h("span", { class: "ev-summary", text: summaryOf(event) }));
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", String(!open));
      if (open) li.querySelector(".details")?.remove();
      else li.append(this.details(event));
    });
    li.append(button);
    return li;
  }

  details(event) {
    return detailsOf(event, { namespace: this.namespace, id: this.id, status: serverStatus(this.filters().status) });
  }

  /** What the filters select, as an NDJSON file. */
  async download() {
    const button = $("download");
    const note = $("download-state");
    const f = this.filters();
    const params = { namespace: this.namespace, id: this.id, status: serverStatus(f.status), since: f.since, until: f.until, q: f.q };
    button.disabled = true;
    note.textContent = "Reading the events…";
    try {
      const lines = await download.selected({ params, keep: (e) => this.matches(e, f, false), progress: (n) => (note.textContent = `Reading the events… ${n}`) });
      const name = download.save(lines, this.namespace, this.id);
      note.textContent = `${lines.length} event${lines.length === 1 ? "" : "s"} saved as ${name} (NDJSON)`;
      note.dataset.count = String(lines.length);
    } catch (error) {
      note.textContent = `The download failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // -- live tail --------------------------------------------------------------------

  retail() {
    this.stopTail();
    const on = $("live").checked && this.id !== null && !this.at; // at an entry: no tail
    $("tail-bar").hidden = !on;
    if (!on) {
      this.setPaused(false);
      return;
    }
    const f = this.filters();
    const params = { namespace: this.namespace, id: this.id, status: serverStatus(f.status) };
    this.tail = api.follow(params, {
      state: (state, detail) => this.tailState(state, detail),
      entry: (data) => {
        const current = this.filters();
        this.hooks.arrived();
        if (data.id === this.id && this.matches(data.event, current, true)) this.incoming([data.event]);
      },
      gap: (data) => {
        const missed = data.missed === null ? "some" : data.missed;
        this.tailState("gap", { missed, reason: data.reason });
      },
    });
  }

  stopTail() {
    if (this.tail) this.tail.stop();
    this.tail = null;
    this.buffer = [];
    this.showNew();
  }

  tailState(state, detail) {
    const el = $("tail-state");
    el.className = `tail-${state}`;
    if (state === "live") {
      el.textContent = "● Live: new events appear at the top";
      // Resumed from the last entry: the sidecar sent what was cached meanwhile first.
      if (detail.reconnected && !detail.resumed) this.catchUp();
    } else if (state === "connecting") el.textContent = "Connecting…";
    else if (state === "retrying") {
      const why = detail.error ? detail.error.message : "the stream ended";
      el.textContent = `Reconnecting in ${Math.ceil(detail.delay / 1000)} s (${why})`;
    } else if (state === "gap") el.textContent = `● Live; ${detail.missed} events were missed (${detail.reason}): reload to see them`;
    else if (state === "refused") this.hooks.failed(detail.error, () => this.retail(), this.stateEl);
  }

  /** After a reconnect with no entry to resume from: what was cached meanwhile, from the
   * newest page. */
  async catchUp() {
    try {
      const result = await this.fetchPage(this.filters(), null, () => false);
      const fresh = result.events.filter((e) => !this.seen.has(e.uid));
      if (fresh.length) this.incoming(fresh);
    } catch {
      // the next reconnect tries again
    }
  }

  atTop() {
    return this.pane.scrollTop < TOP_PX && window.scrollY < TOP_PX;
  }

  incoming(events) {
    const fresh = events.filter((e) => !this.seen.has(e.uid) && !this.buffer.some((b) => b.uid === e.uid));
    this.buffer = fresh.concat(this.buffer).filter((e) => !this.seen.has(e.uid));
    if (!this.buffer.length) return this.showNew();
    if (this.loading || this.paused || !this.atTop()) this.showNew();
    else this.flush(false);
  }

  flush(scroll) {
    const rows = this.buffer.map((e) => this.row(e));
    for (const r of rows) r.classList.add("arrived");
    this.buffer = [];
    this.list.prepend(...rows);
    if (rows.length) fill(this.stateEl);
    this.showNew();
    if (scroll) {
      this.pane.scrollTop = 0;
      window.scrollTo(0, 0);
    }
    const counts = $("events-counts").textContent.replace(/\d+ shown/, `${this.list.childElementCount} shown`);
    $("events-counts").textContent = counts;
  }

  setPaused(paused) {
    this.paused = paused;
    const button = $("tail-pause");
    button.setAttribute("aria-pressed", String(paused));
    button.textContent = paused ? "Resume" : "Pause";
    if (!paused && this.buffer.length && this.atTop()) this.flush(false);
    this.showNew();
  }

  showNew() {
    const n = this.buffer.length;
    const note = $("tail-new");
    note.hidden = !n && !this.paused;
    note.textContent = n ? `paused, ${n} new` : "paused";
    $("tail-show").hidden = !n;
  }
}
