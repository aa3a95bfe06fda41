// The id list: the summary (GET ids) of a namespace, most recently active first.

import * as api from "./api.js";
import { $, ago, copyText, fill, h, shownId } from "./dom.js";

const PAGE = 50;
const EMPTY_POLL_MS = 3000;
const REFRESH_MS = 5000; // while a tail brings events: the list again, at most this often

const FIRST_EVENT = {
  token:
    "curl --unix-socket /var/run/events-cache/ingest.sock -X POST " +
    "http://localhost/v1/token/my-api-key/events -d '{\"event_type\":\"pageview\"}'",
  destination:
    "echo '{\"namespace\":\"destination\",\"id\":\"pg_main\",\"original\":{\"event_type\":\"pageview\"}," +
    "\"error\":\"connection refused\"}' | curl --unix-socket /var/run/events-cache/ingest.sock " +
    "-X POST http://localhost/v1/events --data-binary @-",
};

/** The list; `hooks.select(id)`, `hooks.failed(error, retry, stateEl)`. */
export class IdList {
  constructor(hooks) {
    this.hooks = hooks;
    this.namespace = "token";
    this.selected = null;
    this.cursor = null;
    this.seq = 0;
    this.poll = null;
    this.refreshed = 0;
    this.pending = null;
    this.appended = false;
    this.list = $("ids");
    this.stateEl = $("ids-state");
    this.search = $("id-search");
    let debounce = null;
    this.search.addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => this.load(), 250);
    });
    $("ids-refresh").addEventListener("click", () => this.load());
    $("ids-more").addEventListener("click", () => this.load({ append: true }));
  }

  /** Show another namespace from its first page. */
  show(namespace, selected) {
    this.namespace = namespace;
    this.selected = selected;
    this.search.value = "";
    fill(this.list);
    return this.load();
  }

  mark(selected) {
    this.selected = selected;
    for (const button of this.list.querySelectorAll("button.id-btn")) {
      if (button.dataset.id === selected) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  /** A tail brought an event: the first page again, at most every REFRESH_MS (not while
   * more pages are shown, which a reload would drop). */
  refresh() {
    if (this.pending || this.appended) return;
    const wait = Math.max(0, this.refreshed + REFRESH_MS - Date.now());
    this.pending = setTimeout(() => {
      this.pending = null;
      this.refreshed = Date.now();
      this.load({ quiet: true });
    }, wait);
  }

  /** Load the first page again (or the next one with `append`); `quiet`: keep the
   * focus on the id it was on, say nothing on failure (the next refresh tries again). */
  async load({ append = false, quiet = false } = {}) {
    const seq = ++this.seq;
    clearTimeout(this.poll);
    const q = this.search.value.trim();
    this.appended = append;
    if (!append) {
      this.cursor = null;
      this.list.setAttribute("aria-busy", "true");
      if (!this.list.childElementCount) fill(this.stateEl, h("span", { class: "loading", text: "Loading ids…" }));
    }
    const more = $("ids-more");
    more.disabled = true;
    let page;
    try {
      page = (await api.summary({ namespace: this.namespace, q, limit: PAGE, cursor: append ? this.cursor : "" })).body;
    } catch (error) {
      if (seq !== this.seq) return;
      if (quiet) {
        this.list.removeAttribute("aria-busy");
        return;
      }
      this.list.removeAttribute("aria-busy");
      if (!append) fill(this.list);
      more.hidden = true;
      this.hooks.failed(error, () => this.load({ append }), this.stateEl);
      return;
    } finally {
      more.disabled = false;
    }
    if (seq !== this.seq) return;
    this.list.removeAttribute("aria-busy");
    this.cursor = page.next_cursor;
    more.hidden = !this.cursor;
    const rows = page.ids.map((s) => this.row(s));
    const focused = document.activeElement?.closest?.("#ids .id-btn")?.dataset.id;
    if (append) this.list.append(...rows);
    else fill(this.list, rows);
    if (focused !== undefined) [...this.list.querySelectorAll(".id-btn")].find((b) => b.dataset.id === focused)?.focus();
    this.empty(q, append);
  }

  empty(q, append) {
    if (this.list.childElementCount || append) {
      fill(this.stateEl);
      return;
    }
    if (q) {
      fill(this.stateEl, h("p", { class: "hint" }, "No id matches “", h("code", { text: q }), "”."));
      return;
    }
    const command = FIRST_EVENT[this.namespace];
    const label = this.namespace === "token" ? "API keys" : "destinations";
    fill(
      this.stateEl,
      h("div", { class: "empty" },
        h("p", { class: "empty-title", text: `No events of any ${label} in the cache yet.` }),
        h("p", { text: "Send a first one from the ingest pod (kubectl exec), and it shows here:" }),
        h("pre", { class: "command", tabindex: "0", text: command }),
        copyButton(command)),
    );
    this.poll = setTimeout(() => this.load(), EMPTY_POLL_MS); // notice the first event
  }

  row(s) {
    const failing = s.error_events > 0;
    const button = h(
      "button",
      {
        type: "button",
        class: "id-btn",
        "data-id": s.id,
        "aria-current": s.id === this.selected ? "true" : null,
        onclick: () => this.hooks.select(s.id),
      },
      h("span", { class: "id-name", title: shownId(s.id), text: shownId(s.id) }),
      h("span", { class: "id-when", title: s.last_event_at || "", text: ago(s.last_event_at) }),
      h("span", { class: "id-counts" },
        h("span", { class: "count", "data-total": s.total_events, text: plural(s.total_events, "event") }),
        failing ? h("span", { class: "badge s-error", "data-errors": s.error_events, text: plural(s.error_events, "error") }) : null,
        s.last_minute_limited ? h("span", { class: "badge s-limited", text: `${s.last_minute_limited} limited/min` }) : null),
      s.last_error
        ? h("span", { class: "id-error", title: s.last_error },
            h("span", { class: "visually-hidden", text: "newest error: " }), s.last_error)
        : null,
    );
    return h("li", { class: failing ? "id failing" : "id" }, button);
  }
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A copy button for `text`, saying "Copied" for a moment. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "copy quiet", text: label });
  button.addEventListener("click", async (e) => {
    e.stopPropagation();
    const ok = await copyText(text);
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}
