"""The transport side of a front-door connection: one timer at a time, reading paused
for as long as any reason to pause remains, closing, and the parser's calls held while
an answer is worked out in slices (so that answers leave in the order requests came);
and the bounds of a request's head, the same on every front-door listener."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from daemon.core.wire import MAX_TARGET_BYTES
from daemon.web.front.wire import MAX_FIELD_BYTES, MAX_HEAD_BYTES, parse_error


class Flow(asyncio.Protocol):
    """A connection's transport, its one timer, and why it is not reading."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, head_s: float, body_s: float, idle_s: float
    ) -> None:
        self.loop = loop
        self.timeouts = {"head": head_s, "body": body_s, "idle": idle_s}
        self.in_request = False  # between a request's first byte and its answer
        self.last_active = 0.0  # when the last answer was written (loop time)
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_kind = ""  # what the timer bounds: "head", "body" or "idle"
        self.paused_by: set[str] = set()
        self.closing = False
        self.work: object | None = None  # an answer being worked out in slices
        self.held: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self.replaying = False
        self.target = b""  # the request target read so far
        self.head_bytes = 0  # the header bytes read so far
        self.problem = ""  # why the request cannot be read, when a callback stopped it

    def unreadable(self, error: Exception) -> None:
        """A request the parser cannot read (met in a read, or while replaying held
        calls): the 400 that says why."""
        self._refuse_connection(self.problem or f"bad request: {parse_error(error)}")

    def _refuse_connection(self, text: str) -> None:
        """Answer 400 with `text`, then close: nothing after it can be framed."""
        raise NotImplementedError

    def waiting_for(self) -> str:
        """ "head", "body", "idle" (the next request), or "" (nothing to time)."""
        raise NotImplementedError

    def late(self, kind: str) -> None:
        """The head or the body waited for did not come in time."""
        raise NotImplementedError

    def _clock(self) -> None:
        """One timer for what the connection waits for now: a request's head (due within
        the header timeout of its first byte), its body (the body timeout from its head),
        or the next request (the keep-alive timeout from the last answer). Set after a
        read is parsed, so a request that comes whole in one read costs no timer."""
        kind = self.waiting_for()
        if self.closing or kind == self.timer_kind:
            return
        if kind:
            self._arm(self.timeouts[kind], self._late, kind)
        else:
            self._disarm()

    def _late(self) -> None:
        kind, self.timer, self.timer_kind = self.timer_kind, None, ""
        if kind != "idle":
            self.late(kind)
            return
        # Answers do not re-set the keep-alive timer: it counts from the last one.
        idle = self.loop.time() - self.last_active
        if self.in_request or idle < self.timeouts["idle"]:
            self._arm(self.timeouts["idle"] - idle, self._late, "idle")
        else:
            self.close()

    def pause_writing(self) -> None:
        """The transport's write buffer is full: read nothing more until it drains."""
        self.pause("write")

    def resume_writing(self) -> None:
        """The write buffer has drained."""
        self.resume("write")

    def _arm(self, seconds: float, callback: Callable[[], None], kind: str) -> None:
        self._disarm()
        if seconds > 0:
            self.timer = self.loop.call_later(seconds, callback)
            self.timer_kind = kind

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.timer_kind = ""

    def pause(self, reason: str) -> None:
        """Stop reading for `reason` (a full write buffer, a spent byte budget)."""
        if not self.paused_by and self.transport is not None:
            self.transport.pause_reading()
        self.paused_by.add(reason)

    def resume(self, reason: str) -> None:
        """Read again once no reason to pause is left (nothing to do, and no call to the
        transport, when `reason` did not pause it: the usual case, twice a request)."""
        if reason not in self.paused_by:
            return
        self.paused_by.discard(reason)
        if not self.paused_by and self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def idle(self) -> bool:
        """No request under way: closing it loses nothing."""
        return not self.in_request

    def close(self) -> None:
        """Close now (what was written is still sent)."""
        self._disarm()
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _later(self, call: Callable[..., None], *args: Any) -> bool:
        """While an answer is worked out in slices, what the parser reports of the
        requests after it is kept and replayed once it is written: answers go out in
        the order the requests came. (Callers test `work is not None or held` first, the
        cheap part, inline: the parser calls them several times a request.)"""
        if self.work is None and (self.replaying or not self.held):
            return False
        self.held.append((call, args))
        return True

    def _replay(self) -> None:
        self.replaying = True
        try:
            while self.held and self.work is None and not self.closing:
                call, args = self.held.popleft()
                try:
                    call(*args)
                except httptools.HttpParserError as e:
                    self.unreadable(e)
        finally:
            self.replaying = False

    # -- the bounds of a request's head, the same on every front-door listener ---------
    def on_url(self, url: bytes) -> None:
        """httptools: a piece of the request target, bounded by MAX_TARGET_BYTES."""
        if (self.work is not None or self.held) and self._later(self.on_url, url):
            return
        self.target += url
        if len(self.target) > MAX_TARGET_BYTES:
            self._unreadable(f"the request target exceeds {MAX_TARGET_BYTES} bytes")

    def _count_header(self, name: bytes, value: bytes) -> None:
        """Count a header against MAX_FIELD_BYTES (alone) and MAX_HEAD_BYTES (all)."""
        size = len(name) + len(value)
        self.head_bytes += size
        if size > MAX_FIELD_BYTES:
            self._unreadable(
                f"header {name.decode('latin-1')[:64]} exceeds {MAX_FIELD_BYTES} bytes"
            )
        if self.head_bytes > MAX_HEAD_BYTES:
            self._unreadable(f"the headers exceed {MAX_HEAD_BYTES} bytes")

    def _unreadable(self, text: str) -> None:
        """Stop parsing: the parser wraps what a callback raises, so the reason is kept
        here for the 400 that follows."""
        self.problem = text
        raise httptools.HttpParserError(text)
