// Drives Jitsu's own JS SDK (@jitsu/sdk-js from npm) against a stand-in collector: the
// events-cache mirror listener. NODE_PATH names the node_modules holding the SDK (and
// jsdom, the browser the browser mode runs in).
//
//   node send.js browser URL KEY   two track() calls, sent as one batch by the browser
//                                  transport (XMLHttpRequest, CORS and all) to
//                                  /api/v1/event?token=KEY from a page at http://app.test/
//   node send.js server URL KEY    one track() call through fetch to /api/v1/s2s/event?token=KEY
//
// The SDK's own log (console.*) is passed through; the caller looks for "Failed to send".
// Prints "sent <mode>" when the SDK's send resolved, and exits 0; exits 1 otherwise.
"use strict";

const [mode, url, key] = process.argv.slice(2);

async function browser() {
  const { JSDOM } = require("jsdom");
  const dom = new JSDOM("<!doctype html><title>shop</title>", {
    url: "http://app.test/checkout",
    referrer: "http://search.test/",
  });
  // What the SDK reads as globals in a browser.
  for (const name of ["window", "document", "navigator", "location", "screen", "localStorage"]) {
    Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true });
  }
  const { jitsuClient } = require("@jitsu/sdk-js");
  const jitsu = jitsuClient({ key, tracking_host: url, log_level: "warn" });
  // Queued (max_send_attempts > 1, the default), then flushed together: one request, a
  // JSON array of the two events, as a page that tracks twice in a row sends them.
  jitsu.track("page_view", { test_event: "browser-1" });
  jitsu.track("add_to_cart", { test_event: "browser-2", product_id: 42 });
  await jitsu.flush();
  dom.window.close();
}

async function server() {
  const { jitsuClient } = require("@jitsu/sdk-js");
  const jitsu = jitsuClient({ key, tracking_host: url, log_level: "warn", max_send_attempts: 1 });
  await jitsu.track("order_paid", { test_event: "server-1", amount: 9.5 });
}

(mode === "browser" ? browser() : server()).then(
  () => {
    console.log(`sent ${mode}`);
    process.exit(0);
  },
  (e) => {
    console.error(`send failed: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  },
);
