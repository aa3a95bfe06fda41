"""The journey's index: where the entries that carry an event id went.

`events_cache:journey:<bucket>:<shard>` is a Sorted Set per JOURNEY_BUCKET_S window of
time and shard, all scores 0, one member per event id and list written in that window:
`<event id> NUL <namespace> NUL <a|e> NUL <id>` (`e`: the entry went to the id's
errors-only list alone, its all-events list being rate limited). The shard is a hash of
the event id (`journey_shard`, the same in every sidecar), so a window's writes spread
over JOURNEY_SHARDS keys, and so over the slots and nodes of a Cluster, instead of one
hot key, while a look-up still reads one key per window. A batch adds its members with
one ZADD per shard it touches (at most JOURNEY_SHARDS); each sidecar sets a key's
EXPIREAT once (absolute, so every sidecar sets the same), `retention_s` after the window
ends. A look-up is one ZRANGEBYLEX of the prefix `<event id> NUL` per window still kept,
in one pipeline: its cost does not grow with the cache, only with the lists that carry
the id. Every command touches one key (Cluster). The index holds one member per cached
entry that carries an id, at most: it is bounded as the lists are (rate limits, `size`)
and expires with its windows.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection as Members
from dataclasses import dataclass
from typing import Any

from daemon.config.redis import TtlMinutesSettings
from daemon.config.sidecar import JourneySettings
from daemon.core.model import Collection, Namespace
from daemon.store.client import RedisClient, redis_call
from daemon.store.keys import events_key, journey_key
from daemon.store.reads import read_many

JOURNEY_BUCKET_S = 300  # one key per five minutes: at most 289 windows in a day's retention
MAX_JOURNEY_LISTS = 100  # lists one look-up reads (per window, and in all)
# Keys per window: a window's writes spread over this many slots (every master of a
# Cluster of up to 8 takes a share); a batch then costs up to this many ZADDs, not one.
JOURNEY_SHARDS = 8
_SEP = "\0"


def journey_shard(event_id: str) -> int:
    """The shard of an event id: CRC-32 (stable across processes, unlike hash())."""
    return zlib.crc32(event_id.encode()) % JOURNEY_SHARDS


def journey_member(event_id: str, namespace: str, id_: str, error_only: bool) -> str:
    """The index member saying that an entry carrying `event_id` went to a list of `id_`."""
    return f"{event_id}{_SEP}{namespace}{_SEP}{'e' if error_only else 'a'}{_SEP}{id_}"


@dataclass(frozen=True, slots=True)
class Location:
    """A list that holds (or held) an entry carrying the event id."""

    namespace: Namespace
    id: str
    collection: Collection

    @property
    def key(self) -> str:
        """The list's key."""
        return events_key(self.namespace, self.id, self.collection)


def _location(member: bytes | str) -> Location | None:
    text = member.decode("utf-8", "replace") if isinstance(member, bytes) else member
    parts = text.split(_SEP, 3)
    if len(parts) != 4 or parts[1] not in (Namespace.TOKEN, Namespace.DESTINATION):
        return None  # not one of ours
    collection = Collection.ERROR if parts[2] == "e" else Collection.ALL
    return Location(Namespace(parts[1]), parts[3], collection)


class JourneyIndex:
    """Writes and reads the journey's index; `retention_s` is how long after its window
    an event id can be found."""

    def __init__(self, retention_s: int) -> None:
        self.retention_s = retention_s
        self._window = -1  # the newest window this sidecar has given EXPIREATs in
        self._expiring: set[int] = set()  # ... and its shards whose EXPIREAT went

    def add(self, pipe: Any, members: Members[str], now: float) -> tuple[int, list[int]] | None:
        """Queue the batch's members on `pipe`: one ZADD per shard, and a shard key's
        EXPIREAT when this sidecar has not set it yet. Returns the window and those
        shards, for `expiring` once the pipeline has run (a failed one sets them again
        next time), else None."""
        if not members:
            return None
        bucket = int(now // JOURNEY_BUCKET_S)
        shards: dict[int, dict[str, int]] = {}
        for member in members:
            shard = journey_shard(member[: member.index(_SEP)])
            shards.setdefault(shard, {})[member] = 0
        done = self._expiring if bucket == self._window else set()
        expire_at = (bucket + 1) * JOURNEY_BUCKET_S + self.retention_s
        fresh = []
        for shard, scored in shards.items():
            key = journey_key(bucket, shard)
            pipe.zadd(key, scored)
            if shard not in done:
                pipe.expireat(key, expire_at)
                fresh.append(shard)
        return (bucket, fresh) if fresh else None

    def expiring(self, given: tuple[int, list[int]] | None) -> None:
        """The window and shards whose EXPIREAT went to Redis."""
        if given is None:
            return
        bucket, shards = given
        if bucket > self._window:
            self._window, self._expiring = bucket, set()
        if bucket == self._window:
            self._expiring.update(shards)

    async def locations(
        self, client: RedisClient, event_id: str, now: float
    ) -> tuple[list[Location], bool]:
        """The lists entries carrying `event_id` went to, newest window first, each once,
        at most MAX_JOURNEY_LISTS, and whether there were more. A window ahead of `now`
        is read too: another sidecar's clock may be ahead."""
        first = int((now - self.retention_s) // JOURNEY_BUCKET_S)
        last = int(now // JOURNEY_BUCKET_S) + 1
        low, high = f"[{event_id}{_SEP}", f"({event_id}\x01"
        shard = journey_shard(event_id)
        reads = [
            ("ZRANGEBYLEX", journey_key(b, shard), low, high, "LIMIT", 0, MAX_JOURNEY_LISTS + 1)
            for b in range(last, first - 1, -1)
        ]
        async with redis_call():
            replies = await read_many(client, reads)
        found: dict[Location, None] = {}
        for members in replies:
            for member in members:
                location = _location(member)
                if location is not None:
                    found.setdefault(location)
        every = list(found)
        return every[:MAX_JOURNEY_LISTS], len(every) > MAX_JOURNEY_LISTS


def journey_index(settings: JourneySettings, ttl: TtlMinutesSettings) -> JourneyIndex | None:
    """The journey's index, kept `retention_minutes` (or the lists' TTL, if shorter);
    None when no `event_id_from` rule is configured."""
    minutes = settings.retention_minutes
    if ttl.events_cache:
        minutes = min(minutes, ttl.events_cache)
    return JourneyIndex(minutes * 60) if settings.event_id_from else None
