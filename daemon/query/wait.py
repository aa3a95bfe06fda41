"""The long poll (GET /api/v1/events/wait): until `count` cached events match, from
any pod, without polling Redis per waiter.

A wait rides on the live tail each pod already has (`daemon.pipeline.tailhub`: one
subscription per pod, fanned out; `TailSwitch`: every pod publishes while one watches):

1. It attaches to the hub as a sink and announces the switch, so every pod publishes
   from now on; what is published to it and matches is taken as it comes.
2. Once the subscription is confirmed and every pod publishes (`TailSwitch.settle_s`:
   up to a second and a half after a pod gains its first watcher), the lists are read
   once, as the live tail's backfill reads them (`daemon.query.backfill`): the matching
   events cached since the wait began (or since `since`) that were written before the
   other pods published are not missed. Duplicates of live entries go by uid.
3. Then it waits for what is published until `count` matched, the timeout, the client
   leaving, or the hub stopping (shutdown: it answers what it has).

"Cached after the wait began" is, for the read, an entry whose uid is after a uid made
as it began (pods' clocks are taken to agree); everything published after the
subscription was confirmed was cached after it began.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from daemon.core.entry import CAPTURE, answered
from daemon.core.eventid import EventIdFinder
from daemon.core.stamp import new_uid
from daemon.pipeline.tailhub import TailHub
from daemon.pipeline.tailreader import TailFilter
from daemon.pipeline.tailswitch import TailSwitch
from daemon.query.backfill import Backfilled
from daemon.query.params import StreamQuery
from daemon.query.selection import contains, entry_time
from daemon.query.service import QueryService
from daemon.query.waitquery import WaitQuery

GONE_CHECK_S = 0.25  # how often a wait looks whether its client left
SUBSCRIBE_WAIT_S = 5.0  # the subscription not confirmed by then: Redis is not answering
SUBSCRIBE_STEP_S = 0.01
_PLAIN = re.compile(r"[^\"\\\x00-\x1f]+")  # stored as is in JSON text: a `q` prefilter
REMEMBERED_IDS = 4096  # entries' event ids kept for the other waits of the same batch


class SharedFinder:
    """Event ids of published entries, found once for all the waits that look (each
    would otherwise parse the same original), remembered by uid, boundedly."""

    def __init__(self, finder: EventIdFinder) -> None:
        self.finder = finder
        self._found: dict[str, str | None] = {}

    def of_entry(self, entry: dict[str, Any]) -> str | None:
        """The entry's event id (`EventIdFinder.find_in_entry`)."""
        uid = entry.get("uid")
        if not isinstance(uid, str):
            return self.finder.find_in_entry(entry)
        if uid not in self._found:
            if len(self._found) >= REMEMBERED_IDS:
                self._found.clear()
            self._found[uid] = self.finder.find_in_entry(entry)
        return self._found[uid]


class Waiter:
    """One open wait: a sink of the hub that keeps the first `count` matching events."""

    def __init__(self, query: WaitQuery, finder: SharedFinder, max_bytes: int) -> None:
        watched = frozenset(query.ids) if query.ids is not None else None
        self._filter = TailFilter(query.namespace, watched, query.collection)
        self.query = query
        self._finder = finder
        self._max_bytes = max_bytes
        self.began = new_uid()  # "cached after the wait began": after this uid
        self._since = query.since.timestamp() if query.since else None
        self._seen: set[str] = set()
        self.events: list[tuple[str, bytes]] = []  # (uid, answer item), at most `count`
        self.matches = 0
        self._size = 2  # of the `events` array
        self.truncated = False  # max_response_bytes left some out
        self.problem = ""  # the subscription broke
        self.closed = False  # the hub stopped
        self.wake = asyncio.Event()

    @property
    def filter(self) -> TailFilter:
        """What the hub hands it."""
        return self._filter

    @property
    def matched(self) -> bool:
        """Whether `count` events matched."""
        return self.matches >= self.query.count

    @property
    def over(self) -> bool:
        """Nothing more to wait for: matched, or the hub broke or stopped."""
        return self.matched or self.closed or bool(self.problem)

    def take(self, namespace: str, id_: str, collection: str, entries: list[Any]) -> None:
        """Published entries of a watched id's collection (stored form, parsed)."""
        for entry in entries:
            if self.matched:
                return
            if isinstance(entry, dict) and self._live_match(entry):
                event = orjson.dumps(answered(entry, trusted=True))
                self._add(str(entry.get("uid", "")), namespace, id_, collection, event)

    def _live_match(self, entry: dict[str, Any]) -> bool:
        query = self.query
        if self._since is not None and (entry_time(entry) or 0.0) < self._since:
            return False
        if query.q and not contains(entry, query.q):
            return False
        if query.capture and entry.get(CAPTURE) != query.capture:
            return False
        return not query.event_id or self._finder.of_entry(entry) == query.event_id

    def take_read(self, events: list[Backfilled]) -> None:
        """Events the lists' read found (answered form; `since` and `q` already applied)."""
        query = self.query
        for e in events:
            if self.matched:
                return
            if (query.event_id or query.capture) and not self._read_match(e.event):
                continue
            self._add(e.uid, query.namespace, e.id, query.collection, e.event)

    def _read_match(self, event: bytes) -> bool:
        doc = orjson.loads(event)
        if self.query.capture and doc.get(CAPTURE) != self.query.capture:
            return False
        if not self.query.event_id:
            return True
        success = doc.get("success")
        text = success if isinstance(success, str) or success is None else orjson.dumps(success)
        if isinstance(text, bytes):
            text = text.decode()
        return self._finder.finder.find(doc.get("original"), text) == self.query.event_id

    def _add(self, uid: str, namespace: str, id_: str, collection: str, event: bytes) -> None:
        if uid in self._seen:
            return  # read and published both: once
        self._seen.add(uid)
        self.matches += 1
        item = orjson.dumps(
            {
                "namespace": namespace,
                "id": id_,
                "collection": collection,
                "event": orjson.Fragment(event),
            }
        )
        if self._size + len(item) + 1 > self._max_bytes:
            self.truncated = True
        else:
            self.events.append((uid, item))
            self._size += len(item) + 1
        if self.matched:
            self.wake.set()

    def lost(self, reason: str) -> None:
        """The subscription broke: events may have been missed; the wait ends (503)."""
        self.problem = reason
        self.wake.set()

    def close(self) -> None:
        """Shutdown: answer what matched so far."""
        self.closed = True
        self.wake.set()

    def body(self) -> bytes:
        """The answer: `{"matched", "events"}`, events oldest first (by uid)."""
        items = b",".join(item for _, item in sorted(self.events))
        return b'{"matched":%s,"events":[%s]}' % (b"true" if self.matched else b"false", items)


