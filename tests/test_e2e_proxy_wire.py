"""The tee proxy's HTTP/1.1 on the wire, both sides (it speaks it itself, through
httptools): pipelined requests answered in order, answers of unknown length, interim
answers, HTTP/1.0 clients, a client that goes away mid-forward, a large body streamed.
The daemon runs in-process; the upstream is the raw stand-in that records what it gets.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import wait_for
from tests.support.standins import (
    Answer,
    StandIn,
    exchange,
    http_request,
    parse_reply,
    read_until_closed,
)
from tests.test_e2e_proxy import proxy_daemon, tee_outcome, wait_cached

pytestmark = pytest.mark.e2e

CLOSE = [(b"Connection", b"close")]


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


def test_pipelined_requests_are_forwarded_one_at_a_time_and_answered_in_order(
    start_daemon: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    for n in range(3):
        stand_in.answers[f"/p{n}"] = Answer.raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n%d." % n, delay=0.2 - n * 0.1
        )
    requests = b"".join(
        http_request("POST", f"/p{n}?token=pipe-key", [], json.dumps({"n": n}).encode())
        for n in range(3)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(requests + http_request("GET", "/last", CLOSE))  # all at once
        raw = read_until_closed(s)
    bodies = [part.rpartition(b"\r\n\r\n")[2][:2] for part in raw.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"0.", b"1.", b"2.", b'{"']  # the slowest first, still in order
    assert [r.path for r in stand_in.received] == [
        "/p0?token=pipe-key",
        "/p1?token=pipe-key",
        "/p2?token=pipe-key",
        "/last",
    ]
    events = wait_cached(daemon, "pipe-key", 3)
    assert sorted(e["original"]["n"] for e in events) == [0, 1, 2]


def test_an_answer_of_unknown_length_is_relayed_chunked_then_ends_when_the_upstream_closes(
    start_daemon: Any, stand_in: StandIn
) -> None:
    _, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers["/until-close"] = Answer(
        [(0, b"HTTP/1.1 200 OK\r\nX-Kind: eof\r\n\r\nfirst "), (0.2, b"second")], close=True
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(http_request("GET", "/until-close", []))  # keep-alive
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            data += s.recv(1 << 16)
        reply = parse_reply(data)
        # The client's connection stays open for the next request.
        s.sendall(http_request("GET", "/", CLOSE))
        after = parse_reply(read_until_closed(s))
    assert reply.status == 200 and reply.header(b"Transfer-Encoding") == [b"chunked"]
    assert reply.body == b"first second" and reply.complete
    assert after.status == 200


def test_an_http_1_0_client_gets_the_answer_and_the_connection_closed(
    start_daemon: Any, stand_in: StandIn
) -> None:
    _, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers["/chunks"] = Answer.raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /chunks HTTP/1.0\r\n\r\n")
        raw = read_until_closed(s)
    reply = parse_reply(raw)
    assert reply.status == 200 and reply.body == b"abc"
    assert reply.header(b"Transfer-Encoding") == []  # 1.0 knows no chunks: ends at the close
    [got] = stand_in.received
    assert got.request_line == b"GET /chunks HTTP/1.1"
    assert got.header(b"Host") == [f"127.0.0.1:{stand_in.port}".encode()]  # it sent none


def test_interim_answers_are_not_relayed_the_final_one_is(
    start_daemon: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers["/hints"] = Answer.raw(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"ok":true}'
    )
    body = json.dumps({"api_key": "hint-key"}).encode()
    reply = exchange(port, http_request("POST", "/hints", CLOSE, body))
    assert reply.status_line == b"HTTP/1.1 200 OK" and reply.body == b'{"ok":true}'
    assert b"103" not in reply.raw
    assert wait_cached(daemon, "hint-key")


def test_a_client_gone_mid_forward_closes_the_upstream_connection_and_caches_nothing(
    start_daemon: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    head = http_request("POST", "/e?token=gone-key", [], chunks=[])[:-5]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + b"5\r\nhello\r\n")
        wait_for(lambda: stand_in.chunks_seen == [b"hello"], timeout=5)
    wait_for(lambda: tee_outcome(daemon, "incomplete") == 1, timeout=5)
    assert stand_in.received == []  # its request never ended: the upstream saw it cut
    exchange(port, http_request("POST", "/e?token=gone-key", CLOSE, b'{"n": 2}'))
    [event] = wait_cached(daemon, "gone-key")
    assert event["original"] == {"n": 2}


def test_a_large_body_streams_through_whole_and_is_not_cached(
    start_daemon: Any, stand_in: StandIn
) -> None:
    """10 MB, far over the write buffers on both sides: the proxy reads the client only
    as fast as the upstream takes it, and every byte arrives, in order."""
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    body = bytes(range(256)) * 40_000  # over max_request_bytes: forwarded, not kept
    reply = exchange(port, http_request("POST", "/big?token=big", CLOSE, body), timeout=60)
    assert reply.status == 200
    [got] = stand_in.received
    assert got.body == body
    assert tee_outcome(daemon, "too_large") == 1


def test_an_upgrade_without_a_body_goes_on_as_a_plain_request_one_with_a_body_is_400(
    start_daemon: Any, stand_in: StandIn
) -> None:
    """curl --http2 on http:// asks for h2c: the proxy (HTTP/1.1 only) forwards the
    request without its Upgrade, as a server that ignores the offer answers it; the
    parser reads no body after an upgrade's head, so such a request is refused."""
    _, port = proxy_daemon(start_daemon, stand_in.port)
    h2c = [(b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c")]
    probe = http_request("GET", "/h2c", [*h2c, (b"HTTP2-Settings", b"AAMAAABkAAQCAAAAAAIAAAAA")])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(probe + http_request("GET", "/next", CLOSE))
        raw = read_until_closed(s)
    assert raw.count(b"HTTP/1.1 200 OK") == 2
    first, after = stand_in.received
    assert first.request_line == b"GET /h2c HTTP/1.1" and first.header(b"Upgrade") == []
    assert after.request_line == b"GET /next HTTP/1.1"
    reply = exchange(port, http_request("POST", "/h2c", [*h2c[1:], *h2c[:1]], b'{"n": 1}'))
    assert reply.status == 400 and b"upgrades" in reply.body
    assert len(stand_in.received) == 2


def test_an_upstream_that_switches_protocols_unasked_is_a_502(
    start_daemon: Any, stand_in: StandIn
) -> None:
    daemon, port = proxy_daemon(start_daemon, stand_in.port)
    stand_in.answers["/ws"] = Answer.raw(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    reply = exchange(port, http_request("GET", "/ws", CLOSE))
    assert reply.status == 502 and b"did not answer" in reply.body
    assert daemon.metric("events_cache_proxy_upstream_errors_total", reason="interrupted") == 1


def test_copies_come_out_of_the_ingest_sides_byte_budget_and_are_let_go_without_room(
    start_daemon: Any, stand_in: StandIn
) -> None:
    """A chunked copy holds max_request_bytes of `inflight_bytes` until it is cached;
    meanwhile another copy finds no room: forwarded all the same, not kept (`busy`)."""
    daemon, port = proxy_daemon(
        start_daemon, stand_in.port, sidecar={"ingest": {"inflight_bytes": 4096}}
    )
    head = http_request("POST", "/e?token=first", CLOSE, chunks=[])[:-5]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + b'8\r\n{"n": 1}\r\n')
        wait_for(lambda: stand_in.chunks_seen == [b'{"n": 1}'], timeout=5)
        second = exchange(port, http_request("POST", "/e?token=second", CLOSE, b'{"n": 2}'))
        assert second.status == 200
        assert tee_outcome(daemon, "busy") == 1
        s.sendall(b"0\r\n\r\n")
        assert parse_reply(read_until_closed(s)).status == 200
    assert [e["original"] for e in wait_cached(daemon, "first")] == [{"n": 1}]
    third = exchange(port, http_request("POST", "/e?token=second", CLOSE, b'{"n": 3}'))
    assert third.status == 200
    assert [e["original"] for e in wait_cached(daemon, "second")] == [{"n": 3}]
    assert [r.body for r in stand_in.received] == [b'{"n": 2}', b'{"n": 1}', b'{"n": 3}']
