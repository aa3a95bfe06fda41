"""The id index: which ids the cache holds, most recently written first, paged.

`events_cache:index:<namespace>` is a Sorted Set scored by the time of an id's last
write. A page is read with ZRANGE BYSCORE REV from a cursor (the score and id of the
last id returned), so paging stays stable while ids are written: an id written after
the first page moves to the top (a new first page shows it) and never repeats on a
later page. Ids of equal score are ordered by their bytes, in reverse, as Redis does.
The cost of a page is bounded: at most `scan_budget` index entries are examined, also
when `q` filters most of them out (the cursor then says where to go on).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from daemon.store.client import RedisClient, redis_call
from daemon.store.keys import index_key

CHUNK = 200  # index entries per ZRANGE
TIE_SLACK = 16  # more than the writers (pool.size) that may stamp one score at once
SCAN_BUDGET = 10_000  # index entries one page may examine


class CursorError(ValueError):
    """A cursor that this sidecar did not hand out."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ends: the score and id of its last index entry."""

    score: float
    member: bytes

    def encode(self) -> str:
        """Opaque text for the `cursor` parameter."""
        raw = orjson.dumps([self.score, self.member.decode("utf-8", "surrogateescape")])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor of `encode`; CursorError for anything else."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            score, member = orjson.loads(raw)
            if not isinstance(score, int | float) or not isinstance(member, str):
                raise ValueError
            return cls(float(score), member.encode("utf-8", "surrogateescape"))
        except (ValueError, TypeError, orjson.JSONDecodeError) as e:
            raise CursorError("cursor is not one this API handed out") from e


@dataclass(frozen=True, slots=True)
class IndexPage:
    """Ids of one page with their last-write time, and the cursor of the next page."""

    ids: list[tuple[str, float]]
    next: Cursor | None


async def index_page(
    client: RedisClient,
    namespace: str,
    limit: int,
    after: Cursor | None = None,
    q: str = "",
    scan_budget: int = SCAN_BUDGET,
) -> IndexPage:
    """Up to `limit` ids after `after`, most recently written first; `q` keeps the ids
    that contain it (case-insensitive)."""
    needle = q.lower()
    found: list[tuple[str, float]] = []
    last: Cursor | None = None
    examined = 0
    # Without a filter, a page is `limit` entries and a few that may share the cursor's
    # score; with one, whole chunks.
    chunk = CHUNK if needle else min(CHUNK, limit + TIE_SLACK)
    async for member, score in _walk(client, index_key(namespace), after, chunk):
        examined += 1
        last = Cursor(score, member)
        id_ = member.decode("utf-8", "replace")
        if not needle or needle in id_.lower():
            found.append((id_, score))
            if len(found) == limit:
                break
        if examined >= scan_budget:
            break
    else:
        return IndexPage(found, None)  # the index is exhausted
    return IndexPage(found, last)


async def _walk(
    client: RedisClient, key: str, after: Cursor | None, chunk_size: int
) -> AsyncIterator[tuple[bytes, float]]:
    """Index entries after the cursor, most recent first, `chunk_size` at a time."""
    top: float | str = "+inf" if after is None else after.score
    offset = 0
    while True:
        async with redis_call():
            chunk: list[Any] = await client.zrange(
                key,
                top,
                "-inf",
                byscore=True,
                desc=True,
                offset=offset,
                num=chunk_size,
                withscores=True,
            )
        for member, score in chunk:
            if after is not None and score == after.score and member >= after.member:
                continue  # at the cursor's score: this one was on an earlier page
            yield member, float(score)
        if len(chunk) < chunk_size:
            return
        offset += chunk_size
