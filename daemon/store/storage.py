"""The sidecar's Redis operations, typed, on one shared client.

Every command here touches exactly one key, so the same code runs on a standalone
server, behind Sentinel, or on a Redis Cluster (redis-py's cluster pipeline refuses
multi-key commands even when the keys share a slot).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster

from daemon.core.model import Collection, Namespace
from daemon.store.activity import ActivityStore
from daemon.store.client import RedisClient, call_timeout, database_of, redis_call, unavailable
from daemon.store.erase import erase_ids, erase_namespace
from daemon.store.errors import RETENTION_S, ErrorStore
from daemon.store.index import Cursor, IndexPage, index_page
from daemon.store.journey import JourneyIndex, Location
from daemon.store.keys import (
    LIMITED_KEY_TTL_S,
    TAIL_WATCHERS_KEY,
    events_key,
    index_key,
    limited_key,
    tail_channel,
)
from daemon.store.packed import write_pipeline
from daemon.store.reads import read_many
from daemon.store.tailchannel import tail_messages
from daemon.store.uncapture import erase_captured

ID_SCORE_STEP_S = 1e-6  # index scores of one batch's ids, apart
# Lists per trim pipeline, with their EXPIREs under 1,000 commands: redis-py (on Cluster)
# packs more in a worker thread, whose hand-off costs the loop more than the packing.
TRIM_LISTS_PER_PIPELINE = 400


@dataclass(frozen=True, slots=True)
class IdEvents:
    """What the query needs of one id: list length, newest entries, limited counts."""

    total: int
    entries: list[bytes]
    limited_slots: dict[int, int]


@dataclass(frozen=True, slots=True)
class IdSummary:
    """What the summary needs of one id: its counts, newest error, limited counts."""

    total: int
    errors: int
    newest_error: bytes | None
    limited_slots: dict[int, int]


def _slots(*minutes: dict[bytes, bytes]) -> dict[int, int]:
    """Per-second limited counts of the minute hashes, summed."""
    slots: dict[int, int] = {}
    for fields in minutes:
        for second, count in fields.items():
            slots[int(second)] = slots.get(int(second), 0) + int(count)
    return slots


class Storage:
    """The sidecar's Redis operations; one client shared by writers, trimmer and queries."""

    def __init__(
        self, client: RedisClient, size: int, ttl_s: int, journey: JourneyIndex | None = None
    ) -> None:
        self.client = client
        self.journey = journey  # None: no journey index is written
        self.activity = ActivityStore(client)  # per id and minute, every sidecar's counts
        self.size = size
        self.tail_channel = tail_channel(database_of(client))
        self.ttl_s = ttl_s
        self.errors = ErrorStore(client, min(RETENTION_S, ttl_s or RETENTION_S))  # signatures
        self._expiring: set[str] = set()  # limited-count keys this sidecar gave a TTL
        self._expiring_minute = 0

    async def ping(self) -> None:
        """Raise when Redis does not answer."""
        async with redis_call():
            await self.client.ping()

    async def write(
        self,
        lists: Mapping[str, Sequence[bytes]],
        ids: Mapping[str, Sequence[str]],
        now: float,
        tail: bytes | None = None,
        size: int = 0,
        journey: Iterable[str] = (),
    ) -> set[str]:
        """One round trip (packed by us but on Cluster): one multi-value LPUSH per list,
        one ZADD per namespace index, the journey index's members (`daemon.store.journey`),
        and, while someone watches the live tail, one PUBLISH of the batch. `size` (the
        values' bytes) lengthens its time limit, so a large batch is not taken for a Redis
        that is down. Returns the lists the trim pass must see: those LPUSH left longer
        than `size`, or all when their TTL is to be refreshed.

        LPUSH leaves a list's last value (in ingest order) first. A batch's ids get index
        scores a microsecond apart: the id index pages without large groups of equal ones.
        """
        cluster = isinstance(self.client, RedisCluster)
        pipe = write_pipeline(self.client)
        for key, values in lists.items():
            pipe.lpush(key, *values)
        for namespace, namespace_ids in ids.items():
            scores = {id_: now + n * ID_SCORE_STEP_S for n, id_ in enumerate(namespace_ids)}
            pipe.zadd(index_key(namespace), scores)
        members = set(journey)
        window = self.journey.add(pipe, members, now) if self.journey and members else None
        if tail is not None and not cluster:
            pipe.publish(self.tail_channel, tail)
        async with redis_call(call_timeout(size + (len(tail) if tail else 0))):
            lengths = await pipe.execute()
            if self.journey is not None:
                self.journey.expiring(window)
            if tail is not None and cluster:  # a cluster pipeline refuses PUBLISH
                await self.client.publish(self.tail_channel, tail)
        if self.ttl_s:
            return set(lists)
        return {key for key, n in zip(lists, lengths, strict=False) if int(n) > self.size}

    async def trim(self, keys: Iterable[str], now: float) -> None:
        """Cut each list to `size`, refresh its TTL, and prune the id index; in pipelines
        of TRIM_LISTS_PER_PIPELINE lists, one after the other."""
        keep = self.size - 1
        pipe = write_pipeline(self.client)
        if self.ttl_s:
            for namespace in Namespace:
                pipe.zremrangebyscore(index_key(namespace), "-inf", now - self.ttl_s)
        in_pipe = 0
        for key in keys:
            pipe.ltrim(key, 0, keep)
            if self.ttl_s:
                pipe.expire(key, self.ttl_s)
            in_pipe += 1
            if in_pipe == TRIM_LISTS_PER_PIPELINE:
                async with redis_call():
                    await pipe.execute()  # execute() empties the pipeline for reuse
                in_pipe = 0
        if len(pipe):
            async with redis_call():
                await pipe.execute()

    async def add_limited(self, counts: Mapping[tuple[Any, int], int]) -> None:
        """Add this sidecar's limited counts ((namespace, id, collection), second) -> n."""
        pipe = write_pipeline(self.client)
        new_keys: set[str] = set()
        for ((namespace, id_, collection), second), count in counts.items():
            key = limited_key(namespace, id_, collection, second // 60)
            pipe.hincrby(key, str(second), count)
            if key not in self._expiring:
                new_keys.add(key)
        # One EXPIRE per minute key and sidecar: set on the first write of the minute, it
        # outlives the two minutes the key is read in, so later writes need not renew it.
        for key in new_keys:
            pipe.expire(key, LIMITED_KEY_TTL_S)
        async with redis_call():
            await pipe.execute()
        minute = max((second // 60 for (_, second) in counts), default=0)
        if minute != self._expiring_minute:
            self._expiring = {k for k in self._expiring if k.endswith(f":{minute}")}
            self._expiring_minute = minute
        self._expiring |= new_keys

    async def read(
        self,
        namespace: str,
        ids: Sequence[str],
        collection: Collection,
        heads: Sequence[int],
        now_s: int,
    ) -> list[IdEvents]:
        """Length, limited counts and the newest `heads[n]` entries (none for 0) of each
        id, in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        minute = now_s // 60
        for id_, head in zip(ids, heads, strict=True):
            key = events_key(namespace, id_, collection)
            pipe.llen(key)
            if head:
                pipe.lrange(key, 0, head - 1)
            pipe.hgetall(limited_key(namespace, id_, collection, minute))
            pipe.hgetall(limited_key(namespace, id_, collection, minute - 1))
        async with redis_call():
            replies = iter(await pipe.execute())
        out = []
        for head in heads:
            total = int(next(replies))
            entries = list(next(replies)) if head else []
            out.append(IdEvents(total, entries, _slots(next(replies), next(replies))))
        return out

    async def ranges(
        self, namespace: str, collection: Collection, wanted: Sequence[tuple[str, int, int]]
    ) -> list[list[bytes]]:
        """Entries `start` to `stop` (inclusive, newest first) of each (id, start, stop),
        in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for id_, start, stop in wanted:
            pipe.lrange(events_key(namespace, id_, collection), start, stop)
        async with redis_call():
            return [list(reply) for reply in await pipe.execute()]

    async def summaries(self, namespace: str, ids: Sequence[str], now_s: int) -> list[IdSummary]:
        """Counts, newest error and limited counts of each id, in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        minute = now_s // 60
        for id_ in ids:
            error_key = events_key(namespace, id_, Collection.ERROR)
            pipe.llen(events_key(namespace, id_))
            pipe.llen(error_key)
            pipe.lindex(error_key, 0)
            pipe.hgetall(limited_key(namespace, id_, Collection.ALL, minute))
            pipe.hgetall(limited_key(namespace, id_, Collection.ALL, minute - 1))
        async with redis_call():
            replies = iter(await pipe.execute())
        return [
            IdSummary(
                int(next(replies)),
                int(next(replies)),
                next(replies),
                _slots(next(replies), next(replies)),
            )
            for _ in ids
        ]

    async def journey_lists(
        self, event_id: str, now: float
    ) -> tuple[list[tuple[Location, list[bytes]]], bool]:
        """The lists the journey index says hold entries carrying `event_id` (at most
        MAX_JOURNEY_LISTS), each with its entries (newest first, at most `size`), in one
        pipeline after the index's; and whether the index named more lists."""
        if self.journey is None:
            return [], False
        locations, more = await self.journey.locations(self.client, event_id, now)
        if not locations:
            return [], more
        reads = [("LRANGE", location.key, 0, self.size - 1) for location in locations]
        async with redis_call():
            replies = await read_many(self.client, reads)
        found = [(loc, list(reply)) for loc, reply in zip(locations, replies, strict=True)]
        return found, more

    async def watched(self) -> bool:
        """Whether a live-tail stream is open on any sidecar sharing this Redis."""
        async with redis_call():
            return bool(await self.client.exists(TAIL_WATCHERS_KEY))

    async def watch(self, ttl_s: float) -> None:
        """Tell every sidecar that a stream is open here, for the next `ttl_s` seconds."""
        async with redis_call():
            await self.client.set(TAIL_WATCHERS_KEY, b"1", px=int(ttl_s * 1000))

    async def ids(self, namespace: str) -> list[str]:
        """Ids of the namespace that sidecars have written, most recently written first."""
        async with redis_call():
            members = await self.client.zrevrange(index_key(namespace), 0, -1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def index_page(
        self, namespace: str, limit: int, after: Cursor | None = None, q: str = ""
    ) -> IndexPage:
        """A page of the id index, most recently written first (`daemon.store.index`)."""
        return await index_page(self.client, namespace, limit, after, q)

    async def erase_ids(self, namespace: str, ids: Sequence[str], now_s: int) -> int:
        """Forget `ids`: their lists, index entries, limited counts and error signatures'
        counts and examples; how many had any lists or index entries."""
        await self.errors.forget(namespace, ids, now_s)
        return await erase_ids(self.client, namespace, ids, now_s)

    async def erase_captured(self, namespace: str, ids: Sequence[str], tag: str) -> int:
        """Remove the entries carrying capture `tag` from the lists of `ids`; how many."""
        return await erase_captured(self.client, namespace, ids, tag, self.size)

    async def erase_namespace(self, namespace: str, now_s: int) -> int:
        """Forget every id of the namespace (its error signatures too); how many had
        anything."""
        await self.errors.forget(namespace, None, now_s)
        return await erase_namespace(self.client, namespace, now_s)

    def tail_messages(self) -> AsyncIterator[bytes]:
        """The batches every sidecar publishes while someone tails (`daemon.store.tailchannel`)."""
        return tail_messages(self.client)

    async def aclose(self) -> None:
        """Close the connection pool."""
        try:
            await self.client.aclose()
        except Exception as e:
            raise unavailable(e) from e
