"""The live tail on one sidecar: one subscription to Redis, fanned out to its streams.

The subscription exists only while a stream is open. Each published batch is decoded
once; each entry is framed once (`Framing`: Server-Sent Events, `daemon.web.sse`) for
every collection some stream watches, and the same bytes go to every matching stream
(`daemon.pipeline.tailreader`, bounded per stream), found by what it watches.

Sinks (the long polls of GET /api/v1/events/wait) ride on the same subscription: each
gets the parsed entries it watches, and keeps what it needs of them itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson
import structlog

from daemon.core.model import RedisOperation
from daemon.pipeline.tailreader import Framing, Stream, TailFilter
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth

RETRY_S = 1.0

log = structlog.get_logger(__name__)

Subscribe = Callable[[], AsyncIterator[bytes]]
Offers = dict[int, tuple[list[Stream], list[bytes]]]  # by route: its streams, their frames


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
        # Streams by what they watch, so that an entry meets only its own: those of its
        # (namespace, collection) watching every id, and those naming its id.
        self._every_id: dict[tuple[str, str], list[Stream]] = {}
        self._some_ids: dict[tuple[str, str, str], list[Stream]] = {}
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
        for key, routes in self._routes(tail_filter):
            routes.setdefault(key, []).append(stream)
        self._active.set()
        return stream

    def _routes(self, f: TailFilter) -> list[tuple[tuple[str, ...], dict[Any, list[Stream]]]]:
        """Where a stream of filter `f` is found by dispatch."""
        if f.ids is None:
            return [((f.namespace, f.collection), self._every_id)]
        return [((f.namespace, id_, f.collection), self._some_ids) for id_ in f.ids]

    def close(self, stream: Stream) -> None:
        """Forget a stream (its reader went away)."""
        if stream in self._streams:
            for key, routes in self._routes(stream.filter):
                routes[key].remove(stream)
                if not routes[key]:
                    del routes[key]
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
        """Hand one published batch to the streams that watch its entries: each entry
        framed once, and each stream offered the batch's frames for it in one call."""
        sinks_of, sinks_of_all = self._sinks_of, self._sinks_of_all
        offers: Offers = {}
        for namespace, id_, all_entries, error_entries in orjson.loads(message):
            sinks = sinks_of.get((namespace, id_), ()), sinks_of_all.get(namespace, ())
            for collection, entries in (("all", all_entries), ("error", error_entries)):
                if not entries:
                    continue
                self._frame(offers, namespace, id_, collection, entries)
                for group in sinks:
                    for sink in group:
                        if sink.filter.collection == collection:
                            sink.take(namespace, id_, collection, entries)
        for streams, frames in offers.values():
            size = sum(map(len, frames))
            for stream in streams:
                stream.offer(frames, size)

    def _frame(
        self, offers: Offers, namespace: str, id_: str, collection: str, entries: list[Any]
    ) -> None:
        """Frame an id's entries once, for the routes that watch them: added to `offers`,
        per route (a list of streams that get the same frames)."""
        frames: list[bytes] | None = None
        for route in (
            self._every_id.get((namespace, collection)),
            self._some_ids.get((namespace, id_, collection)),
        ):
            if route:
                if frames is None:
                    frame_of = self._framing.entry
                    frames = [frame_of(namespace, id_, collection, e) for e in entries]
                if (offer := offers.get(id(route))) is None:
                    offers[id(route)] = (route, list(frames))
                else:
                    offer[1].extend(frames)
