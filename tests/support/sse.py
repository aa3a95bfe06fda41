"""A live-tail reader for tests and bench: one Server-Sent Events stream in a thread."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.core.wire import STREAM_PATH, TOKEN_HEADER
from tests.support.daemon import ADMIN_TOKEN


@dataclass
class Watcher:
    """A reader of one stream in a thread: events and comments as they arrive."""

    port: int
    params: str
    events: queue.Queue[tuple[float, str, dict[str, Any]]] = field(default_factory=queue.Queue)
    comments: list[float] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    conn: http.client.HTTPConnection | None = None
    clock: Callable[[], float] = time.monotonic  # when an event or comment arrived
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Last-Event-ID

    def start(self) -> Watcher:
        threading.Thread(target=self._run, daemon=True).start()
        assert self.connected.wait(10), "stream did not connect"
        return self

    def close(self) -> None:
        """Hang up, as a reader that goes away does."""
        if self.conn is not None and self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        conn = self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(
                "GET",
                f"{STREAM_PATH}?{self.params}",
                headers={**self.headers, TOKEN_HEADER: ADMIN_TOKEN},
            )
            response = conn.getresponse()
            self.status = response.status
            self.connected.set()
            kind, data = "message", ""
            while line := response.readline():
                text = line.decode().rstrip("\r\n")
                if text.startswith(":"):
                    self.comments.append(self.clock())
                elif text.startswith("event: "):
                    kind = text[7:]
                elif text.startswith("data: "):
                    data += text[6:]
                elif not text and data:
                    self.events.put((self.clock(), kind, json.loads(data)))
                    kind, data = "message", ""
        except OSError:
            pass
        finally:
            self.connected.set()
            self.ended.set()
            conn.close()

    def take(self, count: int, timeout: float = 5) -> list[tuple[float, str, dict[str, Any]]]:
        return [self.events.get(timeout=timeout) for _ in range(count)]


def activate(sender: Any, watcher: Watcher, token: str = "warm-up") -> None:
    """Send until the watcher sees an event: every sidecar then publishes (the switch
    turns on within a second of the stream opening)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sender.post_token(token, '{"warm": true}')
        try:
            watcher.events.get(timeout=0.2)
        except queue.Empty:
            continue
        while not watcher.events.empty():  # drop the rest of the warm-up
            watcher.events.get()
        return
    raise AssertionError("the tail never became active")
