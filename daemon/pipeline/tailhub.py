"""The live tail on one sidecar: one subscription to Redis, fanned out to its streams.

The subscription exists only while a stream is open. Each published batch is decoded
once; each entry is framed once (`Framing`: Server-Sent Events, `daemon.web.sse`) for
every collection some stream watches, and the same bytes go to every matching stream.
A stream buffers at most MAX_PENDING_BYTES for a slow reader; beyond that, frames are
counted as missed and the reader is told (`event: gap`), so memory stays bounded per
stream.

Sinks (the long polls of GET /api/v1/events/wait) ride on the same subscription: each
gets the parsed entries it watches, and keeps what it needs of them itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import structlog

from daemon.core.model import RedisOperation
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth

MAX_PENDING_BYTES = 1 << 20  # per stream
RETRY_S = 1.0

log = structlog.get_logger(__name__)

Subscribe = Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True, slots=True)
class TailFilter:
    """What a stream watches: a namespace, some ids (None: all) and one collection."""

    namespace: str
    ids: frozenset[str] | None
    collection: str  # "all", or "error" for the errors-only lists

    def matches(self, namespace: str, id_: str, collection: str) -> bool:
        """Whether an entry of this id's collection belongs to the stream."""
        return (
            collection == self.collection
            and namespace == self.namespace
            and (self.ids is None or id_ in self.ids)
        )


class Framing(Protocol):
    """How entries and gaps are framed for the readers (Server-Sent Events: `daemon.web.sse`):
    each entry is framed once, and the same bytes offered to every stream that watches it."""

    def entry(self, namespace: str, id_: str, collection: str, entry: dict[str, Any]) -> bytes:
        """One cached entry, as published and parsed."""

    def gap(self, missed: int | None, reason: str) -> bytes:
        """Events the reader did not get (None: unknown how many)."""

    def uid_of(self, frame: bytes) -> bytes | None:
        """The uid of the entry an entry's frame carries (None: another frame)."""


class Sink(Protocol):
    """A watcher that takes parsed entries, not frames (a long poll: `daemon.query.wait`)."""

    @property
    def filter(self) -> TailFilter:
        """What it watches."""

    def take(self, namespace: str, id_: str, collection: str, entries: list[Any]) -> None:
        """Entries of a watched id's collection, as published and parsed."""

    def lost(self, reason: str) -> None:
        """The subscription broke: entries may have been missed."""

    def close(self) -> None:
        """The hub stopped (shutdown)."""


class Stream:
    """One open live-tail stream: frames waiting for its reader, and what it missed."""

    def __init__(self, tail_filter: TailFilter, framing: Framing) -> None:
        self.filter = tail_filter
        self._framing = framing
        self._pending: list[bytes] = []
        self._size = 0
        self._missed = 0
        self._lost = ""  # the subscription broke: the reader missed an unknown number
        self._closed = False
        self._wake = asyncio.Event()
        self._sent: set[bytes] = set()  # uids the backfill sent: their live frames are not

    def skip(self, uids: set[bytes]) -> None:
        """The backfill sent these entries: drop their frames, queued or to come."""
        self._sent = uids
        kept = [f for f in self._pending if not self._was_sent(f)]
        self._size = sum(len(f) for f in kept)
        self._pending = kept

    def _was_sent(self, frame: bytes) -> bool:
        uid = self._framing.uid_of(frame)
        if uid is not None and uid in self._sent:
            self._sent.discard(uid)  # each entry is published once
            return True
        return False

    def offer(self, frame: bytes) -> None:
        """Queue a frame, or count it as missed when the reader is too far behind."""
        if self._sent and self._was_sent(frame):
            return
        if self._size + len(frame) > MAX_PENDING_BYTES:
            self._missed += 1
        else:
            self._pending.append(frame)
            self._size += len(frame)
        self._wake.set()

    def lost(self, reason: str) -> None:
        """The subscription broke: events may have been missed."""
        self._lost = reason
        self._wake.set()

    def close(self) -> None:
        """End the stream (shutdown, or the hub is done with it)."""
        self._closed = True
        self._wake.set()

    async def next_chunk(self) -> bytes | None:
        """What the reader should get next, gap frames included; None when closed."""
        while not (self._pending or self._missed or self._lost or self._closed):
            self._wake.clear()
            await self._wake.wait()
        if self._closed:
            return None
        chunk = b"".join(self._pending)
        if self._missed:
            chunk += self._framing.gap(self._missed, "the reader was too slow")
        if self._lost:
            chunk += self._framing.gap(None, self._lost)
        self._pending, self._size, self._missed, self._lost = [], 0, 0, ""
        return chunk


