"""Stamps of an entry: its uid and its time, in Jitsu Classic's layout.

Jitsu writes every `timestamp` in UTC as Go's layout `2006-01-02T15:04:05.000000Z`
(exactly six fractional digits, a literal `Z`), and parses it back with that layout
only; ours are written the same way: the time of caching (cheap on the hot path), or
the time the ingest gave, converted.
"""

from __future__ import annotations

import itertools
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
    """Random bits from the OS, fetched 4 KB at a time instead of a few bytes per uid (a
    system call per event would be a large part of the ingest's cost), kept as text.

    Safe across threads without a lock: the pieces (48 bits each, as 12 hexadecimal
    digits) wait in a deque, whose popleft() hands each piece to one caller only (two
    uids never share their bits). Two threads that find it empty at once both refill it,
    which only wastes a fetch.
    """

    SIZE = 4092  # bytes per fetch: 682 pieces of 6

    def __init__(self) -> None:
        self._pieces: deque[str] = deque()

    def take12(self) -> str:
        """48 random bits as 12 hexadecimal digits."""
        try:
            return self._pieces.popleft()
        except IndexError:
            pool = os.urandom(self.SIZE).hex()
            self._pieces.extend([pool[i : i + 12] for i in range(12, len(pool), 12)])
            return pool[:12]


_random = _RandomPool()

# The wall clock read once, then advanced by the monotonic clock: uids of one process
# never go back in time when the wall clock is stepped back (NTP), and stay within the
# clock's slew of the wall time.
_EPOCH_NS = time.time_ns() - time.monotonic_ns()
# A per-process sequence (next() on itertools.count is atomic: no lock): uids made
# within the same 1/4096 ms by one process still sort in the order they were made (it
# wraps after 16384 uids, never within one 1/4096 ms).
_sequence = itertools.count()
_V7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


_prefix: tuple[int, str] = (-1, "")  # a millisecond and its text, replaced whole


def new_uid() -> str:
    """A time-ordered (version 7, RFC 9562) UUID as text, without building a uuid.UUID.

    48 bits of Unix milliseconds, then the version and 12 bits of the fraction of that
    millisecond (RFC 9562's method 3), then the variant and a 14-bit sequence, then 48
    random bits. Uids of one process sort in the order they were made; those of
    different pods by their clocks. As text (lower-case hexadecimal, fixed length) they
    sort the same way. The millisecond's text is made once per millisecond (one tuple,
    read once and replaced whole: safe across threads, as `_Clock`).
    """
    global _prefix
    ms, sub = divmod(_EPOCH_NS + time.monotonic_ns(), 1_000_000)
    prefix = _prefix
    if prefix[0] != ms:
        h = f"{ms:012x}"
        prefix = _prefix = (ms, f"{h[:8]}-{h[8:]}-7")
    return (
        f"{prefix[1]}{(sub << 12) // 1_000_000:03x}-"
        f"{0x8000 | (next(_sequence) & 0x3FFF):04x}-{_random.take12()}"
    )


def v7_uid(text: str) -> str | None:
    """The uid in canonical form (lower case) if it is a version 7 UUID, else None."""
    uid = text.strip().lower()
    return uid if _V7.fullmatch(uid) else None


def uid_time(uid: str) -> float:
    """The Unix time (to the millisecond) a version 7 uid was made at."""
    return int(uid[:8] + uid[9:13], 16) / 1000
