'use strict';
// The client against a stand-in sidecar: batching, answers, outages, shutdown.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, DEFAULT_SOCKET } = require('../index.js');
const { Stub, acceptAll, waitFor } = require('./stub.js');

const BODY = Buffer.from(JSON.stringify({ event_type: 'pageview', pad: 'x'.repeat(900) }));

/** @param {any} answer @param {boolean} [unix] */
async function stub(answer = acceptAll, unix = true) {
  return new Stub(answer, unix).start();
}

test('events arrive in batches within the flush interval', async () => {
  const s = await stub();
  const c = new Client({ socket: s.socketPath });
  for (let n = 0; n < 1200; n++) c.incoming(`k${n % 3}`, BODY);
  await waitFor(() => c.stats().accepted === 1200);
  assert.ok(s.bodies.length >= 3 && s.bodies.every((b) => b.toString().split('\n').length <= 500));
  c.incoming('k', BODY); // alone: sent after the interval
  const started = Date.now();
  await waitFor(() => c.stats().accepted === 1201);
  assert.ok(Date.now() - started < 1000);
  assert.equal(await c.close(), true);
  const st = c.stats();
  assert.deepEqual([st.sent, st.dropped, st.buffered], [1201, 0, 0]);
  await s.stop();
});

test('batches stay under maxRequestBytes', async () => {
  const s = await stub();
  const c = new Client({ socket: s.socketPath, maxRequestBytes: 20000 });
  for (let n = 0; n < 300; n++) c.incoming('k', BODY);
  assert.equal(await c.close(), true);
  assert.ok(Math.max(...s.bodies.map((b) => b.length)) <= 20000);
  assert.deepEqual([c.stats().accepted, c.stats().tooLarge], [300, 0]);
  await s.stop();
});

test('a 413 splits the batch in halves', async () => {
  const s = await stub((/** @type {Buffer} */ b) =>
    b.length > 10000 ? [413, { message: 'request body exceeds sidecar.ingest.max_request_bytes' }] : acceptAll(b));
  const c = new Client({ socket: s.socketPath });
  for (let n = 0; n < 400; n++) c.incoming('k', BODY);
  c.incoming('k', `{"big":"${'x'.repeat(20000)}"}`);
  assert.equal(await c.close(), true);
  const st = c.stats();
  assert.deepEqual([st.accepted, st.droppedOversized], [400, 1]);
  assert.ok(st.tooLarge >= 1);
  assert.match(st.lastErrors.at(-1) || '', /exceeds/);
  await s.stop();
});

test('an event over the client\'s own limit is oversized', async () => {
  const s = await stub();
  const c = new Client({ socket: s.socketPath, maxRequestBytes: 1000 });
  c.incoming('k', BODY);
  c.incoming('k', '{}');
  await c.close();
  assert.deepEqual([c.stats().accepted, c.stats().droppedOversized], [1, 1]);
  await s.stop();
});

test('invalid lines are counted with their text', async () => {
  const s = await stub((/** @type {Buffer} */ b) => [202, {
    accepted: b.toString().split('\n').length - 1, rate_limited: 0, dropped: 0, invalid: 1,
    errors: [{ line: 2, message: '"id" must be a non-empty string' }],
  }]);
  const c = new Client({ socket: s.socketPath });
  c.incoming('k', '{}');
  c.incoming('', '{"n":2}');
  await c.close();
  const st = c.stats();
  assert.deepEqual([st.sent, st.accepted, st.invalid], [2, 1, 1]);
  assert.match(st.lastErrors.at(-1) || '', /^invalid line: "id" must be a non-empty string: .*"id":""/);
  await s.stop();
});

test('rate limited and sidecar drops are counted; other answers are rejections', async () => {
  const s = await stub((/** @type {Buffer} */ b) => [202, {
    accepted: 1, rate_limited: b.toString().split('\n').length - 2, dropped: 1, invalid: 0, errors: [],
  }]);
  const c = new Client({ socket: s.socketPath });
  for (let n = 0; n < 10; n++) c.incoming('k', '{}');
  await c.close();
  assert.deepEqual([c.stats().accepted, c.stats().rateLimited, c.stats().droppedQueueFull], [1, 8, 1]);
  await s.stop();
  const r = await stub(() => [503, { message: 'the events cache is disabled' }]);
  const d = new Client({ socket: r.socketPath });
  d.incoming('k', '{}');
  await d.close();
  assert.equal(d.stats().droppedRejected, 1);
  assert.deepEqual(d.lastErrors, ['sidecar answered 503: the events cache is disabled']);
  await r.stop();
});

test('the sidecar away costs the application nothing and delivery resumes', async () => {
  const s = await stub();
  await s.stop();
  const c = new Client({ socket: s.socketPath, maxBackoffMs: 200 });
  let slowest = 0;
  for (let n = 0; n < 2000; n++) {
    const t = process.hrtime.bigint();
    c.incoming('k', BODY);
    slowest = Math.max(slowest, Number(process.hrtime.bigint() - t));
  }
  assert.equal(await c.flush(5000), true);
  assert.ok(slowest < 50e6, `slowest call ${slowest} ns`);
  assert.equal(c.stats().droppedUnavailable, 2000);
  assert.match(c.lastErrors[0], /sidecar unavailable/);
  await s.start();
  await waitFor(() => {
    c.incoming('k', '{}');
    return c.stats().accepted > 0;
  });
  await c.close();
  await s.stop();
});

test('a restarted sidecar is reached on a fresh connection', async () => {
  const s = await stub();
  const c = new Client({ socket: s.socketPath });
  c.incoming('k', '{}');
  assert.equal(await c.flush(), true);
  await s.stop();
  await s.start();
  c.incoming('k', '{}');
  await c.close();
  assert.deepEqual([c.stats().accepted, c.stats().dropped], [2, 0]);
  await s.stop();
});

