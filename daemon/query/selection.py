"""Choosing the events of an answer: Jitsu's newest `limit` per id, narrowed by the
filters (`since`, `until`, `q`, `before`, `uid`, `capture`) and bounded by `max_response_events`
and `max_response_bytes`.

Pure: it takes the stored bytes of each id's list, newest first, a page at a time, and
keeps each chosen event as the JSON text the answer carries, so that the bound in bytes
is exact: the `events` array of an answer is at most `max_response_bytes` long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from orjson import dumps

from daemon.core.cut import cut
from daemon.core.entry import CAPTURE, decode
from daemon.core.stamp import uid_time, v7_uid
from daemon.query.params import CacheQuery


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


def has_uid(raw: bytes, uid: str) -> bool:
    """Whether the entry is the one with this uid (cheap byte search, then checked)."""
    return uid.encode() in raw and parse_entry(raw).get("uid") == uid


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the `before` entry is: its id's list and its time."""

    id: str
    time: float | None


# `after`: an id's list (newest first) is read on past its first entry older than the
# anchor, until entries are older by this much: writers of several pods and shards push
# entries out of their uids' order by less than this.
AFTER_SLACK_S = 5.0


def contains(doc: dict[str, Any], needle: str) -> bool:
    """The `q` filter: whether a text field of the stored entry holds `needle` (lower case)."""
    return any(isinstance(v, str) and needle in v.lower() for v in doc.values())


class Selection:
    """The events of one answer, gathered id by id, page by page."""

    def __init__(self, query: CacheQuery, max_events: int, max_bytes: int) -> None:
        self._query = query
        self._max_events = max_events
        self._max_bytes = max_bytes
        self.events: list[bytes] = []  # each event's JSON text
        self._size = 1  # of the `events` array: "[", then each event and a comma or "]"
        self.truncated = False
        self.full = False  # no room for another event (or the `uid` entry was found)
        self.anchor: Anchor | None = None  # `before`: where its entry is, None: nowhere
        self._taken = 0  # events of the current id
        self._skipping = False  # `before`, in the anchor's own list: until it is passed
        self._older_than: float | None = None  # `before`, in another id's list
        self._nothing = False  # `before` names an entry no list holds (trimmed away)
        self._passed = False  # `after`: the current id's list is read past the anchor
        self._tag = dumps(query.capture)[1:-1]  # `capture`, as JSON writes it in an entry

    @property
    def room(self) -> int:
        """Bytes the answer can still take."""
        return max(0, self._max_bytes - self._size)

    def begin(self, id_: str) -> None:
        """The pages that follow are id_'s."""
        self._taken = 0
        self._passed = False
        before, anchor = self._query.before, self.anchor
        self._nothing = bool(before) and anchor is None
        self._skipping = bool(before) and anchor is not None and anchor.id == id_
        self._older_than = anchor.time if anchor is not None and not self._skipping else None
        if anchor is not None and not self._skipping and anchor.time is None:
            self._nothing = True  # the anchor has no time: nothing else is older than it

    def add(self, entries: list[bytes]) -> bool:
        """Take what the query wants of a page of the current id (newest first); whether
        it wants the id's next page."""
        if self._nothing:
            return False
        query = self._query
        if not query.filtered:
            entries = entries[: query.limit - self._taken]
        for raw in entries:
            if query.filtered and not self._matches(raw):
                if self._passed:
                    return False
                continue
            if self.full:
                self.truncated = True  # a match with no room left
                return False
            if not self._take(raw):
                return False
            self._taken += 1
            if query.uid or self._taken >= query.limit:
                return False
        return True

    def _take(self, raw: bytes) -> bool:
        """Add one event if it fits; False (and cut) when it does not."""
        piece = dumps(decode(raw))
        # Each event costs its JSON and one byte: its comma, or the array's "]".
        cost = len(piece) + 1
        if self._size + cost > self._max_bytes and not self._query.uid:
            if cost + 1 > self._max_bytes:  # it never fits: answered cut
                piece = dumps(cut(raw))
                cost = len(piece) + 1
            if self._size + cost > self._max_bytes:
                self.truncated = self.full = True
                return False
        self.events.append(piece)
        self._size += cost
        if self._query.uid or len(self.events) >= self._max_events:
            self.full = True
        return True

    def _matches(self, raw: bytes) -> bool:
        query = self._query
        if self._skipping:
            self._skipping = not has_uid(raw, query.before)
            return False
        if query.uid and not has_uid(raw, query.uid):
            return False
        if query.capture and self._tag not in raw:
            return False  # cheap: the tag as the entry's JSON holds it, or no match
        doc = parse_entry(raw)
        if query.capture and doc.get(CAPTURE) != query.capture:
            return False
        if query.after and not self._after(doc):
            return False
        since = query.since.timestamp() if query.since else None
        until = query.until.timestamp() if query.until else None
        older_than = self._older_than
        if since is not None or until is not None or older_than is not None:
            t = entry_time(doc)
            if t is None or (since is not None and t < since) or (until is not None and t > until):
                return False
            if older_than is not None and t >= older_than:
                return False
        return not query.q or contains(doc, query.q)

    def _after(self, doc: dict[str, Any]) -> bool:
        """`after`: whether the entry was cached after the anchor uid: a version 7 uid by
        its order, an older entry (a random uid) by its `timestamp` against the anchor's
        time. Entries older than the anchor by AFTER_SLACK_S end the id's reading."""
        anchor = self._query.after
        uid = doc.get("uid")
        ordered = v7_uid(uid) if isinstance(uid, str) else None
        if ordered is not None:
            if ordered > anchor:
                return True
            t: float | None = uid_time(ordered)
        else:
            t = entry_time(doc)
            if t is not None and t > uid_time(anchor):
                return True
        self._passed = t is not None and t < uid_time(anchor) - AFTER_SLACK_S
        return False
