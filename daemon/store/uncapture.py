"""Forgetting a test run's entries: those carrying one capture tag, in the lists of some
ids, the other entries left as they are.

For each id, both lists (all, error) are read (LRANGE, at most `2 x size` entries: the
trim loop keeps a list at `size`) and each entry that carries the tag is removed by
its exact value (LREM: entries are unique, each has its own uid). Every command touches
one key (Cluster works); ids go a chunk per pipeline, so memory is bounded by a chunk's
lists. An entry pushed meanwhile is not seen; one trimmed meanwhile is simply gone.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from daemon.core.entry import CAPTURE
from daemon.core.model import Collection
from daemon.store.client import RedisClient, redis_call
from daemon.store.keys import events_key

CHUNK = 20  # ids per pipeline: 40 lists of at most 2 x size entries read at once


def carries(raw: bytes, tag: str, needle: bytes) -> bool:
    """Whether the stored entry carries exactly `tag` (a byte search first)."""
    if needle not in raw:
        return False
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get(CAPTURE) == tag


async def erase_captured(
    client: RedisClient, namespace: str, ids: Sequence[str], tag: str, size: int
) -> int:
    """Remove the entries carrying `tag` from the lists of `ids`; how many were removed."""
    removed = 0
    for start in range(0, len(ids), CHUNK):
        removed += await _erase_chunk(client, namespace, ids[start : start + CHUNK], tag, size)
    return removed


async def _erase_chunk(
    client: RedisClient, namespace: str, ids: Sequence[str], tag: str, size: int
) -> int:
    keys = [events_key(namespace, id_, c) for id_ in ids for c in Collection]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.lrange(key, 0, 2 * size - 1)
    async with redis_call():
        lists = await pipe.execute()
    needle = orjson.dumps(tag)[1:-1]
    found = [(key, raw) for key, entries in zip(keys, lists, strict=True) for raw in entries]
    matches = [(key, raw) for key, raw in found if carries(raw, tag, needle)]
    if not matches:
        return 0
    pipe = client.pipeline(transaction=False)
    for key, raw in matches:
        pipe.lrem(key, 0, raw)
    async with redis_call():
        counts = await pipe.execute()
    # An event counts once: an error entry is the same bytes in both of its id's lists.
    return len({raw for (_, raw), n in zip(matches, counts, strict=True) if int(n)})
