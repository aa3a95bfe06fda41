'use strict';
// What needs no sidecar: calls that never throw, values snapshotted in the call,
// configuration from the environment, the event loop's share. Everything that needs
// one (batching, answers, outages, shutdown, a natural exit sending what is buffered)
// is tested against the real daemon: live.test.js here, and the repository's
// tests/test_clients.py, which drives this client through tools/drive.js.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const { Client, DEFAULT_SOCKET } = require('../index.js');
const { TOKEN_RAW, TOKEN_JSON, TOKEN_PARSED } = require('../lib/lines.js');

const NOWHERE = '/nonexistent/ingest.sock';
const BODY = Buffer.from(JSON.stringify({ event_type: 'pageview', pad: 'x'.repeat(900) }));

/** @param {() => boolean} cond @param {number} [ms] */
async function waitFor(cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not met in time');
}

/** The lines of what the client holds, as its sender would build them. @param {any} c */
function bufferedLines(c) {
  return c._items.flatMap((/** @type {any} */ item) => c._builder.lines(item)).map((/** @type {string} */ l) => JSON.parse(l));
}

test('calls never throw', async () => {
  const c = new Client({ socket: NOWHERE });
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

test('values are snapshots', async () => {
  const c = new Client({ socket: NOWHERE, flushIntervalMs: 60000 });
  const event = { a: 'before' };
  c.incoming('k', event, { skip: 'bot' });
  event.a = 'after';
  const raw = Buffer.from('{"a":"before"}');
  c.processed('pg', raw, { success: Buffer.from('{"t":1}'), tokenId: 'k' });
  raw[6] = 0x58;
  const [a, b] = bufferedLines(c);
  assert.deepEqual([a.original, a.skip], [{ a: 'before' }, 'bot']);
  assert.deepEqual([b.original, b.success, b.token_id], [{ a: 'before' }, { t: 1 }, 'k']);
  await c.close(100);
});

test('only a raw body vouched for, with no error, skips the parse', async () => {
  const c = new Client({ socket: NOWHERE, flushIntervalMs: 60000 });
  c.incoming('k', Buffer.from('{"a": 1}'), { parsed: true });
  c.incoming('k', '[{"a": 1}]', { parsed: true });
  c.incoming('k', '{"a": 1}', { parsed: true, error: 'bad key' });
  c.incoming('k', '{"a": 1}');
  c.incoming('k', { a: 1 }, { parsed: true });
  assert.deepEqual(c._items.map((item) => item.kind), [TOKEN_PARSED, TOKEN_PARSED, TOKEN_RAW, TOKEN_RAW, TOKEN_JSON]);
  assert.deepEqual(bufferedLines(c).map((l) => l.original || l.malformed), [{ a: 1 }, { a: 1 }, '{"a": 1}', { a: 1 }, { a: 1 }]);
  await c.close(100);
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

test('the client never keeps the process alive', async () => {
  const idle = `
    const { Client } = require(${JSON.stringify(require.resolve('../index.js'))});
    const c = new Client({ socket: ${JSON.stringify(NOWHERE)} });
    c.incoming('k', '{}');`;
  await new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', idle], { timeout: 5000 }, (err) => (err ? reject(err) : resolve(null))));
});

test('a ready batch is sent once the application yields, never inside its call', async () => {
  const c = new Client({ socket: NOWHERE });
  for (let n = 0; n < 1200; n++) c.incoming('k', BODY);
  assert.equal(/** @type {any} */ (c)._sending, false); // nothing was built or sent in a call
  assert.equal(c.stats().buffered, 1200);
  await new Promise((r) => setImmediate(r)); // the application yields once
  assert.equal(/** @type {any} */ (c)._sending, true);
  await waitFor(() => c.stats().buffered === 0);
  assert.equal(c.stats().droppedUnavailable, 1200);
  await c.close();
});

test('a 413 for events splits by count and keeps the byte limit', () => {
  // The sidecar's answers alone: its bound in the message becomes the event cap (half
  // the batch when the message does not say it); the byte limit stays.
  const batch = Array.from({ length: 23 }, (_, n) => JSON.stringify({ n }));
  const said = JSON.stringify({
    message: 'request holds 23 events; sidecar.ingest.max_events_per_request is 5: split it',
    limit: 'events',
  });
  for (const [body, sizes, cap] of /** @type {[string, number[], number][]} */ ([
    [said, [5, 5, 5, 5, 3], 5],
    // the bound as a number ("max") wins over the message; an older sidecar sends none
    [JSON.stringify({ message: 'too many, max is 9', limit: 'events', max: 4 }), [4, 4, 4, 4, 4, 3], 4],
    [JSON.stringify({ message: 'too many', limit: 'events' }), [11, 11, 1], 11],
  ])) {
    const c = /** @type {any} */ (new Client({ socket: NOWHERE }));
    const pieces = c._answered(batch, 413, Buffer.from(body));
    assert.deepEqual(pieces.map((/** @type {string[]} */ p) => p.length), sizes);
    assert.deepEqual(pieces.flat(), batch);
    const st = c.stats();
    assert.deepEqual([st.requestLimitBytes, st.requestLimitEvents], [1048576, cap]);
    const items = Array.from({ length: 30 }, () => ({ kind: TOKEN_RAW, id: 'k', body: '{}', at: 0, size: 66 }));
    assert.ok(c._batches(items).every((/** @type {string[]} */ b) => b.length <= cap));
  }
});

test('a 413 without a limit is for bytes, and an event refused alone is dropped', () => {
  for (const body of ['{"message": "too big"}', 'not json', '{"message": "x", "limit": "bytes"}']) {
    const c = /** @type {any} */ (new Client({ socket: NOWHERE }));
    const ten = Array.from({ length: 10 }, () => 'x'.repeat(99)); // 1,000 bytes with the newlines
    assert.deepEqual(c._answered(ten, 413, Buffer.from(body)).map((/** @type {string[]} */ p) => p.length), [5, 5]);
    assert.deepEqual([c.stats().requestLimitBytes, c.stats().requestLimitEvents], [500, 500], body);
  }
  const c = /** @type {any} */ (new Client({ socket: NOWHERE }));
  for (const body of ['{"message": "m", "limit": "events"}', '{"message": "m"}']) {
    assert.deepEqual(c._answered(['{}'], 413, Buffer.from(body)), []);
  }
  const st = c.stats();
  assert.deepEqual([st.droppedOversized, st.tooLarge, st.requests], [2, 2, 2]);
  assert.deepEqual(st.lastErrors, ['event of 3 bytes dropped: m', 'event of 3 bytes dropped: m']);
});