@dataclass(frozen=True, slots=True)
class WaitParts:
    """What waits need of the pod: its live tail, its reads, how event ids are found."""

    hub: TailHub
    switch: TailSwitch
    reads: QueryService
    finder: EventIdFinder
    max_waits: int
    max_bytes: int


class Waits:
    """The open waits of this pod, at most `max_waits`."""

    def __init__(self, parts: WaitParts, clock: Callable[[], float] = time.monotonic) -> None:
        self._parts = parts
        self._clock = clock
        self._open: set[Waiter] = set()
        self._finder = SharedFinder(parts.finder)
        self.max_waits = parts.max_waits

    @property
    def count(self) -> int:
        """Open waits (the `events_cache_waits` gauge)."""
        return len(self._open)

    @property
    def rules_on(self) -> bool:
        """Whether event ids can be found (`sidecar.journey.event_id_from` is set)."""
        return self._parts.finder.on

    def open(self, query: WaitQuery) -> Waiter | None:
        """A new wait fed by the hub; None when `max_waits` are open or the hub stopped."""
        if len(self._open) >= self.max_waits:
            return None
        waiter = Waiter(query, self._finder, self._parts.max_bytes)
        if not self._parts.hub.attach(waiter):
            return None
        self._open.add(waiter)
        return waiter

    def close(self, waiter: Waiter) -> None:
        """The wait is over (answered, or its client left): its slot is free."""
        self._open.discard(waiter)
        self._parts.hub.detach(waiter)

    async def run(self, waiter: Waiter, gone: Callable[[], bool]) -> None:
        """Wait as the module's docstring says; StoreUnavailable when Redis fails."""
        deadline = self._clock() + waiter.query.timeout_s
        switch = self._parts.switch
        await switch.announce()  # every pod publishes within settle_s from now
        await self._until(waiter, min(switch.settle_s(), self._left(deadline)), gone)
        if waiter.over or gone():
            return
        if not await self._subscribed(waiter, gone):
            if not (waiter.over or gone()):
                waiter.lost("the subscription to Redis was not confirmed")
            return
        waiter.take_read(await self._read(waiter))
        await self._until(waiter, self._left(deadline), gone)

    def _left(self, deadline: float) -> float:
        return max(0.0, deadline - self._clock())

    async def _until(self, waiter: Waiter, seconds: float, gone: Callable[[], bool]) -> None:
        """Until the wait is over, its client gone, or `seconds` passed."""
        end = self._clock() + seconds
        loop = asyncio.get_running_loop()
        while not waiter.over and not gone():
            left = end - self._clock()
            if left <= 0:
                return
            # `wake` only nudges a look at the state above: a timer sets it too.
            waiter.wake.clear()
            nudge = loop.call_later(min(left, GONE_CHECK_S), waiter.wake.set)
            try:
                await waiter.wake.wait()
            finally:
                nudge.cancel()

    async def _subscribed(self, waiter: Waiter, gone: Callable[[], bool]) -> bool:
        """Whether the hub's subscription is confirmed (at once, but for the first
        watcher of the pod, a few ms after it attached)."""
        subscribed = self._parts.hub.subscribed
        end = self._clock() + SUBSCRIBE_WAIT_S
        while not subscribed.is_set():
            if waiter.over or gone() or self._clock() > end:
                return False
            await asyncio.sleep(SUBSCRIBE_STEP_S)
        return True

    async def _read(self, waiter: Waiter) -> list[Backfilled]:
        """The lists, read once: what matched before every pod published."""
        query = waiter.query
        event_id = query.event_id
        q = query.q or (event_id.lower() if event_id and _PLAIN.fullmatch(event_id) else "")
        if not q and query.capture and _PLAIN.fullmatch(query.capture):
            q = query.capture.lower()  # only entries holding the tag's text can carry it
        stream = StreamQuery(
            namespace=query.namespace,
            collection=query.collection,
            ids=query.ids,
            since=query.since,
            after="" if query.since else waiter.began,
            q=q,
        )
        return (await self._parts.reads.backfill(stream)).events
