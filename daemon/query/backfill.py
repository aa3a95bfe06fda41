"""The live tail's backfill: the cached events a stream sends before it follows, read
as the query answers read them (`Lists`, `Selection`: the same filters and bounds) and
sent oldest first.

- `last=N`: the newest N events of the watched ids. Read: the newest N of each id, of at
  most N ids; with every id watched, the N most recently written of the id index (the
  newest N events are among them: an id written less recently than N others has no
  event newer than each of theirs). Then merged by time and the newest N kept.
- `since=T`: every cached event whose `timestamp` is at or after T.
- `after=<uid>` (Last-Event-ID): every cached event after that version 7 uid (the
  selection's `after`: by uid order, an older entry by its timestamp).
- With every id watched, `since` and `after` read only the ids written since then (the
  id index's score is an id's last write; AFTER_SLACK_S earlier, for pods' clocks), so a
  reconnect in a namespace of many ids reads the few that were active meanwhile.

Bounded as an answer of the query API: at most `max_response_events` events and
`max_response_bytes` bytes of them; `cut` says when those bounds left some out.
Events are merged by their uid's time (an older, random uid: by `timestamp`), so the
order is one across ids and pods.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from daemon.core.stamp import uid_time, v7_uid
from daemon.query.lists import Lists
from daemon.query.params import CacheQuery, StreamQuery
from daemon.query.selection import AFTER_SLACK_S, Selection, entry_time
from daemon.store.storage import Storage

CHUNK = 500  # ids per pipeline of heads and lengths
INDEX_PAGE = 500  # ids per read of the id index


@dataclass(frozen=True, slots=True)
class Backfilled:
    """One cached event to send: its id, uid and JSON text as the query answers it."""

    id: str
    uid: str
    event: bytes
    time: float


@dataclass(frozen=True, slots=True)
class Backfill:
    """The events a stream sends first, oldest first; `cut`: the bounds left some out."""

    events: list[Backfilled]
    cut: bool


def _backfilled(id_: str, piece: bytes) -> Backfilled:
    doc = orjson.loads(piece)
    uid = doc.get("uid")
    ordered = v7_uid(uid) if isinstance(uid, str) else None
    if ordered is not None:
        return Backfilled(id_, ordered, piece, uid_time(ordered))
    return Backfilled(id_, str(uid or ""), piece, entry_time(doc) or 0.0)


async def _written_since(storage: Storage, namespace: str, t: float) -> tuple[str, ...]:
    """The ids of the namespace written at or after `t` (the index's score is an id's
    last write), most recently written first: the others hold nothing newer."""
    ids: list[str] = []
    cursor = None
    while True:
        page = await storage.index_page(namespace, INDEX_PAGE, cursor)
        for id_, score in page.ids:
            if score < t:
                return tuple(ids)
            ids.append(id_)
        if page.next is None:
            return tuple(ids)
        cursor = page.next


async def read_backfill(
    storage: Storage,
    stream: StreamQuery,
    size: int,
    max_events: int,
    max_bytes: int,
    now_s: int,
) -> Backfill:
    """The stream's backfill, read from the ids' lists within the answers' bounds."""
    ids = stream.ids
    if ids is None and stream.last:  # the N most recently written ids, no more
        recent = await storage.index_page(stream.namespace, stream.last)
        ids = tuple(id_ for id_, _ in recent.ids)
    elif ids is None:
        since = stream.since.timestamp() if stream.since else 0.0
        start = uid_time(stream.after) if stream.after else since
        ids = await _written_since(storage, stream.namespace, start - AFTER_SLACK_S)
    query = CacheQuery(
        namespace=stream.namespace,
        collection=stream.collection,
        limit=stream.last or size,  # since, after: every entry of an id may match
        ids=ids,
        since=stream.since,
        after=stream.after,
        q=stream.q,
    )
    count = max(size, query.limit) if query.filtered else min(size, query.limit)
    selection = Selection(query, max_events, max_bytes)
    lists = Lists(storage, stream.namespace, stream.collection, count, max_bytes)
    events: list[Backfilled] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = await lists.open(chunk, now_s, 0 if selection.full else selection.room)
        for n, (id_, cached) in enumerate(zip(chunk, found, strict=True)):
            if selection.full:
                selection.truncated |= bool(cached.total)
                continue
            selection.begin(id_)
            async for page in lists.pages(n, lambda: selection.room):
                taken = len(selection.events)
                wanted = selection.add(page)
                events += [_backfilled(id_, p) for p in selection.events[taken:]]
                if not wanted:
                    break
    events.sort(key=lambda e: (e.time, e.uid))
    if stream.last:
        events = events[-stream.last :]
    return Backfill(events, selection.truncated)
