"""The tee proxy's connections to its upstream: opened on demand up to a limit, kept
alive between requests, shared in turn.

A request that finds no idle connection opens one while fewer than
`max_upstream_connections` are open (or being opened); beyond that it waits, in turn,
for one to come free within the connect timeout. A connection counts until it is closed
(`connection_lost`), so the upstream never sees more at once. Idle connections are
closed after UPSTREAM_KEEPALIVE_S, below the 5 s idle timeout of uvicorn and Node, so a
request never races the upstream's own close.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from daemon.core.model import UpstreamError
from daemon.web.front.upstream import UpstreamConnection

UPSTREAM_KEEPALIVE_S = 4.0
SWEEP_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxy forwards to, how long it waits, and how many connections it opens."""

    url: str
    connect_timeout_s: float
    read_timeout_s: float
    max_connections: int


class Requester(Protocol):
    """What waits for a connection."""

    def upstream_ready(self, connection: UpstreamConnection) -> None:
        """A connection is this request's until it releases it."""

    def upstream_unavailable(self, reason: UpstreamError, error: BaseException, busy: bool) -> None:
        """No connection could be had (`busy`: every one was in use until the deadline)."""


class UpstreamPool:
    """Connections to the upstream: idle ones reused most recent first, new ones opened
    up to the limit, requests beyond it served in turn within the connect timeout."""

    def __init__(self, upstream: Upstream) -> None:
        self.loop = asyncio.get_running_loop()
        self.upstream = upstream
        parts = urlsplit(upstream.url)
        self.host = parts.hostname or ""
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.port = parts.port or (443 if self.tls else 80)
        self.authority = parts.netloc.encode()
        self.open = 0  # open or being opened
        self.idle: list[UpstreamConnection] = []
        self.waiting: deque[tuple[Requester, asyncio.TimerHandle | None]] = deque()
        self.connecting: set[asyncio.Task[None]] = set()
        self.closed = False
        self._sweeping = False

    def acquire(self, requester: Requester) -> None:
        """A connection for `requester` now (`upstream_ready`), later, or never
        (`upstream_unavailable`)."""
        now = self.loop.time()
        while self.idle:
            connection = self.idle.pop()
            fresh = now - connection.idle_since < UPSTREAM_KEEPALIVE_S
            if connection.transport is not None and fresh:
                requester.upstream_ready(connection)
                return
            connection.close()
        if self.open < self.upstream.max_connections:
            self._connect(requester)
            return
        timeout = self.upstream.connect_timeout_s
        timer = self.loop.call_later(timeout, self._gave_up, requester) if timeout else None
        self.waiting.append((requester, timer))

    def cancel(self, requester: Requester) -> None:
        """`requester` no longer wants a connection (its client went, or was too slow)."""
        for entry in self.waiting:
            if entry[0] is requester:
                self.waiting.remove(entry)
                if entry[1] is not None:
                    entry[1].cancel()
                return

    def _gave_up(self, requester: Requester) -> None:
        self.cancel(requester)
        busy = TimeoutError("no upstream connection came free in time")
        requester.upstream_unavailable(UpstreamError.TIMEOUT, busy, True)

    def _connect(self, requester: Requester) -> None:
        self.open += 1
        task = self.loop.create_task(self._open(requester))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    async def _open(self, requester: Requester) -> None:
        up = self.upstream
        try:
            async with asyncio.timeout(up.connect_timeout_s or None):
                _, connection = await self.loop.create_connection(
                    lambda: UpstreamConnection(self),
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as e:
            self.open -= 1
            requester.upstream_unavailable(
                UpstreamError.TIMEOUT if isinstance(e, TimeoutError) else UpstreamError.UNREACHABLE,
                e,
                False,
            )
            self._serve_waiting()
            return
        if self.closed:
            connection.close()
            return
        requester.upstream_ready(connection)

    def release(self, connection: UpstreamConnection, reusable: bool) -> None:
        """An exchange is done with `connection`."""
        if not reusable or connection.transport is None or self.closed:
            connection.close()  # its place frees once it is gone (lost)
            return
        if self.waiting:
            requester, timer = self.waiting.popleft()
            if timer is not None:
                timer.cancel()
            requester.upstream_ready(connection)
            return
        connection.idle_since = self.loop.time()
        self.idle.append(connection)
        if not self._sweeping:
            self._sweeping = True
            self.loop.call_later(SWEEP_EVERY_S, self._sweep)

    def lost(self, connection: UpstreamConnection) -> None:
        """`connection` is closed: its place is free."""
        self.open -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        self._serve_waiting()

    def _serve_waiting(self) -> None:
        while self.waiting and self.open < self.upstream.max_connections and not self.closed:
            requester, timer = self.waiting.popleft()
            if timer is not None:
                timer.cancel()
            self._connect(requester)

    def _sweep(self) -> None:
        """Close connections idle for UPSTREAM_KEEPALIVE_S."""
        now = self.loop.time()
        for connection in [c for c in self.idle if now - c.idle_since >= UPSTREAM_KEEPALIVE_S]:
            self.idle.remove(connection)
            connection.close()
        self._sweeping = bool(self.idle) and not self.closed
        if self._sweeping:
            self.loop.call_later(SWEEP_EVERY_S, self._sweep)

    async def close(self) -> None:
        """Close every connection (after the listener: no exchange is under way)."""
        self.closed = True
        for _, timer in self.waiting:
            if timer is not None:
                timer.cancel()
        self.waiting.clear()
        for task in list(self.connecting):
            task.cancel()
        for connection in self.idle:
            connection.close()
        self.idle.clear()
        await asyncio.sleep(0)  # let the transports close
