'use strict';
// Limits at the source. The sidecar's NDJSON answer names, among a request's ids, those
// whose bucket is empty and until when ("limited"). Until then an event of such an id
// that goes to the all-events list only (a parsed object, or a raw body the caller
// vouches is one JSON object with { parsed: true }, with no error) is not sent, nor any
// event when both lists are limited; never one with a capture tag. What was held back
// is counted per id and collection and sent as count lines at the head of the next
// request, or alone within a second, so that the sidecar's counts stay exact. Only a
// sidecar that answered with "limited" gets them. Pure: no I/O.

const COUNT_PREFIX = '{"limited_at_source":';
const MAX_AT_SOURCE = 1000000; // the sidecar's bound per count line
const MAX_COUNT_LINES = 1000; // count lines at the head of one request; the rest wait
const MAX_LIMITED_IDS = 10000; // ids remembered as limited; expired ones make room
const SEND_WITHIN_MS = 1000;

/** Whether the event is known to be one JSON object (the all list only).
 * @param {unknown} body @param {boolean} vouched @returns {boolean} */
function oneObject(body, vouched) {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    if (!vouched) return false;
    for (let i = 0; i < body.length; i++) {
      const c = typeof body === 'string' ? body.charCodeAt(i) : body[i];
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return c === 123; // '{'
    }
    return false;
  }
  return body !== null && typeof body === 'object' && !Array.isArray(body);
}

class Holds {
  constructor() {
    /** @type {Map<string, {until: number, both: boolean}>} */
    this.until = new Map();
    this.supported = false; // the last 202 carried "limited"
    /** @type {Map<string, number>} id + '\n' + collection: events held back */
    this.counts = new Map();
    this.first = 0; // ms of the oldest count not sent (0: none)
    this.held = 0;
  }

  /** Count the event as held back when the sidecar would certainly limit it.
   * @param {string} id @param {unknown} body @param {string | undefined} error
   * @param {boolean} vouched @param {number} now @returns {boolean} */
  hold(id, body, error, vouched, now) {
    const entry = this.until.get(id);
    if (entry === undefined || now >= entry.until) return false;
    if (error ? !entry.both : !oneObject(body, vouched)) return false;
    this._add(id + '\nall');
    if (error) this._add(id + '\nerror');
    if (!this.first) this.first = now;
    this.held++;
    return true;
  }

  /** @param {string} key */
  _add(key) {
    this.counts.set(key, (this.counts.get(key) || 0) + 1);
  }

  /** Read a 202's "limited" (absent: an older sidecar, which gets no count lines).
   * @param {any} answer @param {number} now */
  answered(answer, now) {
    const limited = answer.limited;
    if (!Array.isArray(limited)) {
      this.supported = false;
      this.until.clear();
      return;
    }
    this.supported = true;
    if (this.until.size + limited.length > MAX_LIMITED_IDS) {
      for (const [id, e] of this.until) if (e.until <= now) this.until.delete(id);
    }
    for (const e of limited) {
      if (!e || e.namespace !== 'token' || typeof e.id !== 'string') continue;
      const until = Date.parse(e.until);
      if (Number.isNaN(until) || this.until.size >= MAX_LIMITED_IDS) continue;
      const both = Array.isArray(e.collections) && e.collections.includes('error');
      this.until.set(e.id, { until, both });
    }
  }

  /** Counts that no request carried for a second. @param {number} now */
  due(now) {
    return this.first > 0 && now - this.first >= SEND_WITHIN_MS;
  }

  /** The count lines for the head of the next request (none to an older sidecar: the
   * events stay counted as held back). @returns {string[]} */
  takeLines() {
    if (!this.first) return [];
    /** @type {string[]} */
    const lines = [];
    let taken = 0;
    for (const [key, count] of this.counts) {
      if (taken++ >= MAX_COUNT_LINES) break;
      this.counts.delete(key);
      const cut = key.lastIndexOf('\n');
      const tail = `,"namespace":"token","id":${JSON.stringify(key.slice(0, cut))},"collection":"${key.slice(cut + 1)}"}`;
      for (let n = count; this.supported && n > 0; n -= MAX_AT_SOURCE) {
        lines.push(COUNT_PREFIX + Math.min(n, MAX_AT_SOURCE) + tail);
      }
    }
    this.first = this.counts.size > 0 ? 1 : 0; // more lines wait: due at once
    return lines;
  }
}

/** How many count lines head the batch (they are not events). @param {string[]} batch */
function countLinesIn(batch) {
  let n = 0;
  while (n < batch.length && batch[n].startsWith(COUNT_PREFIX)) n++;
  return n;
}

module.exports = { Holds, countLinesIn, oneObject, COUNT_PREFIX, MAX_AT_SOURCE, SEND_WITHIN_MS };