class TailHub:
    """The streams of this sidecar and the one subscription that feeds them."""

    def __init__(
        self, subscribe: Subscribe, health: RedisHealth, max_streams: int, framing: Framing
    ) -> None:
        self._subscribe = subscribe
        self._health = health
        self._framing = framing
        self.max_streams = max_streams
        self._streams: set[Stream] = set()
        self._sinks: set[Sink] = set()
        # By id, so that a batch's entries meet only the sinks of their ids (and those of
        # every id): a hundred waits on other ids cost an entry one look-up, not a hundred.
        self._sinks_of: dict[tuple[str, str], set[Sink]] = {}
        self._sinks_of_all: dict[str, set[Sink]] = {}  # by namespace: every id watched
        self._active = asyncio.Event()
        self.subscribed = asyncio.Event()  # set while the subscription to Redis is on
        self._stopped = False

    @property
    def count(self) -> int:
        """Open streams."""
        return len(self._streams)

    @property
    def watching(self) -> int:
        """Open streams and sinks: while any, every sidecar publishes (`TailSwitch`)."""
        return len(self._streams) + len(self._sinks)

    def attach(self, sink: Sink) -> bool:
        """Feed `sink` from the subscription; False when the hub stopped (its caller
        bounds how many it attaches)."""
        if self._stopped:
            return False
        self._sinks.add(sink)
        for key in self._keys(sink):
            self._sinks_of.setdefault(key, set()).add(sink)
        if sink.filter.ids is None:
            self._sinks_of_all.setdefault(sink.filter.namespace, set()).add(sink)
        self._active.set()
        return True

    @staticmethod
    def _keys(sink: Sink) -> list[tuple[str, str]]:
        ids = sink.filter.ids
        return [(sink.filter.namespace, id_) for id_ in ids] if ids is not None else []

    def detach(self, sink: Sink) -> None:
        """Forget a sink (its wait is over)."""
        if sink not in self._sinks:
            return
        self._sinks.discard(sink)
        for key in self._keys(sink):
            self._sinks_of[key].discard(sink)
            if not self._sinks_of[key]:
                del self._sinks_of[key]
        if sink.filter.ids is None:
            self._sinks_of_all[sink.filter.namespace].discard(sink)
        if not self.watching:
            self._active.clear()

    def open(self, tail_filter: TailFilter) -> Stream | None:
        """A new stream, or None when `max_streams` are open (or the hub stopped)."""
        if self._stopped or len(self._streams) >= self.max_streams:
            return None
        stream = Stream(tail_filter, self._framing)
        self._streams.add(stream)
        self._active.set()
        return stream

    def close(self, stream: Stream) -> None:
        """Forget a stream (its reader went away)."""
        self._streams.discard(stream)
        stream.close()
        if not self.watching:
            self._active.clear()

    def stop(self) -> None:
        """End every stream and refuse new ones (shutdown)."""
        self._stopped = True
        for stream in list(self._streams):
            self.close(stream)
        for sink in list(self._sinks):
            sink.close()

    async def run(self) -> None:
        """Subscribe while streams are open; fan out what arrives (a supervised loop)."""
        while True:
            await self._active.wait()
            try:
                await self._relay()
            except StoreUnavailable as e:
                self._health.failed(e, RedisOperation.TAIL)
                reason = f"Redis subscription lost: {str(e).partition(':')[0]}"
                for stream in self._streams:
                    stream.lost(reason)
                for sink in list(self._sinks):
                    sink.lost(reason)
                await asyncio.sleep(RETRY_S)

    async def _relay(self) -> None:
        messages = self._subscribe()
        try:
            async for message in messages:
                self.subscribed.set()  # b"" first, once subscribed
                if message:
                    self.dispatch(message)
                if not self.watching:
                    return
        finally:
            self.subscribed.clear()
            await messages.aclose()  # type: ignore[attr-defined]

    def dispatch(self, message: bytes) -> None:
        """Hand one published batch to the streams that watch its entries."""
        streams, sinks_of, sinks_of_all = self._streams, self._sinks_of, self._sinks_of_all
        for namespace, id_, all_entries, error_entries in orjson.loads(message):
            sinks = sinks_of.get((namespace, id_), ()), sinks_of_all.get(namespace, ())
            for collection, entries in (("all", all_entries), ("error", error_entries)):
                if entries:
                    watchers = [s for s in streams if s.filter.matches(namespace, id_, collection)]
                    if watchers:
                        self._offer(watchers, namespace, id_, collection, entries)
                    for group in sinks:
                        for sink in group:
                            if sink.filter.collection == collection:
                                sink.take(namespace, id_, collection, entries)

    def _offer(
        self,
        watchers: list[Stream],
        namespace: str,
        id_: str,
        collection: str,
        entries: Iterable[dict[str, Any]],
    ) -> None:
        frame_of = self._framing.entry
        for entry in entries:
            frame = frame_of(namespace, id_, collection, entry)
            for stream in watchers:
                stream.offer(frame)
