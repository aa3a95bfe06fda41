// The landing page: the namespace's overview. What fails most (GET /api/v1/errors, both
// namespaces), each id's last hour (GET activity) as small charts, and the live stream of
// every id (GET stream with last= backfill), pausable. A section whose endpoint the
// sidecar does not have (404: an older version) stays hidden.

import * as api from "./api.js";
import { $, ago, fill, h, hashOf, localTime, shownId, statusOf, summaryOf, timeOf } from "./dom.js";
import { sparkline } from "./spark.js";

const BACKFILL = 30; // events the stream starts with
const MAX_ROWS = 200; // rows of the stream kept; older ones drop off
const REFRESH_MS = 15000; // signatures and charts, while shown (and the tab is seen)
const TOP_SIGNATURES = 5; // shown at first; "N more" shows the rest of the answers
const MAX_CHARTS = 30;
const PLACEHOLDER = /<(?:n|q|uuid|addr|hex)>/;
const LABEL = { token: "API key", destination: "destination" };

/** The longest literal part of a signature: text every message of it contains. */
export function literalOf(signature) {
  const parts = signature.split(PLACEHOLDER).map((p) => p.trim());
  const longest = parts.reduce((a, b) => (b.length > a.length ? b : a), "");
  return longest.length >= 4 ? longest : "";
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const sum = (values) => (values || []).reduce((a, b) => a + b, 0);

export class Overview {
  /** `hooks.failed(error, retry, stateEl)`, `hooks.arrived()` (a live entry came). */
  constructor(hooks) {
    this.hooks = hooks;
    this.namespace = "token";
    this.tail = null;
    this.timer = null;
    this.paused = false;
    this.buffer = [];
    this.held = 0; // entries come while paused (the buffer keeps the newest MAX_ROWS)
    this.visit = 0; // answers of an earlier visit (another namespace) are dropped
    this.seen = new Set();
    this.list = $("ov-events");
    this.allSignatures = false;
    $("ov-errors-more").addEventListener("click", () => {
      this.allSignatures = !this.allSignatures;
      this.drawSignatures();
    });
    $("ov-pause").addEventListener("click", () => this.setPaused(!this.paused));
    $("ov-show").addEventListener("click", () => this.flush());
  }

  show(namespace) {
    this.hide();
    this.namespace = namespace;
    this.visit += 1;
    $("overview").hidden = false;
    $("ov-title").textContent = `Overview: ${namespace === "token" ? "API keys" : "destinations"}`;
    fill(this.list);
    fill($("ov-signatures")); // a new visit: none unfolded (a refresh keeps them)
    this.all = [];
    this.allSignatures = false;
    $("ov-errors-more").hidden = true;
    this.seen.clear();
    this.setPaused(false);
    fill($("ov-stream-state"), "The newest events of every id show here, then each one as it is cached.");
    this.follow();
    this.first = true; // read once even in a background tab
    this.refresh();
  }

  hide() {
    $("overview").hidden = true;
    if (this.tail) this.tail.stop();
    this.tail = null;
    clearTimeout(this.timer);
    this.timer = null;
    this.buffer = [];
    this.held = 0;
  }

  async refresh() {
    clearTimeout(this.timer);
    const visit = this.visit;
    const first = this.first;
    this.first = false;
    if (!document.hidden || first) await Promise.all([this.signatures(), this.activity()]);
    $("overview").dataset.refreshed = String(Number($("overview").dataset.refreshed || 0) + 1);
    if (this.visit === visit && !$("overview").hidden) this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  // -- what fails most ----------------------------------------------------------------

  async signatures() {
    const section = $("ov-errors");
    const visit = this.visit;
    let answers;
    try {
      answers = await Promise.all(["destination", "token"].map((namespace) => api.errors({ namespace })));
      if (visit !== this.visit) return;
    } catch (error) {
      if (visit !== this.visit) return;
      if (error.status === 404) {
        section.hidden = true; // a sidecar without GET /api/v1/errors
        return;
      }
      section.hidden = false;
      this.hooks.failed(error, () => this.signatures(), $("ov-errors-state"));
      return;
    }
    section.hidden = false;
    this.all = answers.flatMap(({ body }) => body.signatures.map((s) => ({ ...s, namespace: body.namespace })));
    this.all.sort((a, b) => b.count - a.count);
    this.drawSignatures();
  }

  drawSignatures() {
    const all = this.all || [];
    const open = new Set([...$("ov-signatures").querySelectorAll(".sig-btn[aria-expanded=true]")].map((b) => b.dataset.key));
    fill($("ov-signatures"), all.slice(0, this.allSignatures ? all.length : TOP_SIGNATURES).map((s) => this.signature(s, open)));
    fill($("ov-errors-state"), all.length ? null : h("p", { class: "hint", text: "No errors in the last hour." }));
    const more = $("ov-errors-more");
    more.hidden = all.length <= TOP_SIGNATURES;
    more.textContent = this.allSignatures ? "Show the top 5" : plural(all.length - TOP_SIGNATURES, "more signature");
  }

  signature(s, open) {
    const key = `${s.namespace}\n${s.signature}`;
    const ids = s.ids.map((i) => `${shownId(i.id)} (${i.count})`).join(", ");
    const button = h("button", { type: "button", class: "sig-btn", "aria-expanded": "false", "data-key": key },
      h("span", { class: "badge s-error sig-count", "data-count": s.count, text: String(s.count) }),
      h("span", { class: "sig-text mono", text: s.signature }),
      h("span", { class: "sig-where muted", text: `${LABEL[s.namespace]}${s.ids.length === 1 ? "" : "s"} ${ids} · last ${ago(s.last_seen)}` }));
    const li = h("li", { class: "sig", "data-namespace": s.namespace }, button);
    const toggle = (on) => {
      button.setAttribute("aria-expanded", String(on));
      li.querySelector(".sig-details")?.remove();
      if (on) li.append(this.behind(s));
    };
    button.addEventListener("click", () => toggle(button.getAttribute("aria-expanded") !== "true"));
    if (open.has(key)) toggle(true);
    return li;
  }

  /** The ids and events behind a signature: links to each id's errors of that kind. */
  behind(s) {
    const q = literalOf(s.signature);
    const example = s.example || {};
    const exampleId = s.namespace === "token" ? example.token_id : example.destination_id;
    return h("div", { class: "sig-details" },
      h("ul", { class: "sig-ids" }, s.ids.map((i) =>
        h("li", {},
          h("a", { class: "sig-id mono", href: hashOf(s.namespace, i.id, { status: "error", q }), text: shownId(i.id) }),
          h("span", { class: "muted", text: ` ${plural(i.count, "error")}` })))),
      h("p", { class: "muted", text: `first ${localTime(s.first_seen)}, last ${localTime(s.last_seen)}` }),
      example.error
        ? h("p", { class: "sig-example" }, h("span", { class: "muted", text: "example: " }), h("span", { class: "mono", text: String(example.error) }), " ",
          exampleId && example.uid ? h("a", { class: "sig-open", href: hashOf(s.namespace, exampleId, { uid: example.uid }), text: "open this event" }) : null)
        : null);
  }

  // -- activity ---------------------------------------------------------------------

  async activity() {
    const section = $("ov-activity");
    const visit = this.visit;
    let body;
    try {
      body = (await api.activity({ namespace: this.namespace, minutes: 60 })).body;
      if (visit !== this.visit) return;
    } catch (error) {
      if (visit !== this.visit) return;
      section.hidden = true; // 404: a sidecar without it; other errors: the stream says
      return;
    }
    section.hidden = !body.ids.length;
    fill($("ov-charts"), body.ids.slice(0, MAX_CHARTS).map((a) => this.chart(a, body)));
  }

  chart(a, body) {
    const totals = { received: sum(a.received), cached: sum(a.cached), errors: sum(a.errors), limited: sum(a.rate_limited) };
    const text = `${shownId(a.id)}, last ${body.minutes.length} minutes: ${totals.received} received, ${totals.cached} cached, ${totals.errors} errors, ${totals.limited} rate limited`;
    const chart = sparkline([
      { name: "received", values: a.received || [], area: true },
      { name: "limited", values: totals.limited ? a.rate_limited : [] },
      { name: "errors", values: totals.errors ? a.errors : [] },
    ], text);
    return h("li", { class: "chart", "data-id": a.id, "data-received": totals.received, "data-errors": totals.errors, "data-limited": totals.limited },
      h("a", { class: "chart-id mono", href: hashOf(this.namespace, a.id), title: text, text: shownId(a.id) }),
      chart,
      h("span", { class: "chart-totals muted" },
        `${totals.received} received`,
        totals.errors ? h("span", { class: "chart-errors", text: ` · ${plural(totals.errors, "error")}` }) : null,
        totals.limited ? h("span", { class: "chart-limited", text: ` · ${totals.limited} limited` }) : null));
  }

  // -- the live stream ----------------------------------------------------------------

  follow() {
    this.tail = api.follow({ namespace: this.namespace, last: BACKFILL }, {
      state: (state, detail) => this.state(state, detail),
      entry: (data) => {
        this.hooks.arrived();
        if (this.seen.has(data.event.uid) || this.buffer.some((b) => b.event.uid === data.event.uid)) return;
        this.buffer.unshift(data);
        this.buffer.length = Math.min(this.buffer.length, MAX_ROWS); // the newest are shown
        this.held += 1;
        if (this.paused) this.showNew();
        else this.flush();
      },
      gap: (data) => this.state("gap", { missed: data.missed === null ? "some" : data.missed, reason: data.reason }),
    });
  }

  state(state, detail) {
    const el = $("ov-state");
    el.className = `tail-${state}`;
    if (state === "live") el.textContent = "● Live: new events of every id appear at the top";
    else if (state === "connecting") el.textContent = "Connecting…";
    else if (state === "retrying") el.textContent = `Reconnecting in ${Math.ceil(detail.delay / 1000)} s (${detail.error ? detail.error.message : "the stream ended"})`;
    else if (state === "gap") el.textContent = `● Live; ${detail.missed} events were missed (${detail.reason})`;
    else if (state === "refused") this.hooks.failed(detail.error, () => this.show(this.namespace), $("ov-stream-state"));
  }

  row({ id, event }) {
    this.seen.add(event.uid);
    const status = statusOf(this.namespace, event);
    const t = timeOf(event);
    return h("li", { class: `event s-${status}`, "data-uid": event.uid || "", "data-id": id, "data-status": status },
      h("a", { class: "stream-row", href: hashOf(this.namespace, id, { uid: event.uid }) },
        h("time", { class: "ev-time mono", datetime: t, title: t, text: localTime(t) }),
        h("span", { class: "stream-id mono", title: shownId(id), text: shownId(id) }),
        h("span", { class: `badge s-${status}`, text: status }),
        h("span", { class: "ev-summary", text: summaryOf(event) })));
  }

  flush() {
    const rows = this.buffer.map((data) => this.row(data));
    this.buffer = [];
    this.held = 0;
    for (const r of rows) r.classList.add("arrived");
    this.list.prepend(...rows);
    while (this.list.childElementCount > MAX_ROWS) {
      this.seen.delete(this.list.lastElementChild.dataset.uid);
      this.list.lastElementChild.remove();
    }
    if (this.list.childElementCount) fill($("ov-stream-state"));
    this.showNew();
  }

  setPaused(paused) {
    this.paused = paused;
    const button = $("ov-pause");
    button.setAttribute("aria-pressed", String(paused));
    button.textContent = paused ? "Resume" : "Pause";
    if (!paused && this.buffer.length) this.flush();
    this.showNew();
  }

  showNew() {
    const n = this.held;
    const note = $("ov-new");
    note.hidden = !this.paused;
    note.textContent = n ? `paused, ${n} new` : "paused";
    $("ov-show").hidden = !this.buffer.length;
  }
}
