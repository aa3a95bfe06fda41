"""The tee proxy end to end: the daemon as a subprocess in front of a stand-in ingest (a
raw HTTP server that records what it receives), a real Redis behind it.

What goes through must arrive unchanged both ways (bodies byte for byte, binary and
chunked; headers with their order, case and repeats; any status), with X-Forwarded-*
added; failures of the upstream are 502/504; the copy for the cache never costs the
forward anything, even when the queue is full or the body too large to cache; a slow
client holds neither its connection nor an upstream one past the body deadline, and the
upstream never sees more than `max_upstream_connections` at once.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import select
import signal
import socket
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from daemon.web.ingest import SLICE_EVENTS
from tests.support.daemon import DaemonClient, DaemonProcess
from tests.support.servers import free_port, wait_for
from tests.support.standins import (
    OK_ANSWER,
    Answer,
    Reply,
    StandIn,
    _read_request,
    exchange,
    http_request,
    parse_reply,
    read_until_closed,
)

pytestmark = pytest.mark.e2e

RULES = ["query:token", "header:X-Auth-Token", "path:/api/v1/event/{token}", "json:api_key"]
HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"trailer"}
FORWARDED = {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


def proxy_daemon(
    start_daemon: Any, upstream_port: int, proxy: dict[str, Any] | None = None, **more: Any
) -> tuple[DaemonClient, int]:
    port = free_port()
    settings = {
        "listen": f"127.0.0.1:{port}",
        "upstream": f"http://127.0.0.1:{upstream_port}",
        "token_from": RULES,
        **(proxy or {}),
    }
    overrides: dict[str, Any] = {"sidecar": {"proxy": settings, **more.pop("sidecar", {})}}
    return start_daemon({**overrides, **more}), port


def end_to_end(
    headers: list[tuple[bytes, bytes]], also: Collection[bytes] = ()
) -> list[tuple[bytes, bytes]]:
    """The headers a proxy must pass on: hop-by-hop ones (and `also`) left out."""
    return [(k, v) for k, v in headers if k.lower() not in HOP and k.lower() not in also]


def tee_outcome(daemon: DaemonClient, outcome: str) -> float:
    return daemon.metric("events_cache_proxy_tee_total", outcome=outcome)


def cached(daemon: DaemonClient, token: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = daemon.query(namespace="token", ids=token)["events"]
    return events


def wait_cached(daemon: DaemonClient, token: str, count: int = 1) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        found = cached(daemon, token)
        return found if len(found) >= count else None

    return wait_for(enough)


# -- unchanged both ways -------------------------------------------------------------------


def test_a_request_reaches_the_upstream_byte_for_byte(start_daemon: Any, stand_in: StandIn) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    body = bytes(range(256)) * 400 + b"\x00\r\n\r\n"  # 100 KB of binary, framing lookalikes
    headers = [
        (b"Host", b"ingest.example:8080"),
        (b"user-agent", b"curl/8.0"),  # known names keep their case too
        (b"ACCEPT", b"*/*"),
        (b"etag", b'"x"'),
        (b"X-Dup", b"one"),
        (b"x-MiXeD-Case", b"Value  with  spaces"),
        (b"X-Dup", b"two"),
        (b"X-Utf8", "café ✓".encode()),
        (b"Content-Type", b"application/octet-stream"),
        (b"Keep-Alive", b"timeout=5"),
        (b"X-Private-Hop", b"secret"),
        (b"Connection", b"close, X-Private-Hop"),
    ]
    target = "/api/v2/x/../odd%2Fpath//twice?token=bin-key&b=%20&b=2&empty"
    reply = exchange(port, http_request("POST", target, headers, body))
    assert reply.status == 200 and reply.body == b'{"ok":true}'
    [got] = stand_in.received
    assert got.request_line == f"POST {target} HTTP/1.1".encode()
    assert got.body == body
    sent = [*headers, (b"Content-Length", str(len(body)).encode())]
    assert end_to_end(got.headers, FORWARDED) == end_to_end(sent, {b"x-private-hop"})
    assert got.header(b"X-Forwarded-For") == [b"127.0.0.1"]
    assert got.header(b"X-Forwarded-Proto") == [b"http"]
    assert got.header(b"X-Forwarded-Host") == [b"ingest.example:8080"]
    assert got.header(b"X-Private-Hop") == [] and got.header(b"Keep-Alive") == []
    [event] = wait_cached(daemon, "bin-key")  # not JSON: cached as malformed, like the ingest
    assert event["error"].startswith("invalid JSON")
    assert tee_outcome(daemon, "teed") == 1


def test_a_chunked_request_is_streamed_and_teed(start_daemon: Any, stand_in: StandIn) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    chunks = [b'{"api_key": "chunk', b'ed-key", "n": 1, ', b'"blob": "' + b"x" * 70_000 + b'"}']
    headers = [(b"Host", b"h"), (b"Content-Type", b"application/json"), (b"Connection", b"close")]
    reply = exchange(port, http_request("POST", "/v1/anything", headers, chunks=chunks))
    assert reply.status == 200
    [got] = stand_in.received
    assert got.body == b"".join(chunks)
    assert got.header(b"Content-Length") == []  # streamed on, re-framed as chunks
    assert got.header(b"Transfer-Encoding") == [b"chunked"]
    assert end_to_end(got.headers, FORWARDED) == end_to_end(headers)
    [event] = wait_cached(daemon, "chunked-key")
    assert event["original"]["n"] == 1 and len(event["original"]["blob"]) == 70_000


def test_bodies_stream_through_without_waiting_for_their_end(
    start_daemon: Any, stand_in: StandIn
) -> None:
    _, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers["/stream"] = Answer(
        [
            (0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"),
            (1.5, b"4\r\nlast\r\n0\r\n\r\n"),
        ]
    )
    head = http_request("POST", "/stream", [(b"Connection", b"close")], chunks=[])[:-5]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # The request: its first chunk reaches the upstream before the client sends more.
        s.sendall(head + b"6\r\nhello \r\n")
        wait_for(lambda: stand_in.chunks_seen == [b"hello "], timeout=5)
        s.sendall(b"5\r\nworld\r\n0\r\n\r\n")
        # The answer: its first part reaches the client while the upstream still writes.
        started = time.monotonic()
        data = b""
        while b"first" not in data:
            data += s.recv(1 << 16)
        assert time.monotonic() - started < 1.2
        while chunk := s.recv(1 << 16):
            data += chunk
    assert stand_in.received[0].body == b"hello world"
    assert parse_reply(data).body == b"firstlast"


def test_expect_100_continue_is_answered_by_the_proxy(start_daemon: Any, stand_in: StandIn) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    body = json.dumps({"api_key": "expect-key"}).encode()
    headers = [(b"Expect", b"100-continue"), (b"Connection", b"close")]
    request = http_request("POST", "/e", headers, body)
    head, _, _ = request.partition(b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + b"\r\n\r\n")
        assert s.recv(1 << 16).startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(body)
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    assert parse_reply(data).status == 200
    [got] = stand_in.received
    assert got.body == body and got.header(b"Expect") == []  # answered here, not forwarded
    assert wait_cached(daemon, "expect-key")


ANSWERS = {
    "/created": b"HTTP/1.1 201 Made It\r\nx-MiXeD: a\r\nSet-Cookie: a=1; Path=/\r\n"
    b'ETag: "v1"\r\nwww-authenticate: Bearer\r\ncache-control: no-store\r\n'
    b"Set-Cookie: b=2\r\nX-Utf8: \xc3\xa9\r\nContent-Length: 6\r\n\r\n\x00\x01\xff\r\n\n",
    "/missing": b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: ingest/1.0\r\n\r\nnope",
    "/broken": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}",
    "/busy": b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
    "/empty": b"HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n",
    "/private": b"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: t=1\r\n"
    b"X-Public: p\r\nContent-Length: 1\r\n\r\n.",
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Stream: 1\r\nETag: e\r\n\r\n"
    b"5\r\nfirst\r\n1;ext=1\r\n-\r\n6\r\nsecond\r\n0\r\n\r\n",
    # Over the whole-body bound (64 KiB): streamed, its length kept.
    "/large": b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\nX-Large: 1\r\n\r\n"
    + bytes(range(256)) * 1171
    + b"\x00" * 224,
}


@pytest.mark.parametrize("path", list(ANSWERS))
def test_the_answer_comes_back_byte_for_byte(
    start_daemon: Any, stand_in: StandIn, path: str
) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers[path] = Answer.raw(ANSWERS[path])
    request = http_request("GET", path, [(b"Host", b"h"), (b"Connection", b"close")])
    reply = exchange(port, request)
    upstream = parse_reply(ANSWERS[path])
    assert reply.status_line == upstream.status_line
    assert end_to_end(reply.headers, {b"x-secret"}) == end_to_end(upstream.headers, {b"x-secret"})
    assert reply.body == upstream.body and reply.complete
    assert reply.header(b"X-Secret") == [] and reply.header(b"Keep-Alive") == []
    if path == "/created":  # aiohttp adds none of its own: no Date, Server or Content-Type
        assert {k.lower() for k, _ in reply.headers} & {
            b"date",
            b"server",
            b"content-type",
        } == set()
    status = upstream.status
    wait_for(
        lambda: (
            daemon.metric(
                "events_cache_http_request_duration_seconds_count",
                listener="proxy",
                route="/{tail}",
                method="GET",
                status=str(status),
            )
            == 1
        )
    )


def test_head_keeps_the_length_and_sends_no_body(start_daemon: Any, stand_in: StandIn) -> None:
    _, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers["/thing"] = Answer.raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n"
    )
    request = http_request("HEAD", "/thing", [(b"Host", b"h"), (b"Connection", b"close")])
    reply = exchange(port, request, head=True)
    assert reply.status == 200 and reply.header(b"Content-Length") == [b"1234"]
    assert reply.raw.endswith(b"\r\n\r\n")  # nothing after the head
    assert stand_in.received[0].request_line == b"HEAD /thing HTTP/1.1"


def test_forwarded_headers_extend_what_a_proxy_in_front_set(
    start_daemon: Any, stand_in: StandIn
) -> None:
    _, port = proxy_daemon(start_daemon, stand_in.port)
    headers = [
        (b"Host", b"inner"),
        (b"X-Forwarded-For", b"203.0.113.9"),
        (b"X-Forwarded-For", b"10.0.0.1"),
        (b"X-Forwarded-Proto", b"https"),
        (b"X-Forwarded-Host", b"events.example.com"),
        (b"Connection", b"close"),
    ]
    exchange(port, http_request("GET", "/", headers))
    [got] = stand_in.received
    assert got.header(b"X-Forwarded-For") == [b"203.0.113.9, 10.0.0.1, 127.0.0.1"]
    assert got.header(b"X-Forwarded-Proto") == [b"https"]  # the client's scheme, kept
    assert got.header(b"X-Forwarded-Host") == [b"events.example.com"]


# -- the upstream failing ------------------------------------------------------------------


def test_upstream_down_is_502_with_a_json_message(start_daemon: Any) -> None:
    daemon, port = proxy_daemon(start_daemon, free_port())  # nobody listens there
    body = json.dumps({"api_key": "down-key"}).encode()
    reply = exchange(port, http_request("POST", "/e", [(b"Connection", b"close")], body))
    assert reply.status == 502
    assert json.loads(reply.body) == {
        "message": "the upstream (the ingest container) did not answer"
    }
    assert reply.header(b"Content-Type") == [b"application/json"]
    assert daemon.metric("events_cache_proxy_upstream_errors_total", reason="unreachable") == 1
    assert tee_outcome(daemon, "incomplete") == 1
    assert cached(daemon, "down-key") == []  # the ingest never had it
    assert "proxy upstream failed" in daemon.log()


def test_a_slow_upstream_is_504_and_a_stalled_answer_is_cut(
    start_daemon: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port, {"read_timeout_seconds": 0.5})
    stand_in.answers["/slow"] = Answer.raw(ANSWERS["/missing"], delay=3)
    started = time.monotonic()
    reply = exchange(port, http_request("GET", "/slow", [(b"Connection", b"close")]))
    assert reply.status == 504 and time.monotonic() - started < 2.5
    assert "did not answer in time" in json.loads(reply.body)["message"]
    # A small answer stalls before its end: nothing was sent yet, so 504 still.
    stand_in.answers["/stall"] = Answer(
        [(0, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part"), (3, b"x" * 90)]
    )
    reply = exchange(port, http_request("GET", "/stall", [(b"Connection", b"close")]))
    assert reply.status == 504
    # A streamed answer began, then stalled: the client must see a broken answer.
    stand_in.answers["/stall-stream"] = Answer(
        [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n"), (3, b"")]
    )
    reply = exchange(port, http_request("GET", "/stall-stream", [(b"Connection", b"close")]))
    assert reply.status == 200 and reply.body == b"part" and not reply.complete
    assert daemon.metric("events_cache_proxy_upstream_errors_total", reason="timeout") == 3


def test_an_answer_that_breaks_off_cuts_the_client(start_daemon: Any, stand_in: StandIn) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers["/cut"] = Answer.raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", close=True
    )
    body = json.dumps({"api_key": "cut-key"}).encode()
    reply = exchange(port, http_request("POST", "/cut", [(b"Connection", b"close")], body))
    assert reply.status == 200 and reply.body == b"hello" and not reply.complete
    # A small answer (by its length) that breaks off is read whole first: 502 instead.
    stand_in.answers["/short"] = Answer.raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", close=True
    )
    reply = exchange(port, http_request("POST", "/short", [(b"Connection", b"close")], body))
    assert reply.status == 502 and reply.complete
    assert daemon.metric("events_cache_proxy_upstream_errors_total", reason="interrupted") == 2
    assert tee_outcome(daemon, "incomplete") == 2
    # The proxy goes on: the next request is forwarded as usual.
    reply = exchange(port, http_request("GET", "/", [(b"Connection", b"close")]))
    assert reply.status == 200 and reply.complete


# -- the tee never costs the forward -------------------------------------------------------


def test_a_full_queue_drops_the_copy_not_the_request(start_daemon: Any, stand_in: StandIn) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port, sidecar={"ingest": {"queue_size": 5}})
    body = json.dumps([{"n": n} for n in range(20)]).encode()  # 20 events, room for 5
    reply = exchange(
        port, http_request("POST", "/api/v1/event/full-key", [(b"Connection", b"close")], body)
    )
    assert reply.status == 200 and reply.body == b'{"ok":true}'
    assert stand_in.received[0].body == body
    assert tee_outcome(daemon, "teed") == 1
    wait_for(lambda: daemon.metric("events_cache_dropped_total", reason="queue_full") == 15)
    assert len(wait_cached(daemon, "full-key", 5)) == 5


def test_a_body_over_the_limit_is_forwarded_and_not_cached(
    start_daemon: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(
        start_daemon, stand_in.port, sidecar={"ingest": {"max_request_bytes": 1000}}
    )
    big = json.dumps({"api_key": "big-key", "blob": "b" * 50_000}).encode()
    chunks = [big[:20_000], big[20_000:]]
    for request in (
        http_request("POST", "/e", [(b"Connection", b"close")], big),
        http_request("POST", "/e", [(b"Connection", b"close")], chunks=chunks),
    ):
        assert exchange(port, request).status == 200
    assert [r.body for r in stand_in.received] == [big, big]
    assert tee_outcome(daemon, "too_large") == 2
    small = json.dumps({"api_key": "big-key", "small": True}).encode()
    exchange(port, http_request("POST", "/e", [(b"Connection", b"close")], small))
    [event] = wait_cached(daemon, "big-key")
    assert event["original"] == {"api_key": "big-key", "small": True}


def test_compressed_bodies_go_on_compressed_and_are_cached_decoded(
    start_daemon: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    event = {"api_key": "gz-key", "text": "z" * 5000}
    body = gzip.compress(json.dumps(event).encode())
    headers = [(b"Content-Encoding", b"gzip"), (b"Connection", b"close")]
    stand_in.answers["/gz"] = Answer.raw(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    reply = exchange(port, http_request("POST", "/gz", headers, body))
    assert stand_in.received[0].body == body  # not inflated on the way
    assert reply.body == body and reply.header(b"Content-Encoding") == [b"gzip"]
    [cached_event] = wait_cached(daemon, "gz-key")
    assert cached_event["original"] == event


def test_a_large_copy_is_admitted_in_slices_and_a_larger_one_not_at_all(
    start_daemon: Any, stand_in: StandIn
) -> None:
    """A copy of more than SLICE_EVENTS events is admitted a slice per turn of the loop;
    one of more than max_events_per_request is forwarded and not cached, counted."""
    ingest = {"max_events_per_request": 1500}
    daemon, port = proxy_daemon(start_daemon, stand_in.port, sidecar={"ingest": ingest})
    close = [(b"Connection", b"close")]
    count = SLICE_EVENTS * 2 + 3
    body = json.dumps([{"n": n} for n in range(count)]).encode()
    assert exchange(port, http_request("POST", "/e?token=many", close, body)).status == 200
    too_many = json.dumps([{"n": n} for n in range(1501)]).encode()
    assert exchange(port, http_request("POST", "/e?token=more", close, too_many)).status == 200
    wait_for(lambda: daemon.metric("events_cache_received_total", cache_namespace="token") == count)
    assert tee_outcome(daemon, "teed") == 1 and tee_outcome(daemon, "too_many_events") == 1
    rejected = daemon.metric(
        "events_cache_rejected_total", listener="proxy", reason="too_many_events"
    )
    assert rejected == 1
    assert len(stand_in.received) == 2  # both forwarded


def test_what_is_not_teed_is_counted_by_why(start_daemon: Any, stand_in: StandIn) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    close = [(b"Connection", b"close")]
    stand_in.answers["/refused"] = Answer.raw(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    )
    body = json.dumps({"api_key": "refused-key"}).encode()
    assert exchange(port, http_request("POST", "/refused", close, body)).status == 401
    assert exchange(port, http_request("GET", "/health?token=get-key", close)).status == 200
    assert exchange(port, http_request("POST", "/e", close, b'{"no": "key"}')).status == 200
    brotli = [(b"Content-Encoding", b"br"), *close]
    assert exchange(port, http_request("POST", "/e?token=br-key", brotli, b"\x0b")).status == 200
    for outcome in ("upstream_status", "no_body", "no_key", "encoding"):
        assert tee_outcome(daemon, outcome) == 1, outcome
    assert tee_outcome(daemon, "teed") == 0
    assert daemon.query(namespace="token")["events"] == []


def test_keep_alive_connections_are_reused_both_sides(start_daemon: Any, stand_in: StandIn) -> None:
    import http.client

    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for n in range(50):
        conn.request("POST", f"/api/v1/event/ka-key?n={n}", body=json.dumps({"n": n}))
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b'{"ok":true}'
    conn.close()
    assert len(stand_in.received) == 50
    assert len(wait_cached(daemon, "ka-key", 50)) == 50


# -- lifecycle -----------------------------------------------------------------------------


def test_the_proxy_forwards_through_the_drain_then_closes(
    start_daemon_process: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(
        start_daemon_process, stand_in.port, sidecar={"shutdown": {"drain_seconds": 2}}
    )
    assert isinstance(daemon, DaemonProcess)
    daemon.signal(signal.SIGTERM)
    time.sleep(0.5)
    body = json.dumps({"api_key": "drain-key"}).encode()
    reply = exchange(port, http_request("POST", "/e", [(b"Connection", b"close")], body))
    assert reply.status == 200 and reply.body == b'{"ok":true}'
    assert daemon.process.wait(15) == 0
    with pytest.raises(OSError):
        exchange(port, http_request("GET", "/", [(b"Connection", b"close")]), timeout=2)
    assert [r.body for r in stand_in.received] == [body]


def test_a_forward_in_flight_at_shutdown_finishes(
    start_daemon_process: Any, stand_in: StandIn, redis_client: Any
) -> None:
    daemon, port = proxy_daemon(start_daemon_process, stand_in.port)
    stand_in.answers["/slow"] = Answer.raw(OK_SLOW, delay=0.6)
    body = json.dumps({"api_key": "in-flight"}).encode()
    replies: list[Any] = []
    request = http_request("POST", "/slow", [(b"Connection", b"close")], body)
    sender = threading.Thread(target=lambda: replies.append(exchange(port, request)))
    sender.start()
    wait_for(lambda: stand_in.received)  # the forward is under way
    assert isinstance(daemon, DaemonProcess)
    daemon.signal(signal.SIGTERM)  # no drain: the listeners close now
    sender.join(10)
    assert replies[0].status == 200 and replies[0].body == b'{"ok":true}'
    assert daemon.process.wait(15) == 0
    assert redis_client.llen("events_cache:token#in-flight") == 1  # teed and flushed


OK_SLOW = b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"ok":true}'


# -- bounds: slow bodies, upstream connections ---------------------------------------------


@dataclass
class Counting(StandIn):
    """The stand-in, counting the connections open to it at once (`open`, and the most
    ever: `peak`); it answers OK to every request, each only once `release()` was called
    when started `held`."""

    held: bool = False
    open: int = 0
    peak: int = 0
    _gate: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> Counting:
        if not self.held:
            self._gate.set()
        super().start()
        return self

    def release(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._gate.set)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            while (request := await _read_request(reader, self.chunks_seen)) is not None:
                self.received.append(request)
                await self._gate.wait()
                writer.write(OK_ANSWER)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()
            self._tasks.discard(task)


@pytest.fixture
def counting() -> Iterator[Counting]:
    server = Counting().start()
    yield server
    server.stop()


@pytest.fixture
def held() -> Iterator[Counting]:
    server = Counting(held=True).start()
    yield server
    server.release()
    server.stop()


def trickle(s: socket.socket, pieces: list[bytes], every: float = 0.2) -> Reply | None:
    """Send one piece every `every` s until the server answers or closes; its reply, or
    None when every piece went and it did neither."""
    for piece in pieces:
        try:
            s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        if select.select([s], [], [], every)[0]:
            break
    else:
        return None
    return parse_reply(read_until_closed(s))


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_trickled_body_is_cut_at_its_deadline(
    start_daemon: Any, counting: Counting, framing: str
) -> None:
    daemon, port = proxy_daemon(
        start_daemon, counting.port, sidecar={"ingest": {"body_read_timeout_seconds": 1}}
    )
    body = json.dumps([{"n": n} for n in range(20)]).encode()  # 20 s at 10 bytes a second
    target = "/api/v1/event/slow-key"
    if framing == "length":  # small: read whole before the upstream is called
        head = http_request("POST", target, [], body)[: -len(body)]
        pieces = [body[i : i + 2] for i in range(0, len(body), 2)]
    else:  # streamed: the upstream has its head and the first chunks when it is cut
        head = http_request("POST", target, [], chunks=[])[:-5]
        pieces = [b"2\r\n" + body[i : i + 2] + b"\r\n" for i in range(0, len(body) - 1, 2)]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        reply = trickle(s, pieces)
    assert reply is not None, "the trickled body was never cut"
    assert reply.status == 408 and reply.header(b"Connection") == [b"close"]
    assert "body_read_timeout_seconds" in json.loads(reply.body)["message"]
    labels = {"listener": "proxy", "reason": "body_timeout"}
    assert daemon.metric("events_cache_rejected_total", **labels) == 1
    assert tee_outcome(daemon, "incomplete") == 1
    assert counting.received == []  # no request reached the upstream whole
    assert counting.peak == (1 if framing == "chunked" else 0)
    # Closed, not pooled: sooner than the pool's idle close (4 s) would.
    wait_for(lambda: counting.open == 0, timeout=2, what="the upstream connection closed")
    assert cached(daemon, "slow-key") == []
    # The proxy goes on.
    reply = exchange(port, http_request("POST", target, [(b"Connection", b"close")], body))
    assert reply.status == 200
    assert len(wait_cached(daemon, "slow-key", 20)) == 20


def _send_in_background(port: int, request: bytes, replies: list[Reply]) -> threading.Thread:
    thread = threading.Thread(target=lambda: replies.append(exchange(port, request)))
    thread.start()
    return thread


def test_beyond_max_upstream_connections_a_request_waits_then_gets_504(
    start_daemon: Any, held: Counting
) -> None:
    daemon, port = proxy_daemon(
        start_daemon, held.port, {"max_upstream_connections": 2, "connect_timeout_seconds": 0.5}
    )
    request = http_request("GET", "/", [(b"Connection", b"close")])
    replies: list[Reply] = []
    threads = [_send_in_background(port, request, replies) for _ in range(2)]
    wait_for(lambda: len(held.received) == 2, what="two forwards held by the upstream")
    reply = exchange(port, request)  # no connection comes free within the connect timeout
    assert reply.status == 504 and reply.header(b"Content-Type") == [b"application/json"]
    assert "max_upstream_connections" in json.loads(reply.body)["message"]
    assert daemon.metric("events_cache_proxy_upstream_errors_total", reason="timeout") == 1
    held.release()
    for thread in threads:
        thread.join(10)
    assert [r.status for r in replies] == [200, 200]
    assert len(held.received) == 2 and held.peak == 2


def test_beyond_max_upstream_connections_a_request_waits_for_a_free_one(
    start_daemon: Any, held: Counting
) -> None:
    daemon, port = proxy_daemon(start_daemon, held.port, {"max_upstream_connections": 2})
    request = http_request("GET", "/", [(b"Connection", b"close")])
    replies: list[Reply] = []
    threads = [_send_in_background(port, request, replies) for _ in range(2)]
    wait_for(lambda: len(held.received) == 2, what="two forwards held by the upstream")
    threads.append(_send_in_background(port, request, replies))
    time.sleep(0.5)  # time enough for the third to reach the upstream, were it not held back
    assert len(held.received) == 2 and replies == []
    held.release()
    for thread in threads:
        thread.join(10)
    assert [r.status for r in replies] == [200, 200, 200]
    assert len(held.received) == 3 and held.peak == 2  # the third took a freed connection
    assert daemon.metric("events_cache_proxy_upstream_errors_total", reason="timeout") == 0


# -- the key is read from what is forwarded ----------------------------------------------


def test_a_header_named_in_connection_is_neither_forwarded_nor_read_for_the_key(
    start_daemon: Any, stand_in: StandIn
) -> None:
    """X-Auth-Token listed in Connection never reaches the upstream, so the tee must not
    cache under it either: the body's own key (the json rule) is what the ingest saw."""
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    headers = [
        (b"Host", b"h"),
        (b"X-Auth-Token", b"victim-key"),
        (b"Connection", b"close, X-Auth-Token"),
    ]
    body = json.dumps({"api_key": "public-key", "forged": True}).encode()
    reply = exchange(port, http_request("POST", "/api/v1/s2s/event", headers, body))
    assert reply.status == 200
    [got] = stand_in.received
    assert got.header(b"X-Auth-Token") == []
    [event] = wait_cached(daemon, "public-key")
    assert event["original"]["forged"] is True
    assert cached(daemon, "victim-key") == []


