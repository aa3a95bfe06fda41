"""An ingest-side listener on the front-door protocol: its sockets, its connections, the
byte budget the listeners share, and a shutdown that lets requests under way finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from pathlib import Path

from daemon.config import HostPort
from daemon.core.wire import KNOWN_METHODS
from daemon.metrics.plain import RequestTimes
from daemon.web.front.flow import Flow
from daemon.web.front.pacer import Pacer
from daemon.web.front.protocol import HttpConnection
from daemon.web.front.routes import Head, Route

KEEPALIVE_S = 75.0  # an idle keep-alive connection is closed after this
CLOSE_WAIT_S = 0.5  # for the transports closed at shutdown to be done with their sockets


class ByteBudget:
    """Body bytes being read or answered at once, over every ingest-side listener
    (`sidecar.ingest.inflight_bytes`).

    A request reserves its body's size (its Content-Length, or max_request_bytes when
    chunked) once its head is read, and gives it back once answered. A request that
    finds no room waits, its connection not reading, until others give theirs back; they
    are served in the order they came. A body larger than the whole budget still goes
    through, alone. A connection's bytes already read when it waits are kept: at most
    one read (256 KiB) a connection beyond the budget.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.held: dict[object, int] = {}
        self.waiting: deque[tuple[HttpConnection, int]] = deque()

    def reserve(self, connection: HttpConnection, size: int) -> bool:
        """Reserve `size` bytes for `connection`'s body: True when granted now; else it
        is granted later (`connection.granted()`), in turn."""
        if not self.waiting and (self.used + size <= self.limit or not self.used):
            self.used += size
            self.held[connection] = size
            return True
        self.waiting.append((connection, size))
        return False

    def take(self, owner: object, size: int) -> bool:
        """Reserve `size` bytes for `owner` if there is room now (never waits): for what
        can be let go instead, such as the tee proxy's copy of a body."""
        if not self.waiting and (self.used + size <= self.limit or not self.used):
            self.used += size
            self.held[owner] = size
            return True
        return False

    def release(self, connection: object) -> None:
        """Give back what `connection` holds or waits for (its body answered, or the
        connection gone), and grant what waits while there is room."""
        self.used -= self.held.pop(connection, 0)
        if self.waiting and any(waiter is connection for waiter, _ in self.waiting):
            self.waiting = deque(w for w in self.waiting if w[0] is not connection)
        while self.waiting and (self.used + self.waiting[0][1] <= self.limit or not self.used):
            waiter, size = self.waiting.popleft()
            self.used += size
            self.held[waiter] = size
            waiter.granted()


class Listening:
    """One ingest-side listener's sockets (TCP and/or a Unix socket) and connections, and
    a shutdown that lets the requests under way finish."""

    def __init__(
        self,
        times: RequestTimes,
        *,
        head_timeout_s: float,
        body_timeout_s: float,
        shutdown_timeout_s: float,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.times = times
        self.head_timeout_s = head_timeout_s
        self.body_timeout_s = body_timeout_s
        self.keepalive_s = keepalive_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.connections: set[Flow] = set()
        self.stopping = False
        self._servers: list[asyncio.Server] = []
        self._socket_path = ""

    def _connection(self) -> Flow:
        raise NotImplementedError

    async def start(
        self, tcp: HostPort | None, socket_path: str = "", socket_mode: int = 0o660
    ) -> None:
        """Listen; OSError when an address is taken or a path cannot be created."""
        if socket_path:
            path = Path(socket_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_socket():
                path.unlink()  # left by a previous run of this container
            server = await self.loop.create_unix_server(self._connection, str(path))
            self._servers.append(server)
            self._socket_path = socket_path
            os.chmod(path, socket_mode)
        if tcp is not None:
            server = await self.loop.create_server(self._connection, tcp.host, tcp.port)
            self._servers.append(server)

    async def close(self) -> None:
        """Stop listening; requests under way get the shutdown timeout to finish, idle
        connections are closed at once, and every answer from now on closes its
        connection. Safe to call twice."""
        self.stopping = True
        for server in self._servers:
            server.close()
        deadline = self.loop.time() + self.shutdown_timeout_s
        while True:
            for connection in list(self.connections):
                if connection.idle():
                    connection.close()
            if not self.connections or self.loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.close()
        # Let the transports finish closing (their sockets closed, connection_lost
        # called) before the loop may stop.
        deadline = self.loop.time() + CLOSE_WAIT_S
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        for server in self._servers:
            await server.wait_closed()
        self._servers = []
        if self._socket_path:
            with contextlib.suppress(OSError):
                Path(self._socket_path).unlink()
            self._socket_path = ""


class Front(Listening):
    """An ingest-side listener whose connections are HttpConnections, answered by a route."""

    def __init__(
        self,
        route: Route,
        times: RequestTimes,
        budget: ByteBudget,
        pacer: Pacer,
        *,
        head_timeout_s: float,
        body_timeout_s: float,
        max_body_bytes: int,
        shutdown_timeout_s: float,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        super().__init__(
            times,
            head_timeout_s=head_timeout_s,
            body_timeout_s=body_timeout_s,
            shutdown_timeout_s=shutdown_timeout_s,
            keepalive_s=keepalive_s,
        )
        self.route = route
        self.budget = budget
        self.pacer = pacer
        self.max_body_bytes = max_body_bytes

    def observe(self, head: Head, status: int, started: float) -> None:
        """Count one answered request in the listener's request times."""
        method = head.method if head.method in KNOWN_METHODS else "other"
        self.times.observe(head.label, method, status, time.perf_counter() - started)

    def _connection(self) -> HttpConnection:
        return HttpConnection(self)
