"""Activity over time: per id and minute, how many events every pod received, cached,
cached as errors and rate limited (`daemon.store.activity`), for charts.

The minutes end with the current one (still counting) and go back `minutes` (at most 60);
the ids are the ones asked for (at most 100), else the 100 the id index says were written
most recently, within the window. Every array is aligned with `minutes`, zeros filled.
The answer is bounded in bytes: ids past `max_bytes` are left out (`truncated`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from daemon.core.activity import KINDS
from daemon.core.model import Namespace
from daemon.query.params import QueryError, ids, namespace
from daemon.store.storage import Storage

MAX_ACTIVITY_IDS = 100
MAX_ACTIVITY_MINUTES = 60
_MINUTES_MESSAGE = f"minutes must be an integer between 1 and {MAX_ACTIVITY_MINUTES}"


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """The parsed parameters of GET /api/v1/events/activity."""

    namespace: Namespace
    ids: tuple[str, ...] | None  # None: the most recently active ids
    minutes: int


@dataclass(frozen=True, slots=True)
class ActivityAnswer:
    """The answer's document, and whether ids were left out to keep it within bytes."""

    doc: dict[str, Any]
    truncated: bool


def parse_activity(params: Mapping[str, str]) -> ActivityQuery:
    """`namespace`, `ids` (or repeated `id`; at most MAX_ACTIVITY_IDS), `minutes` (1 to
    MAX_ACTIVITY_MINUTES, default 60)."""
    text = params.get("minutes", "")
    if text and not (text.isascii() and text.isdigit() and len(text) <= 3):
        raise QueryError(_MINUTES_MESSAGE)
    minutes = int(text) if text else MAX_ACTIVITY_MINUTES
    if not 1 <= minutes <= MAX_ACTIVITY_MINUTES:
        raise QueryError(_MINUTES_MESSAGE)
    ns, wanted = namespace(params), ids(params)
    if wanted is not None and len(wanted) > MAX_ACTIVITY_IDS:
        raise QueryError(f"ids: at most {MAX_ACTIVITY_IDS} ids an answer, got {len(wanted)}")
    return ActivityQuery(ns, wanted, minutes)


def minute_start(minute: int) -> str:
    """A minute's start time, RFC 3339 in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute * 60))


class Activity:
    """Answers GET /api/v1/events/activity."""

    def __init__(
        self, storage: Storage, max_bytes: int, wall: Callable[[], float] = time.time
    ) -> None:
        self._storage = storage
        self._max_bytes = max_bytes
        self._wall = wall

    async def activity(self, query: ActivityQuery) -> ActivityAnswer:
        """Every pod's counts per id and minute, oldest minute first."""
        now = self._wall()
        first = int(now // 60) - query.minutes + 1
        store = self._storage.activity
        wanted = query.ids
        if wanted is None:
            wanted = tuple(await store.recent_ids(query.namespace, MAX_ACTIVITY_IDS, first * 60))
        counts = await store.read(query.namespace, wanted, first, query.minutes)
        minutes = [minute_start(first + n) for n in range(query.minutes)]
        doc: dict[str, Any] = {"namespace": str(query.namespace), "minutes": minutes, "ids": []}
        room = self._max_bytes - len(orjson.dumps(doc))
        truncated = False
        for id_, per_kind in zip(wanted, counts, strict=True):
            row = {"id": id_, **dict(zip(KINDS, per_kind, strict=True))}
            size = len(orjson.dumps(row)) + 1  # and its comma
            if size > room:
                truncated = True
                break
            room -= size
            doc["ids"].append(row)
        return ActivityAnswer(doc, truncated)
