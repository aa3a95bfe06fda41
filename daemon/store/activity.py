"""Activity in Redis: per id and minute, the counts every sidecar added.

`events_cache:activity:<namespace>#<id>:<hour>` is a hash per id and hour, one field per
minute and kind, `<minute of the hour>:<r|c|e|l>` (received, cached, errors, rate
limited), at most 240 fields. Each sidecar adds its counts once a second, one HINCRBY
per cell and kind in one pipeline per chunk of cells. A key expires at a fixed time, an
hour after its hour ends (EXPIREAT, absolute, so every sidecar sets the same): sent for
each key in which a HINCRBY created a field (its reply equals the increment), which
covers a key created anew, also after a reset deleted it, at about one EXPIREAT per key
and minute. A read is one HGETALL per id and hour of the window, in one pipeline. Every
command touches one key (Cluster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from daemon.core.activity import Cell
from daemon.store.client import RedisClient, redis_call
from daemon.store.keys import activity_key, index_key
from daemon.store.packed import write_pipeline

_FIELD_KINDS = "rcel"  # by kind index: received, cached, errors, rate limited
_KIND_OF = {ord(letter): n for n, letter in enumerate(_FIELD_KINDS)}
KEPT_AFTER_HOUR_S = 3600 + 300  # a key is read for an hour after its hour, plus clock skew
MAX_UNEXPIRED = 100_000  # keys waiting for their EXPIREAT while Redis is away
ERASE_HOURS = range(-2, 2)  # the hours whose keys may exist (and the next, a clock ahead)


def expires_at(hour: int) -> int:
    """When the key of `hour` expires (seconds since the epoch)."""
    return (hour + 1) * 3600 + KEPT_AFTER_HOUR_S


def erase_keys(namespace: str, id_: str, now_s: int) -> list[str]:
    """The activity keys of an id that may exist at `now_s`, for a reset."""
    hour = now_s // 3600
    return [activity_key(namespace, id_, hour + offset) for offset in ERASE_HOURS]


class ActivityStore:
    """Adds a sidecar's activity counts, reads every sidecar's."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._unexpired: dict[str, int] = {}  # key -> its EXPIREAT, not yet sent

    async def add(self, cells: Mapping[Cell, Sequence[int]]) -> None:
        """One pipeline: a HINCRBY per cell and kind counted. Keys in which a field was
        created are given their EXPIREAT by `expire_new`."""
        pipe = write_pipeline(self._client)
        sent: list[tuple[str, int, int]] = []  # key, hour, increment of each HINCRBY
        for (namespace, id_, minute), counts in cells.items():
            hour = minute // 60
            key = activity_key(namespace, id_, hour)
            for kind, n in enumerate(counts):
                if n:
                    pipe.hincrby(key, f"{minute % 60}:{_FIELD_KINDS[kind]}", n)
                    sent.append((key, hour, n))
        if not sent:
            return
        async with redis_call():
            replies = await pipe.execute()
        unexpired = self._unexpired
        for (key, hour, n), total in zip(sent, replies, strict=True):
            if int(total) == n and len(unexpired) < MAX_UNEXPIRED:
                unexpired[key] = expires_at(hour)

    async def expire_new(self) -> None:
        """Send the EXPIREATs `add` found wanting, in one pipeline; kept for the next
        call if it fails."""
        if not self._unexpired:
            return
        pending, self._unexpired = self._unexpired, {}
        pipe = write_pipeline(self._client)
        for key, at in pending.items():
            pipe.expireat(key, at)
        try:
            async with redis_call():
                await pipe.execute()
        except BaseException:
            for key, at in pending.items():
                if len(self._unexpired) < MAX_UNEXPIRED:
                    self._unexpired.setdefault(key, at)
            raise

    async def read(
        self, namespace: str, ids: Sequence[str], first_minute: int, minutes: int
    ) -> list[list[list[int]]]:
        """Per id, its four kinds' counts per minute from `first_minute` on (`minutes` of
        them, zeros where nothing was counted), in one pipeline."""
        hours = range(first_minute // 60, (first_minute + minutes - 1) // 60 + 1)
        pipe = self._client.pipeline(transaction=False)
        for id_ in ids:
            for hour in hours:
                pipe.hgetall(activity_key(namespace, id_, hour))
        async with redis_call():
            replies = iter(await pipe.execute())
        out = []
        for _ in ids:
            counts = [[0] * minutes for _ in _FIELD_KINDS]
            for hour in hours:
                _fill(counts, next(replies), hour * 60 - first_minute)
            out.append(counts)
        return out

    async def recent_ids(self, namespace: str, limit: int, since_s: float) -> list[str]:
        """The `limit` ids of the id index written most recently, those since `since_s`."""
        async with redis_call():
            members: list[tuple[bytes, float]] = await self._client.zrevrange(  # type: ignore[assignment]
                index_key(namespace), 0, limit - 1, withscores=True
            )
        return [
            m.decode() if isinstance(m, bytes) else str(m)
            for m, score in members
            if float(score) >= since_s
        ]


def _fill(counts: list[list[int]], fields: Mapping[bytes, bytes], offset: int) -> None:
    """Add an hour's fields to `counts`; `offset` is the hour's first minute in it."""
    minutes = len(counts[0])
    for field, value in fields.items():
        minute_text, _, kind_text = field.partition(b":")
        kind = _KIND_OF.get(kind_text[0]) if len(kind_text) == 1 else None
        if kind is None or not minute_text.isdigit():
            continue  # not one of ours
        at = offset + int(minute_text)
        if 0 <= at < minutes:
            counts[kind][at] += int(value)
