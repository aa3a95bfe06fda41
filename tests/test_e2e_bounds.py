"""The ingest side's bounds per request, end to end: events per request, the body read
deadline, and each refusal counted by listener and reason."""

from __future__ import annotations

import gzip
import json
import socket
import time
from typing import Any

import pytest
import redis

from tests.support.daemon import InProcessDaemon, StartDaemon
from tests.support.scrape import list_key as key
from tests.support.scrape import settle
from tests.support.servers import free_port, wait_for

pytestmark = pytest.mark.e2e

MAX_EVENTS = 5


def rejected(daemon: InProcessDaemon, listener: str, reason: str) -> float:
    return daemon.metric("events_cache_rejected_total", listener=listener, reason=reason)


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> InProcessDaemon:
    mirror = {"listen": f"127.0.0.1:{free_port()}", "token_from": ["query:token"]}
    ingest = {"max_events_per_request": MAX_EVENTS, "body_read_timeout_seconds": 1}
    return start_daemon({"sidecar": {"ingest": ingest, "mirror": mirror}})


def mirror_port(daemon: InProcessDaemon) -> int:
    return int(daemon.config["sidecar"]["mirror"]["listen"].rpartition(":")[2])


def exchange(port: int, data: bytes, *later: bytes, pause: float = 0.0) -> bytes:
    """Send `data` to 127.0.0.1:`port`, then each of `later` after `pause`; what comes
    back until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        for part in later:
            time.sleep(pause)
            sock.sendall(part)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def answer_json(raw: bytes) -> Any:
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def test_events_per_request(daemon: InProcessDaemon, redis_client: redis.Redis) -> None:
    """At the bound a request is taken; one more event is a 413 that says "events"."""
    at_bound = json.dumps([{"n": n} for n in range(MAX_EVENTS)])
    assert daemon.post_token("arr", at_bound).json["accepted"] == MAX_EVENTS
    over = daemon.post_token("arr", json.dumps([{"n": n} for n in range(MAX_EVENTS + 1)]))
    assert over.status == 413
    assert (over.json["limit"], over.json["max"]) == ("events", MAX_EVENTS)
    assert f"holds {MAX_EVENTS + 1} events" in over.json["message"]
    assert "max_events_per_request is 5" in over.json["message"]
    lines = [{"namespace": "token", "id": "nd", "original": {"n": n}} for n in range(MAX_EVENTS)]
    assert daemon.post_ndjson(lines).json["accepted"] == MAX_EVENTS
    assert daemon.post_ndjson([*lines, *lines[:1]]).status == 413
    # Lines count as the client wrote them: a trailing newline adds none.
    body = b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"
    assert daemon.post_ndjson(body).status == 202
    # The same bound through the mirror, on the inflated body.
    port = mirror_port(daemon)
    packed = gzip.compress(json.dumps([{"n": n} for n in range(MAX_EVENTS + 1)]).encode())
    head = (
        b"POST /collect?token=mirrored HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
    )
    raw = exchange(port, head + packed)
    assert raw.startswith(b"HTTP/1.1 413 "), raw[:200]
    assert answer_json(raw)["limit"] == "events" and answer_json(raw)["max"] == MAX_EVENTS
    settle(daemon)
    assert redis_client.llen(key("token", "arr")) == MAX_EVENTS
    assert redis_client.llen(key("token", "nd")) == 2 * MAX_EVENTS
    assert not redis_client.exists(key("token", "mirrored"))
    assert rejected(daemon, "ingest", "too_many_events") == 2
    assert rejected(daemon, "mirror", "too_many_events") == 1


def test_bytes_over_the_bound_say_bytes(start_daemon: StartDaemon) -> None:
    daemon = start_daemon({"sidecar": {"ingest": {"max_request_bytes": 100}}})
    for body, headers in (
        (b"x" * 101, {}),
        (gzip.compress(b" " * 101), {"Content-Encoding": "gzip"}),
    ):
        reply = daemon.post_token("big", body, headers=headers)
        assert reply.status == 413 and reply.json["limit"] == "bytes", reply.raw
        assert reply.json["max"] == 100
        assert "max_request_bytes" in reply.json["message"]
    assert rejected(daemon, "ingest", "too_large") == 2


def test_a_body_not_complete_in_time_is_cut(
    daemon: InProcessDaemon, redis_client: redis.Redis
) -> None:
    """A trickled body is cut after body_read_timeout_seconds, with a 408 that says
    why; the listener still serves others meanwhile; nothing of the body is cached."""
    head = b"POST /v1/token/slow/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    started = time.monotonic()
    raw = exchange(daemon.ingest_port, head + b'{"a": ', b"1", b"2", pause=0.6)
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:300]
    assert "body_read_timeout_seconds" in answer_json(raw)["message"]
    assert time.monotonic() - started < 9  # cut by the deadline, not the client's timeout
    mirror = b"POST /e?token=slow-mirror HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    raw = exchange(mirror_port(daemon), mirror, b" ", b" ", pause=0.6)
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:300]
    # A body that arrives in time, in pieces, is taken.
    body = b'{"in": "time"}'
    head = b"POST /v1/token/pieces/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(body)
    raw = exchange(daemon.ingest_port, head + body[:3], body[3:], pause=0.2)
    assert raw.startswith(b"HTTP/1.1 202 "), raw[:300]
    settle(daemon)
    assert not redis_client.exists(key("token", "slow"))
    assert not redis_client.exists(key("token", "slow-mirror"))
    assert redis_client.llen(key("token", "pieces")) == 1
    wait_for(lambda: rejected(daemon, "ingest", "body_timeout") == 1)
    assert rejected(daemon, "mirror", "body_timeout") == 1


def test_refusals_are_counted_by_reason(daemon: InProcessDaemon) -> None:
    """Every refusal at the door is counted once, under its listener and reason."""
    assert daemon.post_token("x" * 2000, b"{}").status == 400
    assert daemon.post_token("enc", b"xx", headers={"Content-Encoding": "br"}).status == 415
    assert daemon.post_token("enc", b"not gzip", headers={"Content-Encoding": "gzip"}).status == 400
    assert rejected(daemon, "ingest", "bad_id") == 1
    assert rejected(daemon, "ingest", "bad_encoding") == 2
    for reason in ("too_large", "too_many_events", "body_timeout", "no_body"):
        assert rejected(daemon, "ingest", reason) == 0, reason
    # Every listener and reason is there from the start, at 0.
    for listener in ("ingest", "mirror", "proxy"):
        assert (
            daemon.metrics().get(
                f'events_cache_rejected_total{{listener="{listener}",reason="no_body"}}'
            )
            == 0.0
        )
