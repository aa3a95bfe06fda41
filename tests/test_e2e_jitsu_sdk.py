"""Jitsu's own JS SDK (`@jitsu/sdk-js` 3.1.5 from npm, in Node) against the mirror
listener as a stand-in collector (issue 23, point 4).

With `sidecar.mirror.reply: {status: 200, body: '{"status":"ok"}'}` the mirror answers as
Jitsu's collector does: the SDK logs no "Failed to send", and every event is cached under
its key. A browser key sends a batch of two events to `/api/v1/event?token=` through the
SDK's browser transport (XMLHttpRequest in jsdom, from a page of another origin, so the
answer needs the CORS headers of `reply.headers`); a server key sends to `/api/v1/s2s/event`
through fetch. The controls show the check can fail: the default reply (202) makes the
same SDK log the failure, and so does a 200 without the CORS headers in the browser
(jsdom, like a browser, refuses a cross-origin answer that does not allow the page's
origin).

The SDK and jsdom are installed by `npm ci` from tests/data/jitsu_sdk/package-lock.json
into tmp/npm/ (ignored by git) once, and reused; skipped only when npm is absent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonClient
from tests.support.servers import free_port, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tests" / "data" / "jitsu_sdk"
NPM_DIR = ROOT / "tmp" / "npm"
# docs/feeding.md's rules for Jitsu's trackers: the key in ?token= or X-Auth-Token.
RULES = ["query:token", "header:X-Auth-Token"]
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Auth-Token",
    "Access-Control-Max-Age": 600,
}
JITSU_REPLY = {"status": 200, "body": '{"status":"ok"}', "headers": CORS}
NODE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """The SDK's node_modules, installed once per lock file (a directory named by its
    hash, renamed into place whole, so concurrent runs never see half an install)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm (and node) not installed: the Jitsu SDK test needs them (apt nodejs)")
    lock = (PACKAGE / "package-lock.json").read_bytes()
    target = NPM_DIR / f"jitsu-sdk-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (target / "node_modules" / "@jitsu" / "sdk-js").is_dir():
        work = NPM_DIR / f"install-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PACKAGE / name, work / name)
        command = [npm, "ci", "--no-audit", "--no-fund", "--cache", str(NPM_DIR / "cache")]
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
        try:
            work.rename(target)
        except OSError:  # another run put it there first
            shutil.rmtree(work, ignore_errors=True)
    return target / "node_modules"


def send(node_modules: Path, mode: str, port: int, key: str) -> str:
    """Run the SDK (tests/data/jitsu_sdk/send.js); its whole output (the SDK's log)."""
    done = subprocess.run(
        ["node", str(PACKAGE / "send.js"), mode, f"http://127.0.0.1:{port}", key],
        env={**os.environ, "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
    )
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def mirror(start_daemon: Any, reply: dict[str, Any] | None) -> tuple[DaemonClient, int]:
    port = free_port()
    settings: dict[str, Any] = {"listen": f"127.0.0.1:{port}", "token_from": RULES}
    if reply is not None:
        settings["reply"] = reply
    return start_daemon({"sidecar": {"mirror": settings}}), port


def cached(daemon: DaemonClient, key: str, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        events: list[dict[str, Any]] = daemon.query(namespace="token", ids=key)["events"]
        return events if len(events) >= count else None

    found: list[dict[str, Any]] = wait_for(enough, what=f"{count} events of {key}")
    return found


def test_the_sdk_sends_to_the_mirror_as_to_jitsus_collector(
    start_daemon: Any, node_modules: Path
) -> None:
    daemon, port = mirror(start_daemon, JITSU_REPLY)
    browser = send(node_modules, "browser", port, "js.browser-key")
    server = send(node_modules, "server", port, "s2s.server-key")
    for output, mode in ((browser, "browser"), (server, "server")):
        assert output.startswith("exit 0") and f"sent {mode}" in output, output
        assert "Failed to send" not in output, output
    both = cached(daemon, "js.browser-key", 2)
    assert sorted(e["original"]["test_event"] for e in both) == ["browser-1", "browser-2"]
    for event in both:
        assert event["token_id"] == "js.browser-key"
        assert event["original"]["api_key"] == "js.browser-key"
        assert event["original"]["url"] == "http://app.test/checkout"  # from the page
    [alone] = cached(daemon, "s2s.server-key", 1)
    assert alone["original"]["test_event"] == "server-1"
    assert alone["original"]["event_type"] == "order_paid"
    # One POST each, answered 200: the browser's two events came as one batch.
    answered = {
        key: value
        for key, value in daemon.metrics().items()
        if key.startswith("events_cache_http_request_duration_seconds_count{")
        and 'listener="mirror"' in key
    }
    assert list(answered.values()) == [2], answered
    assert 'method="POST"' in next(iter(answered)) and 'status="200"' in next(iter(answered))
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == 3


def test_the_default_reply_is_a_failure_to_the_sdk(start_daemon: Any, node_modules: Path) -> None:
    """The control: the mirror's 202 (right for a mirrored copy) is what the SDK logs as
    a failure, though the event is cached."""
    daemon, port = mirror(start_daemon, None)
    output = send(node_modules, "server", port, "s2s.default-reply")
    assert "Failed to send data" in output and "#202" in output, output
    cached(daemon, "s2s.default-reply", 1)


def test_a_browser_needs_the_cors_headers(start_daemon: Any, node_modules: Path) -> None:
    """The control of `reply.headers`: 200 `{"status":"ok"}` without them, and the page's
    XMLHttpRequest refuses the answer (the events are cached all the same)."""
    daemon, port = mirror(start_daemon, {"status": 200, "body": '{"status":"ok"}'})
    output = send(node_modules, "browser", port, "js.no-cors")
    assert "Failed to send payload" in output and "Cross origin" in output, output
    cached(daemon, "js.no-cors", 2)
