#!/usr/bin/env node
'use strict';
// Drive the Node client against a running sidecar and print one JSON line of
// results; the same command line as clients/python/tools/drive.py, so that
// tests/test_clients.py and bench/clients.py treat the three clients alike. With
// --commands it reads one JSON command a line from stdin and answers each with one
// JSON line instead (the protocol is described in clients/python/tools/drive.py):
// the calls of one command run without yielding, the sender gets the event loop
// between commands.

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
    timeout: { type: 'string', default: '0' }, // seconds for connecting and for one request
    'max-backoff': { type: 'string', default: '0' }, // seconds between attempts while away
    'close-timeout': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '1' }, // Node has one thread: 1 only
    commands: { type: 'boolean', default: false },
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
    timeoutMs: num('timeout') * 1000 || undefined,
    maxBackoffMs: num('max-backoff') * 1000 || undefined,
  };
  if (num('concurrency') !== 1) {
    console.error('--concurrency: Node calls from one thread only');
    process.exit(2);
  }
  if (a['idle-sender']) {
    Object.assign(options, { flushIntervalMs: 3600e3, maxBatchEvents: chunk + 1, bufferEvents: chunk + 1, bufferBytes: 2 ** 40 });
  }
  const client = new Client(options);
  if (a.commands) {
    commands(client);
    return;
  }
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
  console.log(JSON.stringify({
    language: 'node',
    events,
    calls_s: Number(timed) / 1e9,
    ns_per_call: Number(timed) / Math.max(events, 1),
    max_call_ns: Number(maxCall),
    close_s: Number(end - closeStart) / 1e9,
    total_s: Number(end - start) / 1e9,
    flushed,
    stats: snake(client),
  }));
}

/** The client's counters with snake_case names, as the other drive programs print them.
 * @param {Client} client */
function snake(client) {
  return Object.fromEntries(
    Object.entries(client.stats()).map(([k, v]) => [k.replace(/[A-Z]/g, (m) => '_' + m.toLowerCase()), v]));
}

/** Answer the commands on stdin, one after the other, until it ends. @param {Client} client */
function commands(client) {
  const lines = require('node:readline').createInterface({ input: process.stdin });
  let done = Promise.resolve();
  lines.on('line', (line) => {
    if (!line.trim()) return;
    done = done.then(async () => console.log(JSON.stringify(await step(client, JSON.parse(line)))));
  });
}

/** One command. @param {Client} client @param {any} c */
async function step(client, c) {
  const timeoutMs = (c.timeout === undefined ? 5 : c.timeout) * 1000;
  if (c.op === 'flush' || c.op === 'close') {
    const t0 = process.hrtime.bigint();
    const flushed = await (c.op === 'close' ? client.close(timeoutMs) : client.flush(timeoutMs));
    return { flushed, took_s: Number(process.hrtime.bigint() - t0) / 1e9, stats: snake(client) };
  }
  if (c.op === 'stats') return { stats: snake(client) };
  /** @type {() => void} */
  let call;
  if (c.op === 'incoming') {
    const body = Buffer.from(c.body);
    const marks = { skip: c.skip || undefined, error: c.error || undefined, capture: c.capture || undefined, parsed: !!c.parsed };
    call = () => client.incoming(c.id, body, marks);
  } else if (c.op === 'processed') {
    const original = Buffer.from(c.original);
    const outcome = { success: c.success ?? undefined, error: c.error ?? undefined, skip: c.skip ?? undefined, tokenId: c.token_id ?? undefined, capture: c.capture ?? undefined };
    call = () => client.processed(c.id, original, outcome);
  } else {
    console.error(`unknown command ${JSON.stringify(c.op)}`);
    process.exit(2);
  }
  let maxCall = 0n;
  for (let n = 0; n < (c.count === undefined ? 1 : c.count); n++) {
    const t0 = process.hrtime.bigint();
    call();
    const took = process.hrtime.bigint() - t0;
    if (took > maxCall) maxCall = took;
  }
  return { max_call_ns: Number(maxCall), stats: snake(client) };
}

main();
