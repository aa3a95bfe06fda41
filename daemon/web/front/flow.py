"""The transport side of a front-door connection: one timer at a time, reading paused
for as long as any reason to pause remains, closing, and the parser's calls held while
an answer is worked out in slices (so that answers leave in the order requests came)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools


class Flow(asyncio.Protocol):
    """A connection's transport, its one timer, and why it is not reading."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.paused_by: set[str] = set()
        self.closing = False
        self.work: object | None = None  # an answer being worked out in slices
        self.held: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self.replaying = False

    def unreadable(self, error: Exception) -> None:
        """What the parser could not read, met while replaying held calls."""
        raise NotImplementedError

    def pause_writing(self) -> None:
        """The transport's write buffer is full: read nothing more until it drains."""
        self.pause("write")

    def resume_writing(self) -> None:
        """The write buffer has drained."""
        self.resume("write")

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        if seconds > 0:
            self.timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def pause(self, reason: str) -> None:
        """Stop reading for `reason` (a full write buffer, a spent byte budget)."""
        if not self.paused_by and self.transport is not None:
            self.transport.pause_reading()
        self.paused_by.add(reason)

    def resume(self, reason: str) -> None:
        """Read again once no reason to pause is left."""
        self.paused_by.discard(reason)
        if not self.paused_by and self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def close(self) -> None:
        """Close now (what was written is still sent)."""
        self._disarm()
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _later(self, call: Callable[..., None], *args: Any) -> bool:
        """While an answer is worked out in slices, what the parser reports of the
        requests after it is kept and replayed once it is written: answers go out in
        the order the requests came."""
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
