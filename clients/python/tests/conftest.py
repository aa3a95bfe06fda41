"""A stand-in sidecar for the unit tests: an HTTP/1.1 server on a Unix socket or a
loopback port whose answers a test chooses. The behaviour against the real sidecar is
tested by tests/test_live.py here and by the repository's tests/test_clients.py."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

Answer = Callable[[bytes], "tuple[int, dict[str, Any]]"]


def accept_all(body: bytes) -> tuple[int, dict[str, Any]]:
    """What the sidecar answers when it queues every line."""
    lines = [line for line in body.split(b"\n") if line]
    return 202, {
        "accepted": len(lines),
        "rate_limited": 0,
        "dropped": 0,
        "invalid": 0,
        "errors": [],
    }


class Stub:
    """Records every request body; answers with `answer(body)`."""

    def __init__(self, answer: Answer = accept_all, unix: bool = True) -> None:
        self.answer = answer
        self.bodies: list[bytes] = []
        self.connections: list[Any] = []  # open keep-alive connections, cut by stop()
        self.lock = threading.Lock()
        self.unix = unix
        self._dir = tempfile.mkdtemp(prefix="ecc-")
        self.socket_path = os.path.join(self._dir, "ingest.sock")
        self.server: socketserver.BaseServer | None = None
        self.url = ""

    def start(self) -> Stub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with stub.lock:
                    stub.connections.append(self.connection)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with stub.lock:
                    stub.bodies.append(body)
                status, doc = stub.answer(body)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "stub"

        if self.unix:
            server: Any = socketserver.ThreadingUnixStreamServer(self.socket_path, Handler)
        else:
            server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
            self.url = f"http://127.0.0.1:{server.server_address[1]}"
        server.daemon_threads = True
        server.block_on_close = False
        self.server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections.clear()
        if self.unix and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def lines(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(line) for body in self.bodies for line in body.split(b"\n")]


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    """stub(answer=..., unix=True) starts a stand-in sidecar, stopped after the test."""
    stubs: list[Stub] = []

    def start(answer: Answer = accept_all, unix: bool = True) -> Stub:
        s = Stub(answer, unix).start()
        stubs.append(s)
        return s

    yield start
    for s in stubs:
        s.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"not met within {timeout}s")
