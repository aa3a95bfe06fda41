"""Forgetting a test run's entries: those carrying one capture tag, in the lists of some
ids, the other entries left as they are.

Each list of each id (all, error: at most `size` entries each, the trim loop sees to it)
is read in pages (LRANGE) and each entry that carries the tag is then removed by its
exact value (LREM: entries are unique, each has its own uid). Every command touches one
key (Cluster works). Entries can be up to `max_request_bytes` each, so a page is bounded
in bytes too: the first reads FIRST_PAGE entries blind, each later one as many as
PAGE_BYTES holds at the largest entry seen so far (at most MAX_PAGE). An entry pushed
meanwhile shifts the list: it may be read twice (removed once), never skipped; one
trimmed meanwhile is simply gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import cast

import orjson

from daemon.core.entry import CAPTURE
from daemon.core.model import Collection
from daemon.store.client import RedisClient, redis_call
from daemon.store.keys import events_key

FIRST_PAGE = 16  # entries read before any size is known (16 MiB at the 1 MiB maximum)
PAGE_BYTES = 4 * 1024 * 1024  # what a later page may hold, at the largest entry seen
MAX_PAGE = 1000


def next_page(largest: int) -> int:
    """Entries of the next page when the largest entry seen so far is `largest` bytes."""
    return max(1, min(MAX_PAGE, PAGE_BYTES // max(largest, 1)))


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
    needle = orjson.dumps(tag)[1:-1]
    matches: list[tuple[str, bytes]] = []
    for key in (events_key(namespace, id_, c) for id_ in ids for c in Collection):
        matches += [(key, raw) async for raw in _tagged(client, key, size, tag, needle)]
    if not matches:
        return 0
    pipe = client.pipeline(transaction=False)
    for key, raw in matches:
        pipe.lrem(key, 0, raw)  # type: ignore[arg-type]  # redis-py types it str; bytes go as is
    async with redis_call():
        counts = await pipe.execute()
    # An event counts once: an error entry is the same bytes in both of its id's lists.
    return len({raw for (_, raw), n in zip(matches, counts, strict=True) if int(n)})


async def _tagged(
    client: RedisClient, key: str, size: int, tag: str, needle: bytes
) -> AsyncIterator[bytes]:
    """The entries of one list that carry `tag`, read page by page (at most `size`, with
    room for entries pushed meanwhile)."""
    start, count, largest = 0, FIRST_PAGE, 0
    while start < 2 * size:
        async with redis_call():
            stop = start + min(count, 2 * size - start) - 1
            page = cast(list[bytes], await client.lrange(key, start, stop))
        for raw in page:
            largest = max(largest, len(raw))
            if carries(raw, tag, needle):
                yield raw
        if len(page) < count:
            return
        start += len(page)
        count = next_page(largest)
