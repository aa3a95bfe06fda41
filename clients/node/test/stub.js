'use strict';
// A stand-in sidecar for the unit tests: an HTTP/1.1 server on a Unix socket or a
// loopback port whose answers a test chooses. The real sidecar is tested by
// test/live.test.js and by the repository's tests/test_clients.py.

const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** @param {Buffer} body @returns {[number, object]} */
function acceptAll(body) {
  const n = body.toString().split('\n').length;
  return [202, { accepted: n, rate_limited: 0, dropped: 0, invalid: 0, errors: [] }];
}

class Stub {
  /** @param {(body: Buffer) => [number, object] | Promise<[number, object]>} answer @param {boolean} unix */
  constructor(answer = acceptAll, unix = true) {
    this.answer = answer;
    this.unix = unix;
    /** @type {Buffer[]} */
    this.bodies = [];
    this.socketPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ecc-')), 'ingest.sock');
    this.url = '';
    /** @type {http.Server | null} */
    this.server = null;
  }

  /** @returns {Promise<Stub>} */
  start() {
    const server = http.createServer((req, res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks);
        this.bodies.push(body);
        const [status, doc] = await this.answer(body);
        const data = JSON.stringify(doc);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
        res.end(data);
      });
    });
    this.server = server;
    return new Promise((resolve) => {
      if (this.unix) server.listen(this.socketPath, () => resolve(this));
      else
        server.listen(0, '127.0.0.1', () => {
          this.url = `http://127.0.0.1:${/** @type {any} */ (server.address()).port}`;
          resolve(this);
        });
    });
  }

  /** @returns {Promise<void>} */
  stop() {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  lines() {
    return this.bodies.flatMap((b) => b.toString().split('\n').map((l) => JSON.parse(l)));
  }
}

/** @param {() => boolean} cond @param {number} [ms] */
async function waitFor(cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not met in time');
}

module.exports = { Stub, acceptAll, waitFor };
