"""Choosing the events of an answer: Jitsu's newest `limit` per id, narrowed by the
filters (`since`, `until`, `q`, `before`) and bounded by `max_response_events`.

Pure: it works on the stored bytes of each id's list, newest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from daemon.core.entry import decode
from daemon.web.query.params import CacheQuery


def parse_entry(raw: bytes) -> dict[str, Any]:
    """A stored entry's fields, or {} when it is not a JSON object."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def entry_time(doc: dict[str, Any]) -> float | None:
    """The entry's `timestamp` as a Unix time, None when it has none that parses."""
    text = doc.get("timestamp")
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.timestamp() if value.tzinfo is not None else None


def _uid_at(entries: list[bytes], uid: str) -> int | None:
    """Where the entry with this uid is in a list (cheap byte search, then checked)."""
    needle = uid.encode()
    for n, raw in enumerate(entries):
        if needle in raw and parse_entry(raw).get("uid") == uid:
            return n
    return None


def find_anchor(lists: Iterable[list[bytes]], uid: str) -> float | None:
    """The time of the entry with this uid in any of the lists."""
    for entries in lists:
        n = _uid_at(entries, uid)
        if n is not None:
            return entry_time(parse_entry(entries[n]))
    return None


def _contains(doc: dict[str, Any], needle: str) -> bool:
    return any(isinstance(v, str) and needle in v.lower() for v in doc.values())


class Selection:
    """The events of one answer, gathered id by id."""

    def __init__(self, query: CacheQuery, max_events: int) -> None:
        self._query = query
        self._max_events = max_events
        self.events: list[dict[str, Any]] = []
        self.truncated = False
        # `before`: the anchor's time, for the lists that do not hold the anchor itself.
        self.anchor_time: float | None = None

    @property
    def full(self) -> bool:
        """No room for another event."""
        return len(self.events) >= self._max_events

    def add(self, entries: list[bytes]) -> None:
        """Take what the query wants of one id's entries (newest first)."""
        chosen = self._matching(entries) if self._query.filtered else entries[: self._query.limit]
        room = self._max_events - len(self.events)
        if len(chosen) > room:
            self.truncated = True
            chosen = chosen[:room]
        self.events.extend(decode(raw) for raw in chosen)

    def _matching(self, entries: list[bytes]) -> list[bytes]:
        query = self._query
        older_than: float | None = None
        if query.before:
            at = _uid_at(entries, query.before)
            if at is not None:
                entries = entries[at + 1 :]
            elif self.anchor_time is None:
                return []  # the anchor is gone: so is everything older than it
            else:
                older_than = self.anchor_time
        since = query.since.timestamp() if query.since else None
        until = query.until.timestamp() if query.until else None
        timed = since is not None or until is not None or older_than is not None
        out: list[bytes] = []
        for raw in entries:
            doc = parse_entry(raw)
            if timed:
                t = entry_time(doc)
                if (
                    t is None
                    or (since is not None and t < since)
                    or (until is not None and t > until)
                ):
                    continue
                if older_than is not None and t >= older_than:
                    continue
            if query.q and not _contains(doc, query.q):
                continue
            out.append(raw)
            if len(out) == query.limit:
                break
        return out
