'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { LineBuilder, TOKEN_RAW, TOKEN_JSON, DESTINATION, TOKEN_PARSED } = require('../lib/lines.js');

const AT = Date.UTC(2024, 4, 1, 12, 0, 0, 250);

/** @param {any} item */
function build(item, max = 10000) {
  return new LineBuilder(max, true).lines({ id: 'js.key', at: AT, size: 0, ...item }).map((l) => {
    assert.ok(!l.includes('\n'));
    return JSON.parse(l);
  });
}
/** @param {string | Buffer} body @param {any} [more] */
const raw = (body, more = {}) => build({ kind: TOKEN_RAW, body, ...more });

test('an object body is one entry with its own text', () => {
  const [line] = raw(Buffer.from('{"event_type": "pageview",\n "n": 1}\n'));
  assert.deepEqual(line, {
    namespace: 'token', id: 'js.key', original: { event_type: 'pageview', n: 1 },
    timestamp: '2024-05-01T12:00:00.250000Z',
  });
});

test('an array body is one entry per element', () => {
  const lines = raw('[{"a": 1}, 2, "x", {"b": [1, 2]}]');
  assert.deepEqual(lines.map((l) => l.original), [{ a: 1 }, undefined, undefined, { b: [1, 2] }]);
  assert.equal(lines[1].malformed, '2');
  assert.equal(lines[1].error, 'array element 1 is a number, not an object');
  assert.equal(lines[2].error, 'array element 2 is a string, not an object');
});

test('what is not an object or an array is malformed', () => {
  const cases = {
    '': 'empty body',
    '  \n': 'empty body',
    '"text"': 'body is a string, not an object or an array of objects',
    null: 'body is null, not an object or an array of objects',
  };
  for (const [body, error] of Object.entries(cases)) {
    const [line] = raw(body);
    assert.equal(line.error, error);
    assert.equal(line.original, undefined);
  }
  assert.equal(raw(Buffer.from([0xff, 0x7b, 0x7d]))[0].error, 'invalid JSON: not valid UTF-8');
  for (const body of ['{broken', '{"a": NaN}', '{"a":1} {"b":2}']) {
    const [line] = raw(body);
    assert.match(line.error, /^invalid JSON: /);
    assert.equal(line.malformed, body);
  }
});

test('malformed bodies are cut and made valid UTF-8', () => {
  assert.equal(raw(Buffer.from([0x61, 0x62, 0xff, 0x63]))[0].malformed, 'ab\ufffdc');
  const [line] = build({ kind: TOKEN_RAW, body: 'x'.repeat(20000) }, 100);
  assert.equal(line.malformed, 'x'.repeat(100));
});

test('skip and ingest error', () => {
  const [skipped] = raw('{"a": 1}', { skip: 'bot' });
  assert.equal(skipped.skip, 'bot');
  assert.deepEqual(skipped.original, { a: 1 });
  const [rejected] = raw('{"a": 1}', { error: 'bad api key' });
  assert.deepEqual(rejected, {
    namespace: 'token', id: 'js.key', malformed: '{"a": 1}', error: 'bad api key',
    timestamp: '2024-05-01T12:00:00.250000Z',
  });
  assert.deepEqual(build({ kind: TOKEN_JSON, body: '{"a":2}' })[0].original, { a: 2 });
});

test('destination entries', () => {
  const [a] = build({ kind: DESTINATION, body: Buffer.from('{"a":\n 2}'), error: 'refused', tokenId: 'js.key' });
  assert.deepEqual([a.original, a.error, a.token_id, a.namespace], [{ a: 2 }, 'refused', 'js.key', 'destination']);
  assert.equal(build({ kind: DESTINATION, body: 'not json', skip: 'x' })[0].original, 'not json');
  assert.equal(build({ kind: DESTINATION, body: '[1]', skip: 'x' })[0].original, '[1]');
  const [s] = build({ kind: DESTINATION, body: '{}', encoded: true, success: '{"t":1}', successEncoded: true });
  assert.deepEqual(s.success, { t: 1 });
  const [both] = build({ kind: DESTINATION, body: '{}', encoded: true, success: '{}', successEncoded: true, error: 'x' });
  assert.ok('success' in both && 'error' in both);
});

test('timestamps can be left out', () => {
  const [l] = new LineBuilder(100, false).lines({ kind: TOKEN_JSON, id: 'k', body: '{}', at: AT, size: 0 });
  assert.equal(JSON.parse(l).timestamp, undefined);
});

test('a capture tag is on every line of its call only', () => {
  const lines = raw('[{"a": 1}, 2]', { capture: 'run "42"' });
  assert.deepEqual(lines.map((l) => l.capture), ['run "42"', 'run "42"']);
  const [dest] = build({ kind: DESTINATION, body: '{"n":1}', error: 'down', capture: 'run-1' });
  assert.equal(dest.capture, 'run-1');
  assert.equal(dest.error, 'down');
  const builder = new LineBuilder(10000, false);
  builder.lines({ kind: TOKEN_JSON, id: 'k', body: '{}', capture: 't', at: AT, size: 0 });
  const [plain] = builder.lines({ kind: TOKEN_JSON, id: 'k', body: '{}', at: AT, size: 0 });
  assert.ok(!plain.includes('capture'), plain);
});

test('a vouched object is sent as it is, on one line, unparsed', () => {
  const body = '\n  {\r\n  "event_type": "pageview",\n  "nested": {"a": [1, 2]}\n}\n\n';
  for (const b of [body, Buffer.from(body)]) {
    const [line] = new LineBuilder(10000, false).lines({ kind: TOKEN_PARSED, id: 'js.key', body: b, skip: 'bot', at: AT, size: 0 });
    assert.equal(line, '{"namespace":"token","id":"js.key","original":{    "event_type": "pageview",   "nested": {"a": [1, 2]} },"skip":"bot"}');
    const [l] = build({ kind: TOKEN_PARSED, body: b });
    assert.deepEqual(l.original, { event_type: 'pageview', nested: { a: [1, 2] } });
  }
});

test('a vouched array, or any other body, is still parsed and split', () => {
  const lines = build({ kind: TOKEN_PARSED, body: Buffer.from('\n[{"a": 1},\n 2]') });
  assert.deepEqual(lines.map((l) => l.original), [{ a: 1 }, undefined]);
  assert.equal(lines[1].error, 'array element 1 is a number, not an object');
  assert.equal(build({ kind: TOKEN_PARSED, body: '"text"' })[0].malformed, '"text"');
  assert.equal(build({ kind: TOKEN_PARSED, body: Buffer.from([0x7b, 0xff, 0x7d]) })[0].error, 'invalid JSON: not valid UTF-8');
});

test('a broken promise is sent unchecked, on one line', () => {
  const [line] = new LineBuilder(10000, false).lines({ kind: TOKEN_PARSED, id: 'k', body: '{"broken\n', at: AT, size: 0 });
  assert.equal(line, '{"namespace":"token","id":"k","original":{"broken}');
});
