'use strict';
// Fire-and-forget client of the events-cache sidecar's ingest API.
//
//   const { Client } = require('events-cache-client');
//   const cache = new Client();                 // EVENTS_CACHE_SOCKET / EVENTS_CACHE_URL
//   cache.incoming('js.abc123', rawBody);       // never throws, never waits
//   cache.processed('pg_main', event, { error: 'column type mismatch' });
//   await cache.close();

const http = require('node:http');
const { LineBuilder, TOKEN_RAW, TOKEN_JSON, TOKEN_PARSED, DESTINATION } = require('./lib/lines.js');
const { Holds, countLinesIn, SEND_WITHIN_MS } = require('./lib/holds.js');

const SOCKET_ENV = 'EVENTS_CACHE_SOCKET';
const URL_ENV = 'EVENTS_CACHE_URL';
const DEFAULT_SOCKET = '/var/run/events-cache/ingest.sock'; // the chart's socket path
const EVENTS_PATH = '/v1/events';
const LAST_ERRORS = 10;
const MIN_BACKOFF_MS = 50;
// The 413's "limit": which bound the sidecar applied. An older sidecar names none: bytes.
const LIMIT_BYTES = 'bytes';
const LIMIT_EVENTS = 'events';
// The sidecar's 413 for events names its bound in the message; without it, halve.
const EVENTS_BOUND = /max_events_per_request is (\d+)/;

/** @typedef {string[]} Batch NDJSON lines of one request */

/**
 * @typedef {object} Options
 * @property {string} [socket] the sidecar's Unix socket (preferred over url)
 * @property {string} [url] its loopback HTTP address, e.g. http://127.0.0.1:8001
 * @property {number} [maxRequestBytes] 1 MiB: the sidecar's sidecar.ingest.max_request_bytes
 * @property {number} [maxBatchEvents] 500 events in one request at most
 * @property {number} [flushIntervalMs] 100: how long an event may wait for a batch
 * @property {number} [bufferEvents] 10,000 events buffered (and in flight) at most
 * @property {number} [bufferBytes] 8 MiB buffered at most
 * @property {number} [timeoutMs] 2000 for connecting and for one request
 * @property {number} [maxMalformedBytes] 10,000: the sidecar's max_malformed_event_size_bytes
 * @property {number} [maxBackoffMs] 1000 between connection attempts while away
 * @property {boolean} [timestamps] true: each event carries the time of the call
 */

/**
 * @typedef {object} Stats Counters in events; every event ends in exactly one of
 *   accepted, rateLimited, invalid or a dropped* counter, or is still buffered.
 * @property {number} sent in requests the sidecar answered 202
 * @property {number} accepted queued by the sidecar for Redis
 * @property {number} rateLimited not cached: the sidecar's rate limit
 * @property {number} invalid lines the sidecar rejected (see lastErrors)
 * @property {number} droppedBufferFull the buffer was full at the call
 * @property {number} droppedUnavailable the sidecar was away (refused, missing, timed out)
 * @property {number} droppedOversized one event over maxRequestBytes
 * @property {number} droppedQueueFull the sidecar's own queue was full (its 202 `dropped`)
 * @property {number} droppedRejected the sidecar answered neither 202 nor 413
 * @property {number} droppedUnencodable a value JSON.stringify refused
 * @property {number} droppedClosed after close(), or left when it timed out
 * @property {number} heldBack not sent: the sidecar said it would limit them (sent as counts)
 * @property {number} dropped every event dropped, whatever the reason
 * @property {number} buffered buffered or in flight now
 * @property {number} requests HTTP requests the sidecar answered
 * @property {number} tooLarge 413 answers, for bytes or for events (the batch split and resent)
 * @property {string[]} lastErrors the newest error messages, newest last
 * @property {number} requestLimitBytes what one request may carry now: maxRequestBytes,
 *   lowered for good by a 413 for bytes (not a counter; left out of dropped)
 * @property {number} requestLimitEvents likewise maxBatchEvents, lowered by a 413 for events
 */

