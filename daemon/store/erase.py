"""Forgetting ids: their lists, their place in the id index, their limited counts and
their activity counts.

For erasure requests and test runs. Every command touches one key (Cluster works). A
whole namespace is erased id by id from the index, then by SCAN for lists that the index
does not know (written by a Jitsu Classic server sharing the Redis).
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.core.model import Collection
from daemon.store.activity import erase_keys as activity_keys
from daemon.store.client import RedisClient, redis_call
from daemon.store.keys import KEY_PREFIX, LIMITED_KEY_TTL_S, events_key, index_key, limited_key

CHUNK = 200  # ids per pipeline
SCAN_TIMEOUT_S = 120.0  # the whole SCAN of a namespace with all=true
# Limited-count hashes live LIMITED_KEY_TTL_S; the minutes that may still exist, and the
# next one (a clock ahead of ours may already have written it).
_LIMITED_MINUTES = range(-(LIMITED_KEY_TTL_S // 60) - 1, 2)
_ERROR_SUFFIX = b":error"


async def erase_ids(client: RedisClient, namespace: str, ids: Sequence[str], now_s: int) -> int:
    """Delete what the cache holds of `ids`; returns how many had anything."""
    deleted = 0
    for start in range(0, len(ids), CHUNK):
        deleted += await _erase_chunk(client, namespace, ids[start : start + CHUNK], now_s)
    return deleted


async def _erase_chunk(client: RedisClient, namespace: str, ids: Sequence[str], now_s: int) -> int:
    pipe = client.pipeline(transaction=False)
    minute = now_s // 60
    for id_ in ids:
        pipe.delete(events_key(namespace, id_))
        pipe.delete(events_key(namespace, id_, Collection.ERROR))
        pipe.zrem(index_key(namespace), id_)
        for collection in Collection:
            for offset in _LIMITED_MINUTES:
                pipe.delete(limited_key(namespace, id_, collection, minute + offset))
        for key in activity_keys(namespace, id_, now_s):
            pipe.delete(key)
    async with redis_call():
        replies = await pipe.execute()
    per_id = len(replies) // len(ids) if ids else 0
    # An id counts as deleted when one of its lists or its index entry existed.
    return sum(1 for n in range(len(ids)) if any(replies[n * per_id : n * per_id + 3]))


async def erase_namespace(client: RedisClient, namespace: str, now_s: int) -> int:
    """Delete every id of the namespace: the indexed ones, then lists the index lacks."""
    deleted = 0
    key = index_key(namespace)
    while True:
        async with redis_call():
            members: list[bytes] = await client.zrange(key, 0, CHUNK - 1)  # type: ignore[assignment]
        if not members:
            break
        ids = [m.decode() for m in members]
        erased = await erase_ids(client, namespace, ids, now_s)
        if not erased:  # nothing left to remove (cannot happen unless the index is odd)
            async with redis_call():
                await client.delete(key)
            break
        deleted += erased
    return deleted + await _erase_unindexed(client, namespace)


async def _erase_unindexed(client: RedisClient, namespace: str) -> int:
    """Delete the lists that no sidecar indexed (a Jitsu Classic server's); returns how
    many ids they belonged to."""
    prefix = f"{KEY_PREFIX}{namespace}#".encode()
    keys: list[bytes] = []
    async with redis_call(SCAN_TIMEOUT_S):
        async for found in client.scan_iter(match=prefix + b"*", count=1000):
            keys.append(found)
    for start in range(0, len(keys), CHUNK):
        pipe = client.pipeline(transaction=False)
        for name in keys[start : start + CHUNK]:
            pipe.delete(name)
        async with redis_call():
            await pipe.execute()
    return len({k[len(prefix) :].removesuffix(_ERROR_SUFFIX) for k in keys})
