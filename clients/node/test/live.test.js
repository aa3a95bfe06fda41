'use strict';
// Against a running sidecar, when EVENTS_CACHE_TEST_SOCKET or EVENTS_CACHE_TEST_URL
// names one (the repository's tests/test_clients.py starts one and sets them). The
// behaviours that need a sidecar configured to provoke them (413s, rate limits,
// rejections, outages, restarts, a hung sidecar) are driven by tests/test_clients.py.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('../index.js');

/** @type {{socket?: string, url?: string}[]} */
const transports = [];
if (process.env.EVENTS_CACHE_TEST_SOCKET) transports.push({ socket: process.env.EVENTS_CACHE_TEST_SOCKET });
if (process.env.EVENTS_CACHE_TEST_URL) transports.push({ url: process.env.EVENTS_CACHE_TEST_URL });
const N = 2000;

test('live delivery', { skip: transports.length === 0 && 'no live sidecar: set EVENTS_CACHE_TEST_SOCKET or _URL' }, async (t) => {
  for (const transport of transports) {
    await t.test(Object.keys(transport)[0], async () => {
      const key = `live-node-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
      const c = new Client(transport);
      for (let n = 0; n < N; n++) c.incoming(key, Buffer.from(`{"n":${n}}`));
      c.incoming(key, 'not json');
      c.processed(key, { n: 0 }, { error: 'refused', tokenId: key });
      c.processed(key, { n: 1 }, { success: { t: 1 }, error: 'both: invalid' });
      assert.equal(await c.close(10000), true);
      const st = c.stats();
      assert.equal(st.sent, N + 3);
      assert.equal(st.accepted + st.rateLimited, N + 2);
      assert.equal(st.invalid, 1);
      assert.equal(st.dropped, 0);
      assert.match(st.lastErrors.at(-1) || '', /exactly one/);
    });
  }
});
