"""Limits at the source (issue 24, docs/api.md "Limits at the source"): the clients hold
back the events of an id the sidecar said it would limit and send their counts instead;
the sidecar's counts stay exact. Against the real daemon, each client driven by its
`drive` program as in tests/test_clients.py: 10,000 events for one key with exact
accounting, a capture-tagged event never held back, an old client (plain NDJSON, no
count lines) and an old sidecar (a real HTTP server in front of the daemon that answers
without `limited`) both exact.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.scrape import metric_sum, settle
from tests.support.servers import wait_for
from tests.test_clients import Driven, agree, driven_steps, go_build, roomy  # noqa: F401

pytestmark = pytest.mark.e2e

# Five events an hour per id and list: the sixth is limited, and stays limited.
TIGHT = roomy({"server": {"cache": {"events": {"size": 5, "time_window_sec": 3600}}}})
AT_SOURCE_FLAVOURS = ("python", "asyncio", "go", "node")


@pytest.fixture(params=AT_SOURCE_FLAVOURS)
def steps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Driven]]:
    """As tests/test_clients.py's `steps`: the flavour's drive program, --commands."""
    yield from driven_steps(request, tmp_path)


def last_minute_limited(daemon: Any, id_: str, status: str | None = None) -> int:
    params: dict[str, Any] = {"namespace": "token", "ids": id_, "limit": 0}
    if status:
        params["status"] = status
    found: int = daemon.query(**params)["last_minute_limited"]
    return found


def wait_limited(daemon: Any, id_: str, expected: int, status: str | None = None) -> None:
    """last_minute_limited reaches `expected` (the pods flush their counts each second)."""
    wait_for(
        lambda: last_minute_limited(daemon, id_, status) >= expected,
        timeout=10,
        what=f"last_minute_limited {expected}",
    )
    assert last_minute_limited(daemon, id_, status) == expected


def test_10000_events_of_one_key_exact(steps: Callable[..., Driven], start_daemon: Any) -> None:
    """10 error events spend both buckets of the key; the sidecar's answer names it, so
    of the next 9,990 the vouched objects and the error events are held back and counted;
    the tagged and the unvouched ones are sent. Every count is exact on both sides."""
    daemon = start_daemon(TIGHT)
    client = steps("--socket", daemon.socket_path)
    body = '{"event_type": "pageview"}'
    client("incoming", id="busy", body=body, parsed=True, error="bad", count=10)
    client("flush")  # the answer names "busy": both lists, until an hour from now
    client("incoming", id="busy", body=body, parsed=True, count=4980)
    client("incoming", id="busy", body=body, parsed=True, error="bad", count=5000)
    client("incoming", id="busy", body=body, parsed=True, capture="run-1", count=5)
    client("incoming", id="busy", body=body, count=5)  # not vouched: sent
    stats = client("close")["stats"]
    assert (stats["held_back"], stats["sent"]) == (9980, 20), stats
    assert (stats["accepted"], stats["rate_limited"], stats["dropped"]) == (10, 10, 0), stats
    agree(daemon, stats)
    m = daemon.metrics()
    assert metric_sum(m, "events_cache_received_total") == 10000
    assert metric_sum(m, "events_cache_rate_limited_total", 'collection="all"') == 9990
    assert metric_sum(m, "events_cache_rate_limited_total", 'collection="error"') == 5005
    assert daemon.metric("events_cache_limited_at_source_total", cache_namespace="token") == 9980
    assert daemon.metric("events_cache_captured_total", cache_namespace="token") == 5
    assert daemon.metric("events_cache_invalid_total") == 0
    wait_limited(daemon, "busy", 9990)
    wait_limited(daemon, "busy", 5005, status="error")
    tagged = daemon.query(namespace="token", ids="busy", capture="run-1")["events"]
    assert len(tagged) == 5
    activity = daemon.api("/api/v1/events/activity", {"namespace": "token", "ids": "busy"})
    assert activity.status == 200, activity.raw
    assert _activity_sum(activity.json, "received") == 10000
    assert _activity_sum(activity.json, "rate_limited") == 9990


def _activity_sum(doc: Any, kind: str) -> int:
    """The sum of one kind's counts over an activity answer (whatever its nesting)."""
    total = 0
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == kind and isinstance(value, list):
                total += sum(v for v in value if isinstance(v, int))
            else:
                total += _activity_sum(value, kind)
    elif isinstance(doc, list):
        total += sum(_activity_sum(v, kind) for v in doc)
    return total