/** @param {Options} options @returns {Required<Options>} */
function resolve(options) {
  let socket = options.socket || '';
  let url = options.url || '';
  if (!socket && !url) {
    socket = process.env[SOCKET_ENV] || '';
    if (!socket) url = process.env[URL_ENV] || '';
    if (!socket && !url) socket = DEFAULT_SOCKET;
  }
  if (socket) url = '';
  else target(url);
  /** @type {Required<Options>} */
  const s = {
    socket,
    url,
    maxRequestBytes: options.maxRequestBytes || 1048576,
    maxBatchEvents: options.maxBatchEvents || 500,
    flushIntervalMs: options.flushIntervalMs || 100,
    bufferEvents: options.bufferEvents || 10000,
    bufferBytes: options.bufferBytes || 8 * 1048576,
    timeoutMs: options.timeoutMs || 2000,
    maxMalformedBytes: options.maxMalformedBytes || 10000,
    maxBackoffMs: options.maxBackoffMs || 1000,
    timestamps: options.timestamps !== false,
  };
  for (const [name, value] of Object.entries(s)) {
    if (typeof value === 'number' && !(value > 0)) throw new RangeError(`${name} must be positive`);
  }
  return s;
}

/** host, port and path of POST /v1/events under an http:// URL.
 * @param {string} url @returns {{host: string, port: number, path: string}} */
