"""The live tail's switch: whether the writers publish what they write.

A sidecar with an open live-tail stream keeps `events_cache:tail:watchers` alive in
Redis (a key with a short TTL). Every sidecar checks it once a second; while it exists,
its writers add one PUBLISH of the batch to the pipeline they send anyway. While nobody
watches, the write path does not change at all: same commands per batch, nothing
encoded for the tail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import orjson

from daemon.core.model import Namespace, RedisOperation
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth
from daemon.store.storage import Storage

CHECK_INTERVAL_S = 1.0  # how often a sidecar looks whether anyone watches
WATCH_TTL_S = 5.0  # the watchers key outlives a few missed refreshes, no more
SETTLE_SLACK_S = 0.5


class TailSwitch:
    """`on` while any sidecar sharing the Redis has a live-tail stream open."""

    def __init__(
        self,
        storage: Storage,
        health: RedisHealth,
        local_streams: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._health = health
        self._local_streams = local_streams
        self._clock = clock
        self.on = False
        self._on_since = 0.0  # when this sidecar last saw the switch turn on

    async def check_once(self) -> None:
        """Announce this sidecar's streams, or look whether another one has some."""
        try:
            if self._local_streams():
                await self.announce()
            else:
                self._turn(await self._storage.watched())
        except StoreUnavailable as e:
            self._health.failed(e, RedisOperation.TAIL)

    async def announce(self) -> None:
        """A stream is open here: tell every sidecar, now (not at the next check)."""
        await self._storage.watch(WATCH_TTL_S)
        self._turn(True)

    def _turn(self, on: bool) -> None:
        if on and not self.on:
            self._on_since = self._clock()
        self.on = on

    def settle_s(self) -> float:
        """How long until every sidecar sharing the Redis publishes, as far as this one
        knows: each looks once per CHECK_INTERVAL_S (and SETTLE_SLACK_S for a loop that
        runs late, or a batch already on its way to Redis unpublished)."""
        if not self.on:
            return CHECK_INTERVAL_S + SETTLE_SLACK_S
        return max(0.0, self._on_since + CHECK_INTERVAL_S + SETTLE_SLACK_S - self._clock())


def tail_message(
    per_id: Mapping[tuple[Namespace, str], tuple[list[bytes], list[bytes]]],
) -> bytes:
    """One batch as published: [[namespace, id, [all entries], [error entries]], ...],
    each entry the JSON object it is stored as, embedded without being re-encoded."""
    fragment = orjson.Fragment
    return orjson.dumps(
        [
            [namespace, id_, [fragment(v) for v in all_], [fragment(v) for v in errors]]
            for (namespace, id_), (all_, errors) in per_id.items()
        ]
    )
