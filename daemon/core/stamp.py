"""Stamps of an entry: its uid and its time of caching, cheap on the hot path."""

from __future__ import annotations

import os
import time


class _Clock:
    """RFC 3339 UTC timestamps; the date part is formatted once per second, and the
    whole text once per distinct time (every event of a request shares one)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._now = -1.0
        self._text = ""

    def format(self, now: float) -> str:
        if now == self._now:
            return self._text
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._now = now
        self._text = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return self._text


_clock = _Clock()


def rfc3339(now: float) -> str:
    """Format a Unix time as Jitsu does: RFC 3339, UTC, microseconds."""
    return _clock.format(now)


class _RandomPool:
    """Random bytes from the OS, fetched 4 KB at a time instead of 16 bytes per uid
    (one getrandom system call per event was a third of P3's profile)."""

    SIZE = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def take16(self) -> bytes:
        pos = self._pos
        if pos + 16 > len(self._pool):
            self._pool = os.urandom(self.SIZE)
            pos = 0
        self._pos = pos + 16
        return self._pool[pos : pos + 16]


_random = _RandomPool()


def new_uid() -> str:
    """A random (version 4) UUID as text, without the cost of building a uuid.UUID."""
    b = bytearray(_random.take16())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