function target(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    u = null;
  }
  if (!u || u.protocol !== 'http:' || !u.hostname) {
    throw new TypeError(`events-cache URL must be http://host:port, got ${JSON.stringify(url)}`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return { host, port: Number(u.port || 80), path: u.pathname.replace(/\/+$/, '') + EVENTS_PATH };
}

/** @type {Set<Client>} clients with events to send when the process runs out of work */
const live = new Set();
let hooked = false;

function beforeExit() {
  // The event loop is empty: send what is buffered (the request keeps it alive),
  // after which this fires again with nothing left to do.
  for (const client of live) client._kick(true);
}

class Client {
  /** @param {Options} [options] transport from options, else EVENTS_CACHE_SOCKET /
   * EVENTS_CACHE_URL, else the chart's socket path; throws only when unusable. */
  constructor(options = {}) {
    this.settings = resolve(options);
    const s = this.settings;
    this._http = s.socket
      ? { socketPath: s.socket, path: EVENTS_PATH, host: 'localhost', port: undefined }
      : target(s.url);
    this._agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this._builder = new LineBuilder(s.maxMalformedBytes, s.timestamps);
    /** @type {import('./lib/lines.js').Item[]} */
    this._items = [];
    this._bytes = 0; // of buffered and in-flight items
    this._inFlight = 0;
    this._enqueued = 0; // items ever buffered
    this._done = 0; // items finished with (sent or dropped)
    /** @type {{target: number, resolve: (ok: boolean) => void}[]} */
    this._waiters = [];
    /** @type {NodeJS.Timeout | null} */
    this._timer = null;
    /** @type {NodeJS.Immediate | null} */
    this._immediate = null;
    /** @type {NodeJS.Timeout | null} */
    this._holdTimer = null; // sends held-back counts when no request carries them
    /** @type {Promise<void> | null} */
    this._pumping = null;
    this._holds = new Holds(); // limits at the source
    this._sending = false;
    this._closed = false;
    this._limitBytes = s.maxRequestBytes; // lowered after a 413 for bytes
    this._limitEvents = s.maxBatchEvents; // lowered after a 413 for events
    this._backoffMs = 0;
    this._until = 0;
    /** @type {string[]} */
    this._errors = [];
    this._c = {
      sent: 0, accepted: 0, rateLimited: 0, invalid: 0, droppedBufferFull: 0,
      droppedUnavailable: 0, droppedOversized: 0, droppedQueueFull: 0, droppedRejected: 0,
      droppedUnencodable: 0, droppedClosed: 0, requests: 0, tooLarge: 0,
    };
  }

  /**
   * An event as the ingest received it for API key tokenId: the raw body (Buffer,
   * Uint8Array or string; split like the sidecar's raw endpoint) or a parsed value
   * (encoded now: a snapshot). skip: why it was skipped; error: why the ingest
   * rejected it (stored as malformed); capture: a test run's tag (the sidecar caches
   * the event beyond its id's rate limit, within its budget, and keeps the tag: it is
   * found with ?capture=; never held back); parsed: the caller vouches the raw body is
   * well-formed JSON (the ingest parsed it), so that an object is sent without being
   * parsed again and an event of an id the sidecar said it would limit is held back and
   * counted instead of sent (a body vouched for that is not JSON is sent unchecked: the
   * sidecar counts its line as invalid). Never throws.
   * @param {string} tokenId
   * @param {Buffer | Uint8Array | string | object} body
   * @param {{skip?: string, error?: string, capture?: string, parsed?: boolean}} [marks]
   */
  incoming(tokenId, body, marks) {
    if (this._holds.until.size > 0 && !(marks && marks.capture) && !this._closed &&
      this._holds.hold(tokenId, body, marks && marks.error, !!(marks && marks.parsed), Date.now())) {
      this._countsLater();
      return;
    }
    try {
      const skip = marks && marks.skip;
      const error = marks && marks.error;
      const capture = (marks && marks.capture) || undefined;
      let kind = TOKEN_RAW;
      /** @type {Buffer | string} */
      let data;
      if (typeof body === 'string' || body instanceof Uint8Array) {
        data = typeof body === 'string' ? body : Buffer.from(body); // a copy: the caller may reuse it
        if (marks && marks.parsed && !error) kind = TOKEN_PARSED; // an object goes unparsed
      } else {
        data = encode(body);
        if (body !== null && typeof body === 'object' && !Array.isArray(body) && !error) kind = TOKEN_JSON;
      }
      const size = data.length + (capture ? 80 + capture.length : 64);
      this._put({ kind, id: tokenId, body: data, skip, error, capture, at: Date.now(), size });
    } catch (e) {
      this._unencodable(e);
    }
  }

  /**
   * What destination destinationId made of an event: exactly one of success (the
   * result object), error (why it failed) or skip (why it was skipped); tokenId
   * optionally names the API key; capture as for incoming(). original: raw JSON (Buffer/string: an object is
   * stored as one, other text as text) or a value encoded now. A line with none or
   * several outcomes is sent as it is and the sidecar counts it invalid. Never throws.
   * @param {string} destinationId
   * @param {Buffer | Uint8Array | string | object} original
   * @param {{success?: Buffer | string | object, error?: string, skip?: string, tokenId?: string, capture?: string}} [outcome]
   */
  processed(destinationId, original, outcome = {}) {
    try {
      const [body, encoded] = value(original);
      /** @type {import('./lib/lines.js').Item} */
      const item = {
        kind: DESTINATION, id: destinationId, body, encoded, error: outcome.error,
        skip: outcome.skip, tokenId: outcome.tokenId, capture: outcome.capture || undefined,
        at: Date.now(), size: body.length + 96 + (outcome.capture ? outcome.capture.length + 16 : 0),
      };
      if (outcome.success !== undefined && outcome.success !== null) {
        [item.success, item.successEncoded] = value(outcome.success);
        item.size += item.success.length;
      }
      this._put(item);
    } catch (e) {
      this._unencodable(e);
    }
  }

  /** @param {import('./lib/lines.js').Item} item */
  _put(item) {
    if (this._closed) {
      this._c.droppedClosed++;
      return;
    }
    const s = this.settings;
    if (this._items.length + this._inFlight >= s.bufferEvents || this._bytes + item.size > s.bufferBytes) {
      this._c.droppedBufferFull++;
      return;
    }
    this._items.push(item);
    this._bytes += item.size;
    this._enqueued++;
    if (this._items.length >= s.maxBatchEvents) {
      // a batch is ready: send it once the application yields, never inside its call
      if (this._immediate === null && !this._sending) {
        this._immediate = setImmediate(() => {
          this._immediate = null;
          this._kick(false);
        });
        this._immediate.unref();
      }
    } else if (this._timer === null && !this._sending) {
      this._timer = setTimeout(() => this._kick(false), s.flushIntervalMs);
      this._timer.unref();
    }
    if (this._items.length === 1) {
      live.add(this);
      if (!hooked) {
        process.on('beforeExit', beforeExit);
        hooked = true;
      }
    }
  }

  /** Held-back counts go out within a second even when no event does. */
  _countsLater() {
    if (this._holdTimer !== null || this._closed) return;
    live.add(this); // a natural exit sends them too (beforeExit)
    if (!hooked) {
      process.on('beforeExit', beforeExit);
      hooked = true;
    }
    this._holdTimer = setTimeout(() => {
      this._holdTimer = null;
      this._kick(false);
    }, SEND_WITHIN_MS);
    this._holdTimer.unref();
  }

  /** @param {unknown} e */
  _unencodable(e) {
    this._c.droppedUnencodable++;
    this._error(`cannot encode an event: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** @param {string} message */
  _error(message) {
    if (this._errors.length >= LAST_ERRORS) this._errors.shift();
    this._errors.push(message);
  }

  /** Start sending now (unless already). @param {boolean} exiting */
  _kick(exiting) {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    if (exiting && this._items.length === 0) live.delete(this);
    if (!this._sending && (this._items.length > 0 || this._holds.first)) this._pumping = this._pump();
  }

  async _pump() {
    this._sending = true;
    const s = this.settings;
    try {
      while ((this._items.length > 0 || this._holds.first) && !this._closed) {
        const items = this._items;
        this._items = [];
        this._inFlight = items.length;
        if (items.length === 0) await this._sendAll([]); // the held-back counts alone
        for (let i = 0; i < items.length; i += s.maxBatchEvents) {
          const chunk = items.slice(i, i + s.maxBatchEvents);
          if (this._closed) {
            this._c.droppedClosed += chunk.length;
          } else {
            await this._sendAll(this._batches(chunk));
          }
          this._finished(chunk);
        }
      }
    } finally {
      this._sending = false;
    }
    if (this._items.length > 0 && this._timer === null && !this._closed) {
      this._timer = setTimeout(() => this._kick(false), s.flushIntervalMs);
      this._timer.unref();
    }
  }

  /** @param {import('./lib/lines.js').Item[]} chunk */
  _finished(chunk) {
    for (const item of chunk) this._bytes -= item.size;
    this._inFlight -= chunk.length;
    this._done += chunk.length;
    this._waiters = this._waiters.filter((w) => {
      if (this._done < w.target) return true;
      w.resolve(true);
      return false;
    });
  }

  /** Lines of items grouped so that each request stays within both limits (a raw
   * array body gives a line per element, so items alone do not bound the count).
   * @param {import('./lib/lines.js').Item[]} items @returns {Batch[]} */
  _batches(items) {
    /** @type {Batch[]} */
    const out = [];
    /** @type {Batch} */
    let batch = [];
    let size = 0;
    const hard = this.settings.maxRequestBytes;
    for (const item of items) {
      let lines;
      try {
        lines = this._builder.lines(item);
      } catch (e) {
        this._unencodable(e);
        continue;
      }
      for (const line of lines) {
        const n = Buffer.byteLength(line) + 1;
        if (n > hard) {
          this._c.droppedOversized++;
          this._error(`event of ${n} bytes dropped: over maxRequestBytes (${hard})`);
          continue;
        }
        if (batch.length > 0 && (size + n > this._limitBytes || batch.length >= this._limitEvents)) {
          out.push(batch);
          batch = [];
          size = 0;
        }
        batch.push(line);
        size += n;
      }
    }
    if (batch.length > 0) out.push(batch);
    return out;
  }

  /** Send the batches, the held-back counts at the head of the first.
   * @param {Batch[]} batches */
  async _sendAll(batches) {
    const heads = this._holds.takeLines();
    if (heads.length > 0) {
      if (batches.length === 0) batches = [[]];
      batches[0] = heads.concat(batches[0]);
    }
    for (const batch of batches) await this._send(batch);
  }

  /** @param {Batch} first */
  async _send(first) {
    const pending = [first];
    while (pending.length > 0) {
      const batch = /** @type {Batch} */ (pending.pop());
      if (Date.now() < this._until) {
        this._c.droppedUnavailable += batch.length - countLinesIn(batch);
        continue;
      }
      let answer;
      try {
        answer = await this._post(Buffer.from(batch.join('\n')));
      } catch (e) {
        this._unavailable(batch, /** @type {Error} */ (e));
        continue;
      }
      this._backoffMs = 0;
      this._until = 0;
      pending.push(...this._answered(batch, answer.status, answer.body).reverse());
    }
  }

  /** POST /v1/events; once more on a fresh connection when a kept-alive one turns
   * out closed by the sidecar (idle, restarted).
   * @param {Buffer} body @returns {Promise<{status: number, body: Buffer}>} */
  async _post(body) {
    try {
      return await this._request(body);
    } catch (e) {
      if (!(/** @type {any} */ (e).reused)) throw e;
      return this._request(body);
    }
  }

  /** @param {Buffer} body @returns {Promise<{status: number, body: Buffer}>} */
  _request(body) {
    return new Promise((resolvePost, reject) => {
      const h = this._http;
      const req = http.request({
        agent: this._agent, method: 'POST', socketPath: /** @type {any} */ (h).socketPath,
        host: h.host, port: h.port, path: h.path,
        headers: { 'Content-Type': 'application/x-ndjson', 'Content-Length': body.length },
      });
      req.setTimeout(this.settings.timeoutMs, () => req.destroy(new Error(`no answer within ${this.settings.timeoutMs} ms`)));
      req.on('response', (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolvePost({ status: res.statusCode || 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', (e) => {
        // a kept-alive socket the sidecar closed meanwhile (idle, restarted), not a timeout
        const code = /** @type {any} */ (e).code;
        /** @type {any} */ (e).reused = req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE');
        reject(e);
      });
      req.end(body);
    });
  }

  /** @param {Batch} batch @param {Error} e */
  _unavailable(batch, e) {
    this._c.droppedUnavailable += batch.length - countLinesIn(batch);
    if (this._backoffMs === 0) {
      const where = this.settings.socket ? `unix:${this.settings.socket}` : this.settings.url;
      this._error(`sidecar unavailable (${where}): ${/** @type {any} */ (e).code || e.message}`);
    }
    this._backoffMs = Math.min(Math.max(this._backoffMs * 2, MIN_BACKOFF_MS), this.settings.maxBackoffMs);
    this._until = Date.now() + this._backoffMs;
  }

  /** Count the sidecar's answer; the pieces to resend after a 413.
   * @param {Batch} batch @param {number} status @param {Buffer} body @returns {Batch[]} */
  _answered(batch, status, body) {
    const c = this._c;
    c.requests++;
    if (status === 202) {
      c.sent += batch.length - countLinesIn(batch);
      let a;
      try {
        a = JSON.parse(body.toString('utf8'));
      } catch {
        a = null;
      }
      if (!a || typeof a.accepted !== 'number') {
        c.accepted += batch.length;
        this._error(`unexpected 202 answer: ${body.toString('utf8').slice(0, 200)}`);
        return [];
      }
      this._holds.answered(a, Date.now());
      c.accepted += a.accepted;
      c.rateLimited += a.rate_limited || 0;
      c.droppedQueueFull += a.dropped || 0;
      c.invalid += a.invalid || 0;
      for (const e of a.errors || []) {
        const text = (batch[e.line - 1] || '').slice(0, 200);
        this._error(`invalid line: ${e.message}: ${text}`);
      }
      return [];
    }
    if (status === 413) {
      c.tooLarge++;
      if (batch.length === 1) { // refused alone: resending cannot help
        c.droppedOversized++;
        this._error(`event of ${Buffer.byteLength(batch[0]) + 1} bytes dropped: ${message(body)}`);
        return [];
      }
      if (limitOf(body) === LIMIT_EVENTS) return this._tooManyEvents(batch, body);
      const size = batch.reduce((n, line) => n + Buffer.byteLength(line) + 1, 0);
      this._limitBytes = Math.max(1, Math.min(this._limitBytes, Math.floor(size / 2)));
      const half = Math.floor(batch.length / 2);
      return [batch.slice(0, half), batch.slice(half)];
    }
    c.droppedRejected += batch.length - countLinesIn(batch);
    this._error(`sidecar answered ${status}: ${message(body)}`);
    return [];
  }

  /** A 413 for events: the byte limit stays, the event cap drops to the sidecar's
   * bound (its "max"; from an older sidecar, the number its message names; else half
   * the batch), and the batch goes
   * again in pieces of that many. Each piece is smaller than the batch, so a refusal
   * repeated down to one event ends.
   * @param {Batch} batch @param {Buffer} body @returns {Batch[]} */
  _tooManyEvents(batch, body) {
    let most = eventsBoundOf(body);
    if (!(most > 0 && most < batch.length)) most = Math.floor(batch.length / 2);
    this._limitEvents = Math.min(this._limitEvents, most);
    /** @type {Batch[]} */
    const pieces = [];
    for (let i = 0; i < batch.length; i += this._limitEvents) pieces.push(batch.slice(i, i + this._limitEvents));
    return pieces;
  }

  /** A snapshot of the counters. @returns {Stats} */
  stats() {
    const c = this._c;
    const dropped =
      c.droppedBufferFull + c.droppedUnavailable + c.droppedOversized + c.droppedQueueFull +
      c.droppedRejected + c.droppedUnencodable + c.droppedClosed;
    return {
      ...c, heldBack: this._holds.held, dropped, buffered: this._items.length + this._inFlight, lastErrors: [...this._errors],
      requestLimitBytes: this._limitBytes, requestLimitEvents: this._limitEvents,
    };
  }

  /** The newest error messages, newest last. @returns {string[]} */
  get lastErrors() {
    return [...this._errors];
  }

  /** Resolves true once what was buffered before the call is sent or dropped, false
   * when timeoutMs passed first. @param {number} [timeoutMs] @returns {Promise<boolean>} */
  flush(timeoutMs = 5000) {
    const targetDone = this._enqueued;
    if (this._done >= targetDone) {
      if (!this._holds.first || this._closed) return Promise.resolve(true);
      this._kick(false); // the held-back counts go out now
      return withTimeout(this._pumping || Promise.resolve(), timeoutMs);
    }
    return new Promise((resolveFlush) => {
      /** @type {{target: number, resolve: (ok: boolean) => void}} */
      const waiter = { target: targetDone, resolve: resolveFlush };
      const timer = setTimeout(() => {
        this._waiters = this._waiters.filter((w) => w !== waiter);
        resolveFlush(false);
      }, timeoutMs);
      waiter.resolve = (ok) => {
        clearTimeout(timer);
        resolveFlush(ok);
      };
      this._waiters.push(waiter);
      this._kick(false);
    });
  }

  /** Flush within timeoutMs, then stop: what is left is counted as droppedClosed, as
   * are later calls. Safe to call twice. @param {number} [timeoutMs] @returns {Promise<boolean>} */
  async close(timeoutMs = 5000) {
    if (this._closed) return this._items.length + this._inFlight === 0;
    const flushed = await this.flush(timeoutMs);
    this._closed = true;
    if (this._timer !== null) clearTimeout(this._timer);
    if (this._holdTimer !== null) clearTimeout(this._holdTimer);
    this._holdTimer = null;
    if (this._immediate !== null) clearImmediate(this._immediate);
    this._timer = null;
    this._immediate = null;
    const left = this._items;
    this._items = [];
    this._c.droppedClosed += left.length;
    this._finished(left);
    this._agent.destroy();
    live.delete(this);
    return flushed;
  }
}

/** Resolves true once `done` settles, false when timeoutMs passes first.
 * @param {Promise<void>} done @param {number} timeoutMs @returns {Promise<boolean>} */
function withTimeout(done, timeoutMs) {
  return new Promise((resolveDone) => {
    const timer = setTimeout(() => resolveDone(false), timeoutMs);
    done.then(() => {
      clearTimeout(timer);
      resolveDone(true);
    }, () => {
      clearTimeout(timer);
      resolveDone(true);
    });
  });
}

/** JSON text of a parsed value; throws when it has none.
 * @param {unknown} v @returns {string} */
function encode(v) {
  const text = JSON.stringify(v);
  if (typeof text !== 'string') throw new TypeError(`${typeof v} is not JSON`);
  return text;
}

/** Raw JSON as given (a Buffer copied) or a value encoded now.
 * @param {unknown} v @returns {[Buffer | string, boolean]} */
function value(v) {
  if (typeof v === 'string') return [v, false];
  if (v instanceof Uint8Array) return [Buffer.from(v), false];
  return [encode(v), true];
}

/** The limit a 413 names; bytes when it names none (an older sidecar).
 * @param {Buffer} body @returns {string} */
function limitOf(body) {
  try {
    const doc = JSON.parse(body.toString('utf8'));
    if (doc !== null && doc.limit === LIMIT_EVENTS) return LIMIT_EVENTS;
  } catch {
    // not the sidecar's JSON error
  }
  return LIMIT_BYTES;
}

/** A 413's bound in events: its "max", else (an older sidecar) the number its message
 * names; 0 when neither says. @param {Buffer} body @returns {number} */
function eventsBoundOf(body) {
  try {
    const doc = JSON.parse(body.toString('utf8'));
    if (doc !== null && Number.isInteger(doc.max) && doc.max > 0) return doc.max;
  } catch {
    // not the sidecar's JSON error
  }
  const bound = EVENTS_BOUND.exec(message(body));
  return bound ? Number(bound[1]) : 0;
}

/** @param {Buffer} body */
function message(body) {
  try {
    const m = JSON.parse(body.toString('utf8')).message;
    if (typeof m === 'string') return m;
  } catch {
    // not the sidecar's JSON error
  }
  return body.toString('utf8').slice(0, 200);
}

module.exports = { Client, DEFAULT_SOCKET, SOCKET_ENV, URL_ENV };
