"""Connections of every listener (daemon/web/protocol.py): a request whose headers come
too slowly is cut after the header read timeout, an idle or keep-alive connection is
not; and the aiohttp internals the module relies on are still there (it pins aiohttp's
minor release: this fails first when a new one changes them).
"""

from __future__ import annotations

import inspect
import socket
import threading
import time

import pytest
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from daemon.web.protocol import JsonErrorHandler, JsonServer
from tests.support.daemon import InProcessDaemon, StartDaemon

pytestmark = pytest.mark.e2e

TIMEOUT_S = 1.0


def connect(daemon: InProcessDaemon, via: str) -> socket.socket:
    if via == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(daemon.socket_path)
    elif via == "tcp":
        sock = socket.create_connection(("127.0.0.1", daemon.ingest_port))
    else:
        sock = socket.create_connection(("127.0.0.1", daemon.api_port))
    sock.settimeout(15)
    return sock


def closed(sock: socket.socket) -> bool:
    """True when the server has closed the connection (nothing more to read)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def trickle(sock: socket.socket, data: bytes, interval_s: float, stop: threading.Event) -> None:
    """Send `data` one byte every `interval_s` until it is sent, the server closes the
    connection, or `stop` is set."""
    for i in range(len(data)):
        if stop.wait(interval_s):
            return
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            return


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> InProcessDaemon:
    return start_daemon(
        {
            "sidecar": {
                "ingest": {"header_read_timeout_seconds": TIMEOUT_S},
                "api": {"header_read_timeout_seconds": TIMEOUT_S},
            }
        }
    )


@pytest.mark.parametrize("via", ["unix", "tcp", "api"])
def test_headers_sent_a_byte_at_a_time_are_cut_after_the_timeout(
    daemon: InProcessDaemon, via: str
) -> None:
    head = b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"s" * 200 + b"\r\n\r\n"
    sock, stop = connect(daemon, via), threading.Event()
    sender = threading.Thread(target=trickle, args=(sock, head, 0.1, stop))
    started = time.monotonic()
    sender.start()
    try:
        assert closed(sock)
        took = time.monotonic() - started
        assert TIMEOUT_S * 0.9 <= took < TIMEOUT_S + 3, took
        # The listener still serves everyone else.
        if via == "api":
            assert daemon.api("/healthz", token=None).status == 200
        else:
            assert daemon.post_token("k", b"{}", via=via).status == 202
    finally:
        stop.set()
        sender.join()
        sock.close()


@pytest.mark.parametrize("via", ["unix", "tcp", "api"])
def test_a_connection_that_sends_nothing_is_cut_after_the_timeout(
    daemon: InProcessDaemon, via: str
) -> None:
    with connect(daemon, via) as sock:
        started = time.monotonic()
        assert closed(sock)
        assert TIMEOUT_S * 0.9 <= time.monotonic() - started < TIMEOUT_S + 3


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_keep_alive_connections_and_slow_bodies_are_not_cut(
    daemon: InProcessDaemon, via: str
) -> None:
    request = b"POST /v1/token/k/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    with connect(daemon, via) as sock:
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 202")
        time.sleep(TIMEOUT_S * 1.5)  # between two requests: the keep-alive timeout's
        # A head in two parts, well within the timeout, and the body later still.
        sock.sendall(request[:20])
        time.sleep(TIMEOUT_S * 0.5)
        sock.sendall(request[20:-2])
        time.sleep(TIMEOUT_S * 1.5)
        sock.sendall(request[-2:])
        assert sock.recv(65536).startswith(b"HTTP/1.1 202")
        time.sleep(TIMEOUT_S * 1.5)
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 202")


async def test_the_aiohttp_internals_used_are_there() -> None:
    """What daemon/web/protocol.py relies on besides aiohttp's public API."""
    params = list(inspect.signature(RequestHandler.handle_error).parameters)
    assert params == ["self", "request", "status", "exc", "message"]
    assert inspect.iscoroutinefunction(web.AppRunner._make_server)
    server = JsonServer(lambda request: None, header_read_timeout_s=1.0)  # type: ignore[arg-type,return-value]
    handler = server()
    assert isinstance(handler, JsonErrorHandler)
    assert handler._waiter is None  # the future start() awaits the next request with
    assert handler._request_count == 0  # heads parsed on the connection, errors included
    assert {"_waiter", "_request_count"} <= set(RequestHandler.__slots__)
    assert server.request_factory is not None and server.handler_cancellation is False
