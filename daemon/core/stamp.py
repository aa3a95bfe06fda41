"""Stamps of an entry: its uid and its time, in Jitsu Classic's layout.

Jitsu writes every `timestamp` in UTC as Go's layout `2006-01-02T15:04:05.000000Z`
(exactly six fractional digits, a literal `Z`), and parses it back with that layout
only; ours are written the same way: the time of caching (cheap on the hot path), or
the time the ingest gave, converted.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from datetime import datetime, timedelta


class _Clock:
    """Jitsu's layout of a Unix time (microseconds truncated); the date part is formatted
    once per second, the whole text once per distinct time (a request's events share one).

    Safe across threads without a lock: the cache is one tuple, read once and replaced
    whole, so a caller never sees one time's text beside another's second.
    """

    def __init__(self) -> None:
        self._last: tuple[float, str, int, str] = (-1.0, "", -1, "")  # now, text, second, prefix

    def format(self, now: float) -> str:
        last = self._last
        if now == last[0]:
            return last[1]
        second = int(now)
        prefix = last[3]
        if second != last[2]:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        text = f"{prefix}.{int((now - second) * 1_000_000):06d}Z"
        self._last = (now, text, second, prefix)
        return text


_clock = _Clock()


def rfc3339(now: float) -> str:
    """Format a Unix time as Jitsu does: RFC 3339, UTC, microseconds."""
    return _clock.format(now)


# RFC 3339 date-time (section 5.6): "T"/"Z" in either case, any number of fractional
# digits, an offset of at most 23:59; no leap second (Go's time.Parse refuses :60 too).
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]((?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])"
    r"(?:\.([0-9]+))?(?:[Zz]|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))"
)


def jitsu_time(text: str) -> str | None:
    """An RFC 3339 time as Jitsu writes one (UTC, microseconds), or None if not RFC 3339.

    The instant is kept: an offset is converted to UTC; digits beyond the microsecond are
    dropped (truncated, as Go formats). A date that does not exist, or that falls outside
    years 1-9999 once in UTC, is not accepted. A time already in UTC costs no arithmetic.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    date, clock, fraction, sign, hours, minutes = m.groups()
    micro = (fraction or "")[:6].ljust(6, "0")
    try:
        t = datetime.fromisoformat(f"{date}T{clock}")  # the day exists in its month
        if sign is None or hours == minutes == "00":
            return f"{date}T{clock}.{micro}Z"
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        t = t - offset if sign == "+" else t + offset
    except (ValueError, OverflowError):
        return None
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{micro}Z"
    )


class _RandomPool:
    """Random bytes from the OS, fetched 4 KB at a time instead of 16 bytes per uid (a
    system call per event would be a large part of the ingest's cost).

    Safe across threads without a lock: the 16-byte pieces wait in a deque, whose
    popleft() hands each piece to one caller only (two uids never share their bytes).
    Two threads that find it empty at once both refill it, which only wastes a fetch.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._pieces: deque[bytes] = deque()

    def take16(self) -> bytes:
        try:
            return self._pieces.popleft()
        except IndexError:
            pool = os.urandom(self.SIZE)
            self._pieces.extend([pool[i : i + 16] for i in range(16, self.SIZE, 16)])
            return pool[:16]


_random = _RandomPool()


def new_uid() -> str:
    """A random (version 4) UUID as text, without the cost of building a uuid.UUID."""
    b = bytearray(_random.take16())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
