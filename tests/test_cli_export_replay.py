"""`events-cache export` and `events-cache replay` against a live daemon (issue 23, point 3).

Export pages through more events than one answer may hold (small `max_response_events`
and a long event past `max_response_bytes`); replay sends to a recording HTTP server of
this test's own, on a real port: the bodies are the originals, `Idempotency-Key` their
uids, the key in the URL or a header, the pace kept, and the destination-error path goes
through the journeys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.daemon import ADMIN_TOKEN
from tests.support.scrape import settle
from tests.support.servers import free_port

pytestmark = pytest.mark.e2e

# Room for every event of these tests (no limiting), and answers of at most 4 events.
CONFIG = {
    "server": {"cache": {"events": {"size": 60, "time_window_sec": 3600}}},
    "sidecar": {"api": {"max_response_events": 4, "max_response_bytes": 131072}},
}


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    env["EVENTS_CACHE_ADMIN_TOKEN"] = ADMIN_TOKEN
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


class Recorder:
    """A collector stand-in: records every POST; answers 500 to a body holding
    "fail-me", 200 otherwise."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                recorder.requests.append(Received(time.monotonic(), self.path, headers, body))
                status = 500 if b"fail-me" in body else 200
                answer = b'{"status":"ok"}' if status == 200 else b'{"error":"boom"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.stop()


@pytest.fixture
def daemon(start_daemon: Any) -> Any:
    return start_daemon(CONFIG)


def url_of(daemon: Any) -> str:
    return f"http://127.0.0.1:{daemon.api_port}"


def exported(daemon: Any, *args: str) -> list[dict[str, Any]]:
    done = cli("export", "--url", url_of(daemon), *args)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.stderr.strip() == f"(exported {len(lines)} event{'' if len(lines) == 1 else 's'})"
    return lines


def test_export_pages_through_more_than_one_answer_holds(daemon: Any) -> None:
    for n in range(23):
        daemon.post_token("shop", json.dumps({"n": n, "event_type": "pageview"}))
    for n in range(6):
        daemon.post_token("blog", json.dumps({"n": 100 + n, "event_type": "click"}))
    daemon.post_token("blog", "not json {")
    settle(daemon)
    one = daemon.query(namespace="token", ids="shop", limit="60")
    assert one["response_events"] == 4  # what one answer may hold (max_response_events)

    events = exported(daemon)
    assert len(events) == 30 and len({e["uid"] for e in events}) == 30
    shop = [e["original"]["n"] for e in events if e["token_id"] == "shop"]
    assert shop == list(reversed(range(23)))  # each id newest first, nothing skipped
    blog = [e for e in events if e["token_id"] == "blog"]
    assert len(blog) == 7 and sum("malformed" in e for e in blog) == 1

    assert len(exported(daemon, "--ids", "blog", "--q", "click")) == 6
    assert len(exported(daemon, "--ids", "blog", "--status", "error")) == 1
    assert exported(daemon, "--ids", "shop", "--since", "1d")[0]["original"]["n"] == 22
    assert exported(daemon, "--ids", "shop", "--until", "2000-01-01T00:00:00Z") == []


def test_export_gives_an_event_longer_than_an_answer_whole(daemon: Any) -> None:
    pad = "x" * 200_000  # longer than max_response_bytes: answers hold it cut
    daemon.post_token("big", json.dumps({"event_type": "huge", "pad": pad}))
    daemon.post_token("big", json.dumps({"event_type": "small"}))
    settle(daemon)
    small, huge = exported(daemon, "--ids", "big")
    assert small["original"] == {"event_type": "small"}
    assert huge["original"] == {"event_type": "huge", "pad": pad} and "cut" not in huge