def test_host_is_forwarded_as_received_even_when_named_in_connection(
    start_daemon: Any, stand_in: StandIn
) -> None:
    _, port = proxy_daemon(start_daemon, stand_in.port)
    headers = [(b"Host", b"events.example.com"), (b"Connection", b"close, Host")]
    assert exchange(port, http_request("GET", "/?token=h-key", headers)).status == 200
    [got] = stand_in.received
    assert got.header(b"Host") == [b"events.example.com"]


def test_the_query_after_a_fragment_is_read_as_the_upstream_reads_it(
    start_daemon: Any, stand_in: StandIn
) -> None:
    """A "#" a client should not send, before the "?": forwarded as %23 (as sent, the
    client library took it for a fragment and dropped the query); the upstream (Go's
    server, as Jitsu's) reads the query after it, and so does the tee."""
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    body = json.dumps({"n": 1}).encode()
    target = "/a#b?token=frag-key"
    reply = exchange(port, http_request("POST", target, [(b"Connection", b"close")], body))
    assert reply.status == 200
    assert stand_in.received[0].request_line == b"POST /a%23b?token=frag-key HTTP/1.1"
    assert wait_cached(daemon, "frag-key")[0]["original"] == {"n": 1}


def test_a_key_the_id_rule_refuses_is_forwarded_and_not_cached(
    start_daemon: Any, stand_in: StandIn
) -> None:
    """The proxy still forwards (the ingest decides what it takes); the copy is counted
    bad_id and cached under no key (the next rules are not tried for another one)."""
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    body = json.dumps({"api_key": "fallback-key"}).encode()
    for token in ("alice,bob", "victim:error"):
        reply = exchange(
            port, http_request("POST", f"/e?token={token}", [(b"Connection", b"close")], body)
        )
        assert reply.status == 200
    assert len(stand_in.received) == 2
    wait_for(lambda: tee_outcome(daemon, "bad_id") == 2)
    assert daemon.metric("events_cache_rejected_total", listener="proxy", reason="bad_id") == 2
    assert cached(daemon, "fallback-key") == []