def test_a_tagged_event_is_never_held_back(steps: Callable[..., Driven], start_daemon: Any) -> None:
    """Once the key is limited, every tagged call is sent and cached with its tag."""
    daemon = start_daemon(TIGHT)
    client = steps("--socket", daemon.socket_path)
    body = '{"a": 1}'
    client("incoming", id="k", body=body, parsed=True, count=6)
    client("flush")
    held = client("incoming", id="k", body=body, parsed=True, count=3)["stats"]["held_back"]
    assert held == 3
    client("incoming", id="k", body=body, parsed=True, capture="t-9", count=4)
    stats = client("close")["stats"]
    assert (stats["held_back"], stats["sent"], stats["accepted"]) == (3, 10, 9), stats
    agree(daemon, stats)
    assert len(daemon.query(namespace="token", ids="k", capture="t-9")["events"]) == 4


def test_an_old_client_loses_nothing(start_daemon: Any) -> None:
    """Plain NDJSON, 10,000 lines of one key in 10 requests, no count lines: every answer
    carries `limited` (ignored), every count is exact."""
    daemon = start_daemon(TIGHT)
    line = {"namespace": "token", "id": "old", "original": {"a": 1}}
    for _ in range(10):
        reply = daemon.post_ndjson([line] * 1000)
        assert reply.status == 202, reply.raw
        answer = reply.json
        assert answer["accepted"] + answer["rate_limited"] == 1000
        [entry] = answer["limited"]
        assert (entry["namespace"], entry["id"], entry["collections"]) == ("token", "old", ["all"])
        assert entry["until"].endswith("Z")
    settle(daemon)
    m = daemon.metrics()
    assert metric_sum(m, "events_cache_received_total") == 10000
    assert metric_sum(m, "events_cache_rate_limited_total", 'collection="all"') == 9995
    assert metric_sum(m, "events_cache_limited_at_source_total") == 0
    wait_limited(daemon, "old", 9995)


def test_count_lines_are_validated(start_daemon: Any) -> None:
    """A count line is taken when whole and within its bound; any other is invalid,
    counted and reported like any bad line, and the valid lines around it are taken."""
    daemon = start_daemon(TIGHT)
    good = {"namespace": "token", "id": "c", "collection": "all", "limited_at_source": 7}
    bad = [
        {**good, "limited_at_source": 0},
        {**good, "limited_at_source": 1_000_001},
        {**good, "limited_at_source": True},
        {**good, "limited_at_source": 2.5},
        {**good, "collection": "other"},
        {**good, "namespace": "nope"},
        {**good, "id": "x:error"},
        {**good, "extra": 1},
    ]
    error_line = {**good, "collection": "error", "limited_at_source": 2}
    reply = daemon.post_ndjson([good, *bad, error_line])
    assert reply.status == 202, reply.raw
    answer = reply.json
    assert (answer["accepted"], answer["rate_limited"], answer["invalid"]) == (0, 0, 8)
    assert [e["line"] for e in answer["errors"]] == list(range(2, 10))
    assert "limited_at_source" in answer["errors"][0]["message"]
    m = daemon.metrics()
    assert metric_sum(m, "events_cache_invalid_total") == 8
    assert metric_sum(m, "events_cache_received_total") == 7
    assert metric_sum(m, "events_cache_rate_limited_total", 'collection="all"') == 7
    assert metric_sum(m, "events_cache_rate_limited_total", 'collection="error"') == 2
    assert daemon.metric("events_cache_limited_at_source_total", cache_namespace="token") == 7
    wait_limited(daemon, "c", 7)
    wait_limited(daemon, "c", 2, status="error")


