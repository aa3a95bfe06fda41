"""The asyncio flavour: the same calls and counters, a task on the running loop sends.

HTTP/1.1 is spoken over asyncio streams (no third-party HTTP library): the sidecar's
answers are small JSON bodies with a Content-Length.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from events_cache_client._core import Batch, Core, Stats, destination_item, token_item
from events_cache_client._settings import NDJSON, Settings, _settings, parse_url

MAX_HEADER_LINES = 100


class _ProtocolError(Exception):
    """The answer was not HTTP/1.1 as expected."""


class _Connection:
    """One keep-alive stream to the sidecar, reopened when it breaks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = False
        if settings.socket:
            self.host, self.path = "localhost", "/v1/events"
        else:
            host, port, self.path = parse_url(settings.url)
            self.port = port
            self.host = host if port == 80 else f"{host}:{port}"
            self._tcp = (host, port)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body) of POST /v1/events; OSError, TimeoutError or _ProtocolError."""
        try:
            return await asyncio.wait_for(self._post(body), self.settings.timeout_s)
        except asyncio.TimeoutError:
            await self.close()
            raise
        except (OSError, asyncio.IncompleteReadError, _ProtocolError):
            await self.close()
            if not self.used:
                raise
        # A keep-alive connection the sidecar closed meanwhile (idle, restarted): one
        # more try on a fresh one. Not after a timeout: the sidecar is slow.
        return await asyncio.wait_for(self._post(body), self.settings.timeout_s)

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            if self.settings.socket:
                self.reader, self.writer = await asyncio.open_unix_connection(self.settings.socket)
            else:
                self.reader, self.writer = await asyncio.open_connection(*self._tcp)
            self.used = False
        reader, writer = self.reader, self.writer
        assert reader is not None
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: {NDJSON}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)
        try:
            await writer.drain()
        except OSError:
            # The sidecar may answer (413) and close before it has read the whole body.
            if not reader.at_eof() and len(getattr(reader, "_buffer", b"")) == 0:
                raise
        status, close, data = await _read_response(reader)
        self.used = True
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """(status, whether the connection closes, body) of one HTTP/1.1 response."""
    line = await reader.readline()
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise _ProtocolError(f"bad status line {line[:100]!r}")
    status = int(parts[1])
    close = parts[0] == b"HTTP/1.0"
    length = -1
    chunked = False
    for _ in range(MAX_HEADER_LINES):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close"
    if chunked:
        return status, close, await _read_chunked(reader)
    if length >= 0:
        return status, close, await reader.readexactly(length)
    return status, True, await reader.read()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return data
        data += chunk[:-2]


class AsyncClient:
    """The asyncio flavour of `Client`: `incoming()` and `processed()` are plain
    (non-async) calls that only buffer; a task on the running loop sends. Call them
    from the loop's thread (use `Client` from other threads)."""

    def __init__(
        self,
        socket: str | None = None,
        url: str | None = None,
        settings: Settings | None = None,
        **options: Any,
    ) -> None:
        """As `Client`; no task starts before the first call inside a running loop."""
        self.settings = _settings(socket, url, settings, options)
        self._core = Core(self.settings)
        self._buffer = self._core.buffer
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._closed = False

    def incoming(
        self,
        token_id: str,
        body: bytes | str | Any,
        skip: str | None = None,
        error: str | None = None,
        capture: str | None = None,
        parsed: bool = False,
    ) -> None:
        """As `Client.incoming`."""
        holds = self._core.holds
        now = time.time()
        if holds.until and capture is None and holds.hold(token_id, body, error, parsed, now):
            return
        try:
            item = token_item(token_id, body, skip, error, now, capture, parsed)
        except Exception as e:  # never raise into the application
            self._core.call_failed(e)
            return
        self._put(item)

    def processed(
        self,
        destination_id: str,
        original: Any,
        success: Any = None,
        error: str | None = None,
        skip: str | None = None,
        token_id: str | None = None,
        capture: str | None = None,
    ) -> None:
        """As `Client.processed`."""
        try:
            item = destination_item(
                destination_id, original, success, error, skip, token_id, time.time(), capture
            )
        except Exception as e:  # never raise into the application
            self._core.call_failed(e)
            return
        self._put(item)

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._task is None:
            self._start()
        if self._buffer.put(item) and self._wake is not None:
            self._wake.set()

    def _start(self) -> None:
        if self._task is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not in the loop: buffered until a call or flush() is
            return
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run(), name="events-cache-client")

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        return self._core.stats()

    @property
    def last_errors(self) -> list[str]:
        """The newest error messages, newest last."""
        return list(self._core.last_errors)

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was buffered before the call is sent or dropped; False when
        `timeout` seconds passed first."""
        buffer = self._buffer
        if self._closed or not (buffer.pending() or self._core.holds.first):
            return buffer.pending() == 0
        self._start()
        if self._wake is None:
            return False
        marker = asyncio.Event()
        buffer.mark(marker)
        self._wake.set()
        try:
            await asyncio.wait_for(marker.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 5.0) -> bool:
        """Flush within `timeout`, then stop the sender task; what is left is counted
        as dropped_closed, as are later calls. Safe to repeat."""
        if self._closed:
            return self._buffer.pending() == 0
        deadline = time.monotonic() + timeout
        flushed = await self.flush(timeout)
        with self._buffer.lock:
            self._closed = self._buffer.closed = True
        self._stopping = True
        task = self._task
        if task is not None and self._wake is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), max(deadline - time.monotonic(), 0))
            except asyncio.TimeoutError:
                task.cancel()
        for marker in self._buffer.drain_closed():
            marker.set()
        return flushed

    async def __aenter__(self) -> AsyncClient:
        self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        assert self._wake is not None
        connection = _Connection(self.settings)
        try:
            while not self._stopping:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.flush_interval_s)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                await self._send_all(connection)
        finally:
            await connection.close()

    async def _send_all(self, connection: _Connection) -> None:
        core, buffer = self._core, self._buffer
        while not self._stopping:
            items, markers = buffer.take(self.settings.max_batch_events)
            if not items and not markers:
                for batch in core.counts_due(time.time()):
                    await self._send(connection, batch)
                return
            try:
                for batch in core.with_counts(core.batches(items)):
                    await self._send(connection, batch)
            finally:
                buffer.finished()
                for marker in markers:
                    marker.set()

    async def _send(self, connection: _Connection, batch: Batch) -> None:
        core = self._core
        pending = [batch]
        while pending:
            batch = pending.pop()
            if core.waiting(batch, time.monotonic()):
                continue
            try:
                status, answer = await connection.post(b"\n".join(batch))
            except (
                OSError,
                asyncio.TimeoutError,
                asyncio.IncompleteReadError,
                _ProtocolError,
            ) as e:
                core.unavailable(batch, f"{type(e).__name__}: {e}", time.monotonic())
                continue
            core.reachable()
            pending.extend(reversed(core.answered(batch, status, answer)))
