"""The threaded client: calls append to a buffer, a daemon thread sends the batches."""

from __future__ import annotations

import atexit
import http.client
import os
import socket
import threading
import time
import weakref
from typing import Any

from events_cache_client._core import Batch, Core, Stats, destination_item, token_item
from events_cache_client._lines import TOKEN_RAW, TOKEN_VOUCHED
from events_cache_client._settings import NDJSON, Settings, _settings, parse_url

_now = time.time
EXIT_FLUSH_S = 1.0  # what the interpreter's exit grants a client that was not closed


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _Transport:
    """One keep-alive connection, reopened when it breaks; a stale one is retried once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.conn: http.client.HTTPConnection | None = None
        self.used = False  # the open connection has carried a request already
        if settings.socket:
            self.path = "/v1/events"
        else:
            self.host, self.port, self.path = parse_url(settings.url)

    def _open(self) -> http.client.HTTPConnection:
        s = self.settings
        if s.socket:
            return _UnixConnection(s.socket, s.timeout_s)
        return http.client.HTTPConnection(self.host, self.port, timeout=s.timeout_s)

    def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body) of POST /v1/events; OSError/HTTPException when unreachable."""
        try:
            return self._post(body)
        except (ConnectionError, http.client.BadStatusLine):
            if not self.used:
                raise
            # A keep-alive connection the sidecar closed meanwhile (idle, restarted):
            # one more try on a fresh one. Not after a timeout: the sidecar is slow.
            return self._post(body)

    def _post(self, body: bytes) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = self._open()
            self.used = False
        conn = self.conn
        try:
            conn.request("POST", self.path, body, {"Content-Type": NDJSON})
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        self.used = True
        if response.will_close:
            self.close()
        return response.status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Client:
    """Hands events to the events-cache sidecar, fire and forget.

    `incoming()` and `processed()` only append to a bounded buffer and never raise or
    block; a daemon thread sends NDJSON batches to `POST /v1/events`. Thread-safe.
    """

    def __init__(
        self,
        socket: str | None = None,
        url: str | None = None,
        settings: Settings | None = None,
        **options: Any,
    ) -> None:
        """Transport from `socket`/`url`, else EVENTS_CACHE_SOCKET / EVENTS_CACHE_URL,
        else the chart's socket path; `options` are Settings fields (e.g.
        max_request_bytes=...). ValueError when a setting is unusable."""
        self.settings = _settings(socket, url, settings, options)
        self._init_state()
        _live.add(self)

    def _init_state(self) -> None:
        self._core = Core(self.settings)
        self._buffer = self._core.buffer
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopping = False
        self._closed = False

    # -- the calls --------------------------------------------------------------------

    def incoming(
        self,
        token_id: str,
        body: bytes | str | Any,
        skip: str | None = None,
        error: str | None = None,
        capture: str | None = None,
        parsed: bool = False,
    ) -> None:
        """An event as the ingest received it for API key `token_id`: the raw body
        (bytes/str, split like the sidecar's raw endpoint) or a parsed value; `skip`:
        why it was skipped; `error`: why the ingest rejected it (stored as malformed);
        `capture`: a test run's tag (the sidecar caches the event beyond its id's rate
        limit, within its budget, and keeps the tag: `?capture=` finds it); `parsed`:
        the caller vouches the raw body is well-formed JSON (the ingest parsed it), so
        that an event of a limited id can be held back instead of sent."""
        holds = self._core.holds
        if holds.until and capture is None and holds.hold(token_id, body, error, parsed, _now()):
            return
        try:
            if type(body) is bytes and capture is None and not parsed:  # common, inline
                item = (TOKEN_RAW, token_id, body, skip, error, _now(), None, len(body) + 64)
            elif type(body) is bytes and capture is None and not error and body[:1] == b"{":
                item = (TOKEN_VOUCHED, token_id, body, skip, None, _now(), None, len(body) + 64)
            else:
                item = token_item(token_id, body, skip, error, _now(), capture, parsed)
        except Exception as e:  # never raise into the application
            self._core.call_failed(e)
            return
        if self._thread is None:
            self._start()
        if self._buffer.put(item):
            self._wake.set()

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
        """What destination `destination_id` made of an event: exactly one of `success`
        (the result object), `error` (why it failed) or `skip` (why it was skipped);
        `capture` as for incoming()."""
        try:
            item = destination_item(
                destination_id, original, success, error, skip, token_id, _now(), capture
            )
        except Exception as e:  # never raise into the application
            self._core.call_failed(e)
            return
        self._put(item)

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._thread is None:
            self._start()
        if self._buffer.put(item):
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="events-cache-client", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # the interpreter is shutting down: nothing will be sent
                return
            self._thread = thread

    # -- reading and shutting down --------------------------------------------------

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        return self._core.stats()

    @property
    def last_errors(self) -> list[str]:
        """The newest error messages (invalid lines, rejections, outages), newest last."""
        return list(self._core.last_errors)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was buffered before the call is sent or dropped; False when
        `timeout` seconds passed first."""
        buffer = self._buffer
        if self._closed or self._thread is None:
            if self._closed or not buffer.pending():
                return buffer.pending() == 0
            self._start()
        marker = threading.Event()
        buffer.mark(marker)
        self._wake.set()
        return marker.wait(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Flush within `timeout`, then stop the sender; what is left is counted as
        dropped_closed. Later calls are counted as dropped_closed too. Safe to repeat."""
        if self._closed:
            return self._buffer.pending() == 0
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        with self._buffer.lock:
            self._closed = self._buffer.closed = True
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0))
        for marker in self._buffer.drain_closed():
            marker.set()
        _live.discard(self)
        return flushed

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sender thread ------------------------------------------------------------

    def _run(self) -> None:
        transport = _Transport(self.settings)
        interval = self.settings.flush_interval_s
        try:
            while not self._stopping:
                self._wake.wait(interval)
                self._wake.clear()
                self._send_all(transport)
        finally:
            transport.close()

    def _send_all(self, transport: _Transport) -> None:
        core, buffer = self._core, self._buffer
        while not self._stopping:
            items, markers = buffer.take(self.settings.max_batch_events)
            if not items and not markers:
                for batch in core.counts_due(time.time()):
                    self._send(transport, batch)
                return
            try:
                for batch in core.with_counts(core.batches(items)):
                    self._send(transport, batch)
            finally:
                buffer.finished()
                for marker in markers:
                    marker.set()

    def _send(self, transport: _Transport, batch: Batch) -> None:
        core = self._core
        pending = [batch]
        while pending:
            batch = pending.pop()
            if core.waiting(batch, time.monotonic()):
                continue
            try:
                status, answer = transport.post(b"\n".join(batch))
            except (OSError, http.client.HTTPException) as e:
                core.unavailable(batch, f"{type(e).__name__}: {e}", time.monotonic())
                continue
            core.reachable()
            pending.extend(reversed(core.answered(batch, status, answer)))


_live: weakref.WeakSet[Client] = weakref.WeakSet()


def _at_exit() -> None:
    """At interpreter exit, clients that were not closed get EXIT_FLUSH_S to send."""
    for client in list(_live):
        client.close(EXIT_FLUSH_S)


def _after_fork() -> None:
    """In a forked child the sender thread does not exist: each client starts afresh
    (empty buffer, zero counters) and its sender starts with the child's first call."""
    for client in list(_live):
        client._init_state()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