test('a full buffer drops and counts', async () => {
  const s = await stub();
  const c = new Client({ socket: s.socketPath, bufferEvents: 10, flushIntervalMs: 60000 });
  for (let n = 0; n < 25; n++) c.incoming('k', '{}');
  assert.deepEqual([c.stats().droppedBufferFull, c.stats().buffered], [15, 10]);
  const big = new Client({ socket: s.socketPath, bufferBytes: 4500, flushIntervalMs: 60000 });
  for (let n = 0; n < 10; n++) big.incoming('k', BODY);
  assert.equal(big.stats().droppedBufferFull, 6);
  await c.close();
  await big.close();
  assert.equal(c.stats().accepted, 10);
  await s.stop();
});

test('close flushes, later calls are counted, twice is fine', async () => {
  const s = await stub();
  const c = new Client({ socket: s.socketPath, flushIntervalMs: 30000 });
  for (let n = 0; n < 50; n++) c.incoming('k', '{}');
  assert.equal(await c.close(5000), true);
  assert.equal(c.stats().accepted, 50);
  c.incoming('k', '{}');
  c.processed('d', {}, { success: {} });
  assert.equal(await c.close(), true);
  assert.equal(c.stats().droppedClosed, 2);
  await s.stop();
});

test('close times out when the sidecar hangs', async () => {
  const s = await stub(async (/** @type {Buffer} */ b) => {
    await new Promise((r) => setTimeout(r, 1500));
    return acceptAll(b);
  });
  const c = new Client({ socket: s.socketPath, timeoutMs: 1000 });
  c.incoming('k', '{}');
  const started = Date.now();
  assert.equal(await c.close(300), false);
  assert.ok(Date.now() - started < 1000);
  await s.stop();
});

test('calls never throw', async () => {
  const c = new Client({ socket: '/nonexistent/ingest.sock' });
  const circular = {};
  /** @type {any} */ (circular).self = circular;
  c.incoming('k', circular);
  c.incoming('k', { big: 1n });
  c.processed('d', /** @type {any} */ (undefined), { error: 'x' });
  c.incoming('k', Buffer.from('{}'));
  await c.flush();
  const st = c.stats();
  assert.deepEqual([st.droppedUnencodable, st.droppedUnavailable], [3, 1]);
  assert.match(st.lastErrors[0], /cannot encode/);
  await c.close();
});

test('values are snapshots; the HTTP transport', async () => {
  const s = await stub(acceptAll, false);
  const c = new Client({ url: s.url });
  const event = { a: 'before' };
  c.incoming('k', event, { skip: 'bot' });
  event.a = 'after';
  const raw = Buffer.from('{"a":"before"}');
  c.processed('pg', raw, { success: Buffer.from('{"t":1}'), tokenId: 'k' });
  raw[6] = 0x58;
  await c.close();
  const [a, b] = s.lines();
  assert.deepEqual([a.original, a.skip], [{ a: 'before' }, 'bot']);
  assert.deepEqual([b.original, b.success, b.token_id], [{ a: 'before' }, { t: 1 }, 'k']);
  await s.stop();
});

test('configuration from the environment', () => {
  const saved = { ...process.env };
  try {
    delete process.env.EVENTS_CACHE_SOCKET;
    delete process.env.EVENTS_CACHE_URL;
    assert.equal(new Client().settings.socket, DEFAULT_SOCKET);
    process.env.EVENTS_CACHE_URL = 'http://127.0.0.1:8001';
    assert.equal(new Client().settings.url, 'http://127.0.0.1:8001');
    process.env.EVENTS_CACHE_SOCKET = '/run/x.sock';
    assert.deepEqual([new Client().settings.socket, new Client().settings.url], ['/run/x.sock', '']);
    assert.equal(new Client({ url: 'http://h:1' }).settings.url, 'http://h:1');
    assert.throws(() => new Client({ url: 'https://h:1' }), TypeError);
    assert.throws(() => new Client({ maxRequestBytes: -1 }), RangeError);
  } finally {
    process.env = saved;
  }
});

test('the client never keeps the process alive, and a natural exit sends what is buffered', async () => {
  const { execFile } = require('node:child_process');
  const s = await stub();
  const script = `
    const { Client } = require(${JSON.stringify(require.resolve('../index.js'))});
    const c = new Client({ socket: ${JSON.stringify(s.socketPath)}, flushIntervalMs: 60000 });
    c.incoming('exit', '{"n":1}');`;
  const started = Date.now();
  await new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', script], (err) => (err ? reject(err) : resolve(null))));
  assert.ok(Date.now() - started < 5000);
  assert.deepEqual(s.lines().map((l) => l.id), ['exit']);
  await s.stop();
  const idle = `
    const { Client } = require(${JSON.stringify(require.resolve('../index.js'))});
    const c = new Client({ socket: '/nonexistent/ingest.sock' });
    c.incoming('k', '{}');`;
  await new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', idle], { timeout: 5000 }, (err) => (err ? reject(err) : resolve(null))));
});

test('a ready batch is sent once the application yields, never inside its call', async () => {
  const s = await stub();
  const c = new Client({ socket: s.socketPath });
  for (let n = 0; n < 1200; n++) c.incoming('k', BODY);
  assert.equal(/** @type {any} */ (c)._sending, false); // nothing was built or sent in a call
  assert.equal(c.stats().buffered, 1200);
  await waitFor(() => c.stats().accepted === 1200);
  await c.close();
  await s.stop();
});
