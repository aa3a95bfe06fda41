// The public HTTP API, reached by relative URLs (the page may live under a path
// prefix), with the admin token in a header: never in a URL.

const TOKEN_KEY = "events-cache.admin-token";
const API = "../api/v1/events/";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A failed call: status 0 when the sidecar could not be reached at all. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function url(path, params) {
  const u = new URL(API + path, document.baseURI);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(key, value);
  }
  return u;
}

async function messageOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") return body.message;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  return `${response.status} ${response.statusText}`.trim();
}

/** One call: {body, headers} or ApiError. `ids` must stay present when empty. */
export async function call(path, params, { method = "GET", secret = token.get(), signal } = {}) {
  let response;
  try {
    response = await fetch(url(path, params), {
      method,
      signal,
      cache: "no-store",
      headers: { "X-Admin-Token": secret, Accept: "application/json" },
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, `cannot reach the sidecar (${e.message})`);
  }
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  return { body: await response.json(), headers: response.headers };
}

export const summary = (params, opts) => call("ids", params, opts);
export const events = (params, opts) => call("cache", params, opts);
// `id=`: the id taken whole, as stored (one written before the id rule may hold a comma).
export const reset = (namespace, id) => call("cache", { namespace, id }, { method: "DELETE" });
export const journey = (eventId, opts) => call("journey", { event_id: eventId }, opts);
export const activity = (params, opts) => call("activity", params, opts);
export const errors = (params, opts) => call("../errors", params, opts); // GET /api/v1/errors

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Parse Server-Sent Events from a byte stream; `dispatch({event, data, id})`, `beat()`. */
export async function readEvents(body, dispatch, beat) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let frame = { event: "message", data: [], id: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    beat();
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // an unfinished line waits for the next chunk
    for (const line of lines) {
      if (line === "") {
        if (frame.data.length) dispatch({ ...frame, data: frame.data.join("\n") });
        frame = { event: "message", data: [], id: "" };
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") frame.data.push(value);
      else if (field === "event") frame.event = value;
      else if (field === "id") frame.id = value;
    }
  }
}

const SILENCE_MS = 35000; // the server sends a comment at least every 10 s
const MAX_BACKOFF_MS = 15000;

/**
 * Follow the live tail until `stop()`: reconnects with backoff after a network blip or
 * when the sidecar restarts, sending the uid of the last entry it got as Last-Event-ID
 * (as EventSource does), so the sidecar first sends what was cached meanwhile.
 * `on.state(state, detail)` with state connecting, live (detail.resumed: from the last
 * entry), retrying or refused; `on.entry(data)`, `on.gap(data)`.
 */
export function follow(params, on) {
  const stopper = new AbortController();
  let attempt = 0;
  let connectedBefore = false;
  let lastId = ""; // the uid of the last entry received: where a reconnect resumes

  async function once() {
    const conn = new AbortController();
    const abort = () => conn.abort();
    stopper.signal.addEventListener("abort", abort);
    let silence = setTimeout(abort, SILENCE_MS);
    const beat = () => {
      clearTimeout(silence);
      silence = setTimeout(abort, SILENCE_MS);
    };
    try {
      const headers = { "X-Admin-Token": token.get(), Accept: "text/event-stream" };
      const resumed = lastId !== "";
      if (resumed) headers["Last-Event-ID"] = lastId;
      const response = await fetch(url("stream", params), {
        signal: conn.signal,
        cache: "no-store",
        headers,
      });
      if (!response.ok) throw new ApiError(response.status, await messageOf(response));
      attempt = 0;
      on.state("live", { reconnected: connectedBefore, resumed });
      connectedBefore = true;
      await readEvents(response.body, (frame) => {
        let data;
        try {
          data = JSON.parse(frame.data);
        } catch {
          return;
        }
        if (frame.event === "entry") {
          if (frame.id) lastId = frame.id;
          on.entry(data);
        }
        else if (frame.event === "gap") on.gap(data);
      }, beat);
      return null; // the sidecar ended the stream (it stops): connect again
    } catch (e) {
      return e;
    } finally {
      clearTimeout(silence);
      stopper.signal.removeEventListener("abort", abort);
    }
  }

  (async () => {
    on.state("connecting", {});
    while (!stopper.signal.aborted) {
      const error = await once();
      if (stopper.signal.aborted) return;
      if (error instanceof ApiError && error.status === 401) {
        on.state("refused", { error });
        return;
      }
      attempt += 1;
      const wait = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt - 1, 5));
      const delay = wait / 2 + Math.random() * (wait / 2);
      on.state("retrying", { error, delay });
      await sleep(delay, stopper.signal);
    }
  })();

  return { stop: () => stopper.abort() };
}
