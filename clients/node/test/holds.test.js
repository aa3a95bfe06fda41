'use strict';
// Limits at the source, without a sidecar: which events are held back, the count lines.
const test = require('node:test');
const assert = require('node:assert');
const { Holds, countLinesIn, oneObject } = require('../lib/holds.js');

function limited(now) {
  const until = new Date(now + 3600e3).toISOString();
  return {
    accepted: 0,
    limited: [
      { namespace: 'token', id: 'a', collections: ['all'], until },
      { namespace: 'token', id: 'b', collections: ['all', 'error'], until },
      { namespace: 'destination', id: 'd', collections: ['all'], until },
    ],
  };
}

test('holds back only what the sidecar would certainly limit', () => {
  const h = new Holds();
  const now = Date.now();
  h.answered(limited(now), now);
  assert.strictEqual(h.supported, true);
  assert.strictEqual(h.hold('a', '{"x":1}', undefined, true, now), true); // vouched object
  assert.strictEqual(h.hold('a', { x: 1 }, undefined, false, now), true); // a parsed object
  assert.strictEqual(h.hold('a', '{"x":1}', undefined, false, now), false); // not vouched
  assert.strictEqual(h.hold('a', '[{}]', undefined, true, now), false); // an array
  assert.strictEqual(h.hold('a', '{}', 'bad', true, now), false); // the error list has room
  assert.strictEqual(h.hold('b', 'junk', 'bad', false, now), true); // both lists limited
  assert.strictEqual(h.hold('d', '{}', undefined, true, now), false); // destinations: never
  assert.strictEqual(h.hold('a', '{}', undefined, true, now + 7200e3), false); // after until
  const lines = h.takeLines();
  assert.deepStrictEqual(lines.map((l) => JSON.parse(l)), [
    { limited_at_source: 2, namespace: 'token', id: 'a', collection: 'all' },
    { limited_at_source: 1, namespace: 'token', id: 'b', collection: 'all' },
    { limited_at_source: 1, namespace: 'token', id: 'b', collection: 'error' },
  ]);
  assert.strictEqual(countLinesIn([...lines, '{"namespace":"token"}']), 3);
  assert.strictEqual(h.held, 3);
  assert.deepStrictEqual(h.takeLines(), []);
});

test('an old sidecar (no "limited") gets no count lines', () => {
  const h = new Holds();
  const now = Date.now();
  h.answered(limited(now), now);
  h.hold('a', { x: 1 }, undefined, false, now);
  h.answered({ accepted: 1 }, now);
  assert.strictEqual(h.hold('a', { x: 1 }, undefined, false, now), false);
  assert.deepStrictEqual(h.takeLines(), []);
});

test('oneObject', () => {
  assert.strictEqual(oneObject(Buffer.from(' \n{}'), true), true);
  assert.strictEqual(oneObject('[]', true), false);
  assert.strictEqual(oneObject([], false), false);
});
