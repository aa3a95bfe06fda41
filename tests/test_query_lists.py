"""Reading a query's lists in round trips bounded in bytes, on a real Redis: a small
query is one round trip, a stuffed list is read only as far as the answer's bound, and
entries pushed between two round trips are neither read twice nor skipped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from daemon.core.model import Collection
from daemon.query.lists import Lists
from daemon.query.params import parse_query
from daemon.query.service import QueryService
from daemon.store.keys import events_key
from daemon.store.storage import IdEvents, Storage


class CountingStorage(Storage):
    """The real Storage, counting the entries' bytes and the round trips of a query."""

    read_bytes = 0
    round_trips = 0
    largest_round = 0  # entries

    async def read(self, *args: Any, **kw: Any) -> list[IdEvents]:
        found = await super().read(*args, **kw)
        self.round_trips += 1
        self.read_bytes += sum(len(raw) for f in found for raw in f.entries)
        return found

    async def ranges(
        self, namespace: str, collection: Collection, wanted: Sequence[tuple[str, int, int]]
    ) -> list[list[bytes]]:
        pages = await super().ranges(namespace, collection, wanted)
        self.round_trips += 1
        self.largest_round = max(self.largest_round, sum(len(page) for page in pages))
        self.read_bytes += sum(len(raw) for page in pages for raw in page)
        return pages


def entry(n: int, pad: int = 0) -> bytes:
    doc = {"original": orjson.dumps({"n": n, "pad": "x" * pad}).decode(), "uid": f"u{n}"}
    return orjson.dumps({**doc, "timestamp": "2024-05-01T12:00:00Z", "token_id": "k"})


def push(client: redis.Redis, id_: str, entries: list[bytes]) -> None:
    """Oldest first, as the writers push: the list is newest first."""
    client.lpush(events_key("token", id_), *entries)


@pytest.fixture
async def storage(redis_url: str) -> Any:
    s = CountingStorage(aioredis.Redis.from_url(redis_url), size=10_000, ttl_s=0)
    yield s
    await s.aclose()


async def answer(storage: Storage, params: dict[str, str], max_bytes: int) -> Any:
    service = QueryService(storage, 10_000, 60, 10_000, max_bytes)
    got = await service.events_cache(parse_query({"namespace": "token", **params}, 10_000))
    return got, orjson.loads(got.body)


async def test_a_small_query_is_one_round_trip(
    storage: CountingStorage, redis_client: redis.Redis
) -> None:
    push(redis_client, "a", [entry(n) for n in range(150)])
    got, body = await answer(storage, {"ids": "a"}, 1 << 24)
    assert storage.round_trips == 1 and body["response_events"] == 100 and not got.truncated
    assert [e["uid"] for e in body["events"]] == [f"u{n}" for n in range(149, 49, -1)]


async def test_a_stuffed_list_is_read_only_as_far_as_the_bound(
    storage: CountingStorage, redis_client: redis.Redis
) -> None:
    big = 256 * 1024
    push(redis_client, "a", [entry(n, big) for n in range(80)])
    bound = 1 << 20
    got, body = await answer(storage, {"ids": "a", "limit": "100"}, bound)
    assert got.truncated and body["response_events"] == 3  # 4 x 256 KiB and more: over
    assert [e["uid"] for e in body["events"]] == ["u79", "u78", "u77"]
    # The first round reads one entry per 160 KiB of the bound (6) blind; after it, no
    # round reads more than the answer's room holds at the largest entry seen.
    assert storage.read_bytes <= 6 * (big + 200)
    storage.read_bytes = 0
    small, _ = await answer(storage, {"ids": "a", "limit": "100"}, 16 << 20)
    assert small.truncated and storage.read_bytes <= (100 + 64) * (big + 200)


async def test_small_entries_first_cannot_lure_a_round_into_many_large_ones(
    storage: CountingStorage, redis_client: redis.Redis
) -> None:
    big = 256 * 1024
    stuffed = [entry(n, big) for n in range(200)]
    push(redis_client, "a", stuffed + [entry(n) for n in range(1000, 1100)])
    got, body = await answer(storage, {"ids": "a", "limit": "1000"}, 16 << 20)
    assert got.truncated and body["response_events"] == 100 + 63
    # 100 small ones, then at most twice as many entries as the round before.
    assert storage.read_bytes <= 200 * (big + 200) + 100 * 200


async def test_rounds_grow_to_at_most_a_thousand_entries(
    storage: CountingStorage, redis_client: redis.Redis
) -> None:
    for n in range(60):
        push(redis_client, f"id{n}", [entry(n * 1000 + k) for k in range(100)])
    ids = ",".join(f"id{n}" for n in range(60))
    got, body = await answer(storage, {"ids": ids}, 1 << 24)
    assert body["response_events"] == 6000 and not got.truncated
    # 100 blind, then 200, 400, 800 and 1,000 a round
    assert storage.largest_round == 1000 and storage.round_trips == 1 + 3 + 5


async def test_entries_pushed_between_round_trips_are_read_once(
    storage: CountingStorage, redis_client: redis.Redis
) -> None:
    push(redis_client, "a", [entry(n) for n in range(300)])
    lists = Lists(storage, "token", Collection.ALL, 250, 1 << 24)
    await lists.open(["a"], 0, 1 << 24)
    seen: list[bytes] = []
    grow = [220, 0, 5]  # more than the next round reads, nothing, a few
    fresh = iter(range(1000, 2000))
    async for page in lists.pages(0, lambda: 1 << 24):
        seen.extend(page)
        extra = grow.pop(0) if grow else 0
        if extra:
            push(redis_client, "a", [entry(next(fresh)) for _ in range(extra)])
    uids = [orjson.loads(raw)["uid"] for raw in seen]
    assert uids == [f"u{n}" for n in range(299, 49, -1)]