def test_export_says_what_is_wrong(daemon: Any) -> None:
    done = cli("export", "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1 and "cannot reach the events-cache API" in done.stderr
    done = cli("export", "--url", url_of(daemon), "--since", "yesterday")
    assert done.returncode == 1 and "--since must be RFC 3339" in done.stderr


def feed_token(daemon: Any, key: str, docs: list[Any]) -> None:
    for doc in docs:
        daemon.post_token(key, doc if isinstance(doc, str) else json.dumps(doc))
    settle(daemon)


def test_replay_sends_the_originals_with_the_key_in_the_url(
    daemon: Any, recorder: Recorder
) -> None:
    key = "js.key/with space"
    docs = [{"event_type": "e", "n": n, "nested": {"a": [1, 2.5, None]}} for n in range(9)]
    feed_token(daemon, key, [*docs, "not json {"])
    uids = {e["original"]["n"]: e["uid"] for e in exported(daemon) if "original" in e}
    to = recorder.url("/api/v1/s2s/event?token={token}")
    done = cli("replay", "--url", url_of(daemon), "--to", to, "--rate", "0", "--output", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["sent"] == 9 and summary["statuses"] == {"200": 9}
    assert summary["malformed_skipped"] == 1 and summary["failed"] == 0
    assert len(recorder.requests) == 9
    for request in recorder.requests:
        path, _, query = request.path.partition("?")
        assert path == "/api/v1/s2s/event"
        assert urllib.parse.parse_qs(query) == {"token": [key]}
        body = json.loads(request.body)
        assert body == docs[body["n"]]
        assert request.headers["idempotency-key"] == uids[body["n"]]
        assert request.headers["content-type"] == "application/json"


def test_replay_puts_the_key_in_a_header_and_lists_failures(
    daemon: Any, recorder: Recorder
) -> None:
    feed_token(daemon, "k1", [{"n": 1}, {"n": 2, "why": "fail-me"}])
    feed_token(daemon, "k2", [{"n": 3}])
    to = recorder.url("/api/v1/s2s/event")
    done = cli(
        "replay", "--url", url_of(daemon), "--to", to, "--token-header", "X-Auth-Token",
        "--rate", "0",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == "sent 3 originals (200: 2, 500: 1)"
    assert 'key k1: 500 {"error":"boom"}' in done.stdout
    by_n = {json.loads(r.body)["n"]: r for r in recorder.requests}
    assert {n: r.headers["x-auth-token"] for n, r in by_n.items()} == {1: "k1", 2: "k1", 3: "k2"}
    assert all(r.path == "/api/v1/s2s/event" for r in recorder.requests)


def test_replay_refuses_a_target_without_a_place_for_the_key(daemon: Any) -> None:
    done = cli("replay", "--url", url_of(daemon), "--to", "http://127.0.0.1:9/api/v1/event")
    assert done.returncode == 2 and "say where the API key goes" in done.stderr
    done = cli("replay", "--url", url_of(daemon), "--to", "ftp://x/{token}")
    assert done.returncode == 2 and "--to must be an http(s):// URL" in done.stderr
    done = cli("replay", "--url", url_of(daemon))
    assert done.returncode == 2 and "--to" in done.stderr  # argparse: required
    unreachable = f"http://127.0.0.1:{free_port()}"
    done = cli("replay", "--url", unreachable, "--to", "http://127.0.0.1:9/{token}")
    assert done.returncode == 2 and "cannot reach the events-cache API" in done.stderr


def test_dry_run_prints_what_a_replay_sends(daemon: Any, recorder: Recorder) -> None:
    feed_token(daemon, "dry", [{"n": n} for n in range(5)])
    to = recorder.url("/e?token={token}")
    dry = cli("replay", "--url", url_of(daemon), "--to", to, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    requests = [json.loads(line) for line in dry.stdout.splitlines()]
    assert recorder.requests == []
    assert "would send 5 originals" in dry.stderr
    assert {r["url"] for r in requests} == {recorder.url("/e?token=dry")}
    assert sorted(r["body"]["n"] for r in requests) == list(range(5))
    sent = cli("replay", "--url", url_of(daemon), "--to", to, "--rate", "0")
    assert sent.returncode == 0, sent.stderr
    assert [json.loads(r.body) for r in recorder.requests] == [r["body"] for r in requests]
    assert [r.headers["idempotency-key"] for r in recorder.requests] == [
        r["headers"]["Idempotency-Key"] for r in requests
    ]


def test_replay_keeps_its_rate(daemon: Any, recorder: Recorder) -> None:
    """At 20 a second, 6 requests span at least 5 intervals of 50 ms (a lower bound the
    schedule guarantees, whatever the machine's speed; 10% spared for clock grain)."""
    feed_token(daemon, "paced", [{"n": n} for n in range(6)])
    done = cli("replay", "--url", url_of(daemon), "--to", recorder.url("/{token}"), "--rate", "20")
    assert done.returncode == 0, done.stderr
    times = sorted(r.at for r in recorder.requests)
    assert len(times) == 6 and times[-1] - times[0] >= 5 * 0.05 * 0.9


def test_replay_of_destination_errors_goes_through_the_journeys(
    daemon: Any, recorder: Recorder
) -> None:
    """Failed destination entries lead to their token-side originals: each sent once
    however many destinations failed it; an entry with no event id, or whose original
    is gone, is reported as not replayable; successes are not selected."""

    def event(n: int) -> dict[str, Any]:
        return {"event_type": "order", "eventn_ctx": {"event_id": f"ev-{n}"}, "n": n}

    feed_token(daemon, "js.shop", [event(1), event(2), event(3)])
    lines = [
        {"namespace": "destination", "id": "pg", "original": event(1), "error": "no table"},
        {"namespace": "destination", "id": "bq", "original": event(1), "error": "quota"},
        {"namespace": "destination", "id": "pg", "original": event(2), "error": "no table"},
        {"namespace": "destination", "id": "pg", "original": event(3), "success": {"ok": 1}},
        {"namespace": "destination", "id": "pg", "original": {"n": 9}, "error": "no id"},
        {"namespace": "destination", "id": "pg", "original": event(4), "error": "never received"},
    ]
    daemon.post_ndjson(lines)
    settle(daemon)
    to = recorder.url("/api/v1/s2s/event?token={token}")
    base = ["replay", "--url", url_of(daemon), "--to", to, "--rate", "0"]
    done = cli(*base, "--namespace", "destination", "--status", "error", "--output", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    sent = sorted(json.loads(r.body)["n"] for r in recorder.requests)
    assert sent == [1, 2]
    assert summary["already_sent"] == 1 and summary["not_replayable"] == 2
    reasons = sorted(u["reason"] for u in summary["unreplayable"])
    assert reasons[0] == "event ev-4: its original is no longer cached"
    assert reasons[1].startswith("no event id in the entry")
    token_uids = {e["original"]["n"]: e["uid"] for e in exported(daemon, "--ids", "js.shop")}
    for request in recorder.requests:
        n = json.loads(request.body)["n"]
        assert request.headers["idempotency-key"] == token_uids[n]  # the token entry's uid
        assert request.path == "/api/v1/s2s/event?token=js.shop"
    # --ids narrows the destinations: bq's failure alone.
    recorder.requests.clear()
    done = cli(*base, "--namespace", "destination", "--status", "error", "--ids", "bq")
    assert done.returncode == 0, done.stderr
    assert [json.loads(r.body)["n"] for r in recorder.requests] == [1]


def test_replay_to_a_collector_that_does_not_answer_fails(daemon: Any) -> None:
    feed_token(daemon, "nobody", [{"n": 1}])
    to = f"http://127.0.0.1:{free_port()}/{{token}}"
    done = cli("replay", "--url", url_of(daemon), "--to", to, "--ids", "nobody", "--rate", "0")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == "sent 1 original (no answer: 1)"
    assert "key nobody: no answer (ConnectionRefusedError" in done.stdout
