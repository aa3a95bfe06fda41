"""Reading error signatures (`daemon.store.errors` has the layout): the minutes asked
for, in at most three pipelines whatever the number of errors counted.

1. each minute's counts (ZRANGE WITHSCORES of at most MAX_SIGNATURES members);
2. with `ids`, each signature's counts for those ids in each minute (ZMSCORE);
3. for the `top` most frequent: first and last time (ZSCORE) and the most frequent ids
   (ZREVRANGE, unless `ids`) of each minute they were counted in, and the text and
   example of the newest (HGET).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from daemon.store.client import RedisClient, redis_call
from daemon.store.keys import errors_key


@dataclass(slots=True)
class Found:
    """One signature over the minutes read: what `/api/v1/errors` answers of it."""

    hash: str
    count: int = 0
    minutes: dict[int, int] = field(default_factory=dict)  # minute -> errors counted
    ids: dict[str, int] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None
    signature: str = ""
    example: Any = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _counts(client: RedisClient, namespace: str, minutes: Sequence[int]) -> dict[str, Found]:
    pipe = client.pipeline(transaction=False)
    for minute in minutes:
        pipe.zrange(errors_key(namespace, minute), 0, -1, withscores=True)
    async with redis_call():
        replies = await pipe.execute()
    found: dict[str, Found] = {}
    for minute, members in zip(minutes, replies, strict=True):
        for member, score in members:
            h = _text(member)
            if int(score) > 0:
                sig = found.get(h) or found.setdefault(h, Found(h))
                sig.minutes[minute] = int(score)
                sig.count += int(score)
    return found


async def _for_ids(
    client: RedisClient, namespace: str, found: dict[str, Found], ids: Sequence[str]
) -> None:
    """Replace each signature's counts by those of `ids` alone (ZMSCORE)."""
    where = [(sig, minute) for sig in found.values() for minute in sig.minutes]
    pipe = client.pipeline(transaction=False)
    for sig, minute in where:
        pipe.zmscore(errors_key(namespace, minute, f"ids:{sig.hash}"), list(ids))
    async with redis_call():
        replies = await pipe.execute()
    for sig in found.values():
        sig.minutes, sig.count = {}, 0
    for (sig, minute), scores in zip(where, replies, strict=True):
        counted = {id_: int(n) for id_, n in zip(ids, scores, strict=True) if n and n > 0}
        if counted:
            sig.minutes[minute] = sum(counted.values())
            sig.count += sig.minutes[minute]
            for id_, n in counted.items():
                sig.ids[id_] = sig.ids.get(id_, 0) + n


async def _details(
    client: RedisClient, namespace: str, top: list[Found], per_id: int, ids_given: bool
) -> None:
    """First and last seen, ids (unless given) and the newest example of each of `top`."""
    pipe = client.pipeline(transaction=False)
    for sig in top:
        for minute in sig.minutes:
            counts = errors_key(namespace, minute)
            pipe.zscore(f"{counts}:first", sig.hash)
            pipe.zscore(f"{counts}:last", sig.hash)
            if not ids_given:
                ids_key = errors_key(namespace, minute, f"ids:{sig.hash}")
                pipe.zrevrange(ids_key, 0, per_id, withscores=True)  # one more: is it cut?
        pipe.hget(errors_key(namespace, max(sig.minutes), "sigs"), sig.hash)
    async with redis_call():
        replies = iter(await pipe.execute())
    for sig in top:
        firsts, lasts = [], []
        for minute in sig.minutes:
            first, last = next(replies), next(replies)
            firsts.append(minute * 60.0 if first is None else float(first))
            lasts.append(minute * 60.0 + 59.999 if last is None else float(last))
            if not ids_given:
                for member, score in next(replies):
                    id_ = _text(member)
                    sig.ids[id_] = sig.ids.get(id_, 0) + int(score)
        sig.first, sig.last = min(firsts), max(lasts)
        doc = next(replies)
        parsed = orjson.loads(doc) if doc else {}
        sig.signature = str(parsed.get("signature") or "")
        sig.example = parsed.get("example")


async def read_signatures(
    client: RedisClient,
    namespace: str,
    minutes: Sequence[int],
    ids: Sequence[str] | None,
    top: int,
    per_id: int,
) -> tuple[list[Found], int]:
    """The `top` most frequent signatures of the minutes (of `ids` alone, if given), most
    frequent first, each with its most frequent ids (`per_id` + 1 per minute read: more
    than `per_id` in all says that some were left out); and how many signatures there
    were in all."""
    if ids is not None and not ids:
        return [], 0  # `ids=` given empty: no id, no errors
    found = await _counts(client, namespace, minutes)
    if ids is not None and found:
        await _for_ids(client, namespace, found, ids)
    ranked = sorted(
        (sig for sig in found.values() if sig.count > 0), key=lambda s: (-s.count, s.hash)
    )
    chosen = ranked[:top]
    if chosen:
        await _details(client, namespace, chosen, per_id, ids is not None)
    return chosen, len(ranked)