class _OldSidecar(http.server.ThreadingHTTPServer):
    """A real HTTP server that answers as a sidecar from before limits at the source:
    it hands each body to the daemon's ingest and answers with the daemon's answer
    without `limited`; it records whether a count line ever reached it."""

    daemon: Any
    count_lines = 0


class _OldHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _OldSidecar

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.count_lines += body.count(b'"limited_at_source"')
        reply = self.server.daemon.post_ndjson(body)
        answer = reply.json
        answer.pop("limited", None)
        data = json.dumps(answer).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def old_sidecar(start_daemon: Any) -> Iterator[_OldSidecar]:
    server = _OldSidecar(("127.0.0.1", 0), _OldHandler)
    server.daemon = start_daemon(TIGHT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_old_sidecar_loses_nothing(
    steps: Callable[..., Driven], old_sidecar: _OldSidecar
) -> None:
    """Answers without `limited`: the client holds nothing back and sends no count line;
    every event reaches the daemon and every count is exact."""
    port = old_sidecar.server_address[1]
    client = steps("--url", f"http://127.0.0.1:{port}")
    body = '{"a": 1}'
    client("incoming", id="o", body=body, parsed=True, count=10)
    client("flush")
    client("incoming", id="o", body=body, parsed=True, count=9990)
    stats = client("close")["stats"]
    assert (stats["held_back"], stats["sent"]) == (0, 10000), stats
    assert (stats["accepted"], stats["rate_limited"]) == (5, 9995), stats
    assert old_sidecar.count_lines == 0
    daemon = old_sidecar.daemon
    settle(daemon)
    m = daemon.metrics()
    assert metric_sum(m, "events_cache_received_total") == 10000
    assert metric_sum(m, "events_cache_rate_limited_total", 'collection="all"') == 9995
    wait_limited(daemon, "o", 9995)


def test_the_ingest_answer_limited_names_only_empty_buckets(start_daemon: Any) -> None:
    """`limited` names the request's ids whose all bucket is empty, with both lists when
    the error bucket is empty too; an id with room is not named."""
    daemon = start_daemon(TIGHT)
    line = {"namespace": "token", "id": "a", "original": {}}
    errors = {"namespace": "token", "id": "b", "malformed": "x", "error": "bad"}
    roomy_line = {"namespace": "destination", "id": "d", "original": {}, "success": {}}
    answer = daemon.post_ndjson([line] * 6 + [errors] * 5 + [roomy_line]).json
    assert [(e["namespace"], e["id"], e["collections"]) for e in answer["limited"]] == [
        ("token", "a", ["all"]),
        ("token", "b", ["all", "error"]),
    ]
    token = daemon.post_token("a", b"{}")
    assert "limited" not in token.json  # only POST /v1/events answers with it


def test_counts_go_out_alone_when_no_event_does(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """Held-back counts with nothing else to send reach the sidecar by themselves, without
    a flush (within a second of the first; waited for here, not timed)."""
    daemon = start_daemon(TIGHT)
    client = steps("--socket", daemon.socket_path)
    client("incoming", id="quiet", body="{}", parsed=True, count=6)
    client("flush")
    assert (
        client("incoming", id="quiet", body="{}", parsed=True, count=3)["stats"]["held_back"] == 3
    )
    wait_for(
        lambda: daemon.metric("events_cache_limited_at_source_total", cache_namespace="token") == 3,
        timeout=10,
        what="the held-back counts",
    )
    stats = client("close")["stats"]
    assert (stats["held_back"], stats["sent"]) == (3, 6), stats
    agree(daemon, stats)
    wait_limited(daemon, "quiet", 4)
