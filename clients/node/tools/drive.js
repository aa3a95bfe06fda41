#!/usr/bin/env node
'use strict';
// Drive the Node client against a running sidecar and print one JSON line of
// results; the same command line as clients/python/tools/drive.py, so that
// tests/test_clients.py and bench/clients.py treat the three clients alike.

const { parseArgs } = require('node:util');
const { Client } = require('../index.js');

const { values: a } = parseArgs({
  options: {
    socket: { type: 'string', default: '' },
    url: { type: 'string', default: '' },
    events: { type: 'string', default: '10000' },
    ids: { type: 'string', default: '10' },
    kind: { type: 'string', default: 'raw' },
    'body-bytes': { type: 'string', default: '1400' },
    rate: { type: 'string', default: '0' },
    'max-request-bytes': { type: 'string', default: '0' },
    'flush-ms': { type: 'string', default: '0' },
    'batch-events': { type: 'string', default: '0' },
    'buffer-events': { type: 'string', default: '0' },
    'buffer-bytes': { type: 'string', default: '0' },
    'close-timeout': { type: 'string', default: '10' },
    'idle-sender': { type: 'boolean', default: false },
    chunk: { type: 'string', default: '10000' },
    bodies: { type: 'string', default: '' }, // JSON lines {id, body (base64), skip, error}
  },
});
const num = (/** @type {string} */ name) => Number(/** @type {any} */ (a)[name]);
let events = num('events');
const chunk = num('chunk');

/** @param {number} n @param {number} size */
function makeEvent(n, size) {
  const event = {
    event_type: 'pageview',
    event_id: `ev-${n}`,
    eventn_ctx: { url: 'https://www.example.com/pricing?utm_source=newsletter' },
    pad: '',
  };
  event.pad = 'x'.repeat(Math.max(0, size - JSON.stringify(event).length));
  return event;
}

async function main() {
  /** @type {import('../index.js').Options} */
  const options = {
    socket: a.socket || undefined,
    url: a.url || undefined,
    maxRequestBytes: num('max-request-bytes') || undefined,
    flushIntervalMs: num('flush-ms') || undefined,
    maxBatchEvents: num('batch-events') || undefined,
    bufferEvents: num('buffer-events') || undefined,
    bufferBytes: num('buffer-bytes') || undefined,
  };
  if (a['idle-sender']) {
    Object.assign(options, { flushIntervalMs: 3600e3, maxBatchEvents: chunk + 1, bufferEvents: chunk + 1, bufferBytes: 2 ** 40 });
  }
  const client = new Client(options);
  const ids = Array.from({ length: num('ids') }, (_, i) => `drive-${i}`);
  const values = Array.from({ length: 16 }, (_, i) => makeEvent(i, num('body-bytes')));
  const bodies = values.map((v) => Buffer.from(JSON.stringify(v)));
  const success = { table: 'events', rows: 1 };
  const kinds = a.kind === 'mixed' ? ['processed', 'raw', 'value', 'error'] : [a.kind];

  let call = (/** @type {number} */ n) => {
    const id = ids[n % ids.length];
    const body = bodies[n % 16];
    switch (kinds[n % kinds.length]) {
      case 'raw': client.incoming(id, body); break;
      case 'value': client.incoming(id, values[n % 16]); break;
      case 'processed': client.processed(id, body, { success }); break;
      default: client.processed(id, body, { error: 'destination refused the event' });
    }
  };

  if (a.bodies) {
    const given = require('node:fs').readFileSync(a.bodies, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    events = given.length;
    call = (n) => {
      const g = given[n];
      client.incoming(g.id, Buffer.from(g.body, 'base64'), { skip: g.skip || undefined, error: g.error || undefined });
    };
  }
  const clock = process.hrtime.bigint;
  let timed = 0n;
  let maxCall = 0n;
  const start = clock();
  if (a['idle-sender']) {
    // Chunks of calls timed as a whole, each flushed (untimed) before the next.
    for (let n = 0; n < events; ) {
      const end = Math.min(n + chunk, events);
      const t0 = clock();
      for (; n < end; n++) call(n);
      timed += clock() - t0;
      await client.flush(30000);
    }
  } else {
    const paceNs = num('rate') > 0 ? 1e9 / num('rate') : 0;
    for (let n = 0; n < events; n++) {
      const t0 = clock();
      call(n);
      const took = clock() - t0;
      if (took > maxCall) maxCall = took;
      if (paceNs && n % 10 === 9) {
        const behindMs = (Number(start - clock()) + (n + 1) * paceNs) / 1e6;
        // yield to the sender on every pause, as a server's event loop would
        await new Promise((r) => setTimeout(r, Math.max(0, behindMs)));
      } else if (n % 100 === 99) {
        await new Promise((r) => setImmediate(r)); // a server yields between requests
      }
    }
    timed = clock() - start;
  }
  const closeStart = clock();
  const flushed = await client.close(num('close-timeout') * 1000);
  const end = clock();
  const st = client.stats();
  const snake = Object.fromEntries(
    Object.entries(st).map(([k, v]) => [k.replace(/[A-Z]/g, (m) => '_' + m.toLowerCase()), v]));
  console.log(JSON.stringify({
    language: 'node',
    events,
    calls_s: Number(timed) / 1e9,
    ns_per_call: Number(timed) / Math.max(events, 1),
    max_call_ns: Number(maxCall),
    close_s: Number(end - closeStart) / 1e9,
    total_s: Number(end - start) / 1e9,
    flushed,
    stats: snake,
  }));
}

main();
