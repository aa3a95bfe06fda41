'use strict';
// NDJSON lines of POST /v1/events, built on the sender's side: pure, no I/O.
// A raw token body is split as the sidecar's raw endpoint (POST /v1/token/{id}/events)
// would split it: an object is one entry (its own text), an array one entry per
// element, anything else one malformed entry saying why. An object the caller vouched
// is JSON ({ parsed: true }) is sent as it is, not parsed again: a broken promise makes
// its own line invalid, which the sidecar counts without harm to the others.

const { oneObject } = require('./holds.js');

/** Item kinds in the buffer. */
const TOKEN_RAW = 0; // body: Buffer or string, classified by the sender
const TOKEN_JSON = 1; // body: JSON text of an object, encoded in the call
const DESTINATION = 2; // body: original (raw or encoded); outcome fields
const TOKEN_PARSED = 3; // body: Buffer or string the caller vouched is JSON, no error

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** @param {number} c */
const isSpace = (c) => c === 32 || c === 10 || c === 13 || c === 9;

/** Text without JSON whitespace around it (cheaper than a RegExp on long bodies).
 * @param {string} text @returns {string} */
function trim(text) {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/**
 * @typedef {object} Item
 * @property {number} kind
 * @property {string} id
 * @property {Buffer | string} body
 * @property {boolean} [encoded] body was encoded in the call (destination original)
 * @property {string} [skip]
 * @property {string} [error]
 * @property {Buffer | string} [success]
 * @property {boolean} [successEncoded]
 * @property {string} [tokenId]
 * @property {string} [capture] a test run's tag: every line of the item carries it
 * @property {number} at milliseconds since the epoch, at the call
 * @property {number} size bytes counted against the buffer's bound
 */

/** @param {unknown} value @returns {string} */
function kind(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'boolean':
      return 'a boolean';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    default:
      return 'an object';
  }
}

/** JSON text on one line: raw newlines in valid JSON can only be whitespace.
 * @param {string} text @returns {string} */
function oneLine(text) {
  return text.includes('\n') || text.includes('\r') ? text.replace(/[\r\n]/g, ' ') : text;
}

/** The body as text, or null when it is not valid UTF-8.
 * @param {Buffer | string} body @returns {string | null} */
function asText(body) {
  if (typeof body === 'string') return body;
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

let lastMs = -1;
let lastStamp = '';

/** RFC 3339 UTC with microseconds, as the sidecar writes it (events of one
 * millisecond share one text). @param {number} ms @returns {string} */
function timestamp(ms) {
  if (ms !== lastMs) {
    lastMs = ms;
    lastStamp = new Date(ms).toISOString().slice(0, 23) + '000Z';
  }
  return lastStamp;
}

class LineBuilder {
  /** @param {number} maxMalformedBytes @param {boolean} timestamps */
  constructor(maxMalformedBytes, timestamps) {
    this.maxMalformedBytes = maxMalformedBytes;
    this.timestamps = timestamps;
    /** @type {string | undefined} the tag of the item being built */
    this.capture = undefined;
  }

  /** The lines of one item (strings without the newline); throws when unencodable.
   * @param {Item} item @returns {string[]} */
  lines(item) {
    this.capture = item.capture;
    if (item.kind === DESTINATION) return [this.destination(item)];
    if (item.kind === TOKEN_JSON) return [this.token(item.id, /** @type {string} */ (item.body), item.skip, item.at)];
    if (item.kind === TOKEN_PARSED) return this.tokenParsed(item);
    return this.tokenRaw(item);
  }

  /** A body vouched for as JSON: an object as it is (trimmed, on one line) without
   * parsing it; an array, anything else or text that is not UTF-8 as tokenRaw has it.
   * @param {Item} item @returns {string[]} */
  tokenParsed(item) {
    const text = oneObject(item.body, true) ? asText(item.body) : null;
    if (text === null) return this.tokenRaw(item);
    return [this.token(item.id, trim(text), item.skip, item.at)];
  }

  /** @param {number} at */
  tail(at) {
    const tag = this.capture ? ',"capture":' + JSON.stringify(this.capture) : '';
    return tag + (this.timestamps ? `,"timestamp":"${timestamp(at)}"}` : '}');
  }

  /** @param {string} id @param {string} original @param {string | undefined} skip @param {number} at */
  token(id, original, skip, at) {
    const marks = skip ? ',"skip":' + JSON.stringify(skip) : '';
    return '{"namespace":"token","id":' + JSON.stringify(id) + ',"original":' + oneLine(original) + marks + this.tail(at);
  }

  /** @param {string} id @param {Buffer | string} body @param {string} error @param {number} at */
  malformed(id, body, error, at) {
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    const text = data.subarray(0, this.maxMalformedBytes).toString('utf8');
    return (
      '{"namespace":"token","id":' + JSON.stringify(id) + ',"malformed":' + JSON.stringify(text) +
      ',"error":' + JSON.stringify(error) + this.tail(at)
    );
  }

  /** @param {Item} item @returns {string[]} */
  tokenRaw(item) {
    const { id, body, at } = item;
    if (item.error) return [this.malformed(id, body, item.error, at)];
    const text = asText(body);
    if (text === null) return [this.malformed(id, body, 'invalid JSON: not valid UTF-8', at)];
    const trimmed = trim(text);
    if (!trimmed) return [this.malformed(id, body, 'empty body', at)];
    let doc;
    try {
      doc = JSON.parse(trimmed);
    } catch (e) {
      return [this.malformed(id, body, 'invalid JSON: ' + /** @type {Error} */ (e).message, at)];
    }
    if (Array.isArray(doc)) {
      return doc.map((element, n) => {
        const encoded = JSON.stringify(element);
        if (element !== null && typeof element === 'object' && !Array.isArray(element)) {
          return this.token(id, encoded, item.skip, at);
        }
        return this.malformed(id, encoded, `array element ${n} is ${kind(element)}, not an object`, at);
      });
    }
    if (doc !== null && typeof doc === 'object') return [this.token(id, trimmed, item.skip, at)];
    return [this.malformed(id, body, `body is ${kind(doc)}, not an object or an array of objects`, at)];
  }

  /** @param {Item} item @returns {string} */
  destination(item) {
    let line = '{"namespace":"destination","id":' + JSON.stringify(item.id) + ',"original":' + rawValue(item.body, item.encoded);
    if (item.success !== undefined) line += ',"success":' + rawValue(item.success, item.successEncoded);
    if (item.error) line += ',"error":' + JSON.stringify(item.error);
    if (item.skip) line += ',"skip":' + JSON.stringify(item.skip);
    if (item.tokenId) line += ',"token_id":' + JSON.stringify(item.tokenId);
    return line + this.tail(item.at);
  }
}

/** A destination's original or success: JSON encoded in the call as is; raw text that
 * holds a JSON object as that object; any other raw text as a JSON string.
 * @param {Buffer | string} value @param {boolean | undefined} encoded @returns {string} */
function rawValue(value, encoded) {
  if (encoded) return oneLine(/** @type {string} */ (value));
  const text = asText(value);
  if (text === null) return JSON.stringify(value.toString('utf8'));
  const trimmed = trim(text);
  if (trimmed.startsWith('{')) {
    try {
      const doc = JSON.parse(trimmed);
      if (doc !== null && typeof doc === 'object' && !Array.isArray(doc)) return oneLine(trimmed);
    } catch {
      // not JSON: sent as text
    }
  }
  return JSON.stringify(text);
}

module.exports = { LineBuilder, TOKEN_RAW, TOKEN_JSON, DESTINATION, TOKEN_PARSED, timestamp };
