"""Queue, writers and trim against a real Redis, in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
import redis.asyncio.client
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from daemon.core.model import Collection, Namespace, Target
from daemon.metrics import Metrics
from daemon.pipeline.queue import EventQueue, QueuedEntry
from daemon.pipeline.trimmer import Trimmer
from daemon.pipeline.writers import MAX_BATCH_BYTES, Writers
from daemon.store.client import COMMAND_TIMEOUT_S, call_timeout
from daemon.store.health import RedisHealth
from daemon.store.keys import LIMITED_KEY_TTL_S, events_key, index_key, limited_key
from daemon.store.storage import TRIM_LISTS_PER_PIPELINE, Storage


def entry(id_: str, n: int, target: Target = Target.ALL) -> QueuedEntry:
    return QueuedEntry(Namespace.TOKEN, id_, target, b'{"n":%d}' % n)


def test_queue_is_bounded_and_routes_an_id_to_one_shard() -> None:
    queue = EventQueue(capacity=5, shards=3)
    assert all(queue.put(entry("a", n)) for n in range(5))
    assert not queue.put(entry("b", 0))
    assert queue.depth == 5
    shard = hash("a") % 3
    batch, size = queue.take(shard, 10, 1 << 20)
    assert [e.data for e in batch] == [b'{"n":%d}' % n for n in range(5)]
    assert size == sum(len(e.data) for e in batch) == queue.bytes
    # A batch a writer holds still counts, until the writer is done with it.
    assert queue.depth == 5 and not queue.put(entry("b", 0))
    queue.done(len(batch), size)
    assert queue.depth == 0 and queue.bytes == 0
    assert queue.put(entry("b", 0))


def big(id_: str, n: int, size: int) -> QueuedEntry:
    head = b"%d:" % n
    return QueuedEntry(Namespace.TOKEN, id_, int(Target.ALL), head + b"x" * (size - len(head)))


def test_queue_is_bounded_in_bytes_whichever_bound_comes_first() -> None:
    queue = EventQueue(capacity=1000, shards=2, capacity_bytes=1000)
    assert all(queue.put(big(f"id-{n}", n, 300)) for n in range(3))
    assert queue.bytes == 900
    assert not queue.put(big("id-9", 9, 101))  # one byte over: refused, nothing counted
    assert (queue.depth, queue.bytes) == (3, 900)
    assert queue.put(big("id-9", 9, 100))  # exactly at the bound
    assert not queue.put(entry("id-9", 1))
    assert queue.bytes == queue.capacity_bytes


def test_a_batch_stops_growing_at_its_byte_budget() -> None:
    queue = EventQueue(capacity=1000, shards=1, capacity_bytes=1 << 30)
    for n, size in enumerate([400, 400, 300, 5000, 100, 100]):
        queue.put(big("a", n, size))
    sizes = []
    while queue.pending(0):
        batch, size = queue.take(0, 1000, 1000)
        assert size == sum(len(e.data) for e in batch)
        sizes.append([len(e.data) for e in batch])
    # 400 + 400 + 300 would pass 1000; an entry over the budget goes alone, never skipped.
    assert sizes == [[400, 400], [300], [5000], [100, 100]]
    assert queue.depth == 6  # every batch still counts until done


def test_a_pipeline_may_take_longer_the_more_it_carries() -> None:
    assert call_timeout(0) == COMMAND_TIMEOUT_S
    assert call_timeout(MAX_BATCH_BYTES) > call_timeout(MAX_BATCH_BYTES // 2) > COMMAND_TIMEOUT_S


@pytest.fixture
async def storage(redis_url: str) -> Any:
    s = Storage(aioredis.Redis.from_url(redis_url), size=5, ttl_s=0)
    yield s
    await s.aclose()


@pytest.fixture
def private_url(spawn_redis: Any) -> str:
    """A server of this test's own, for tests that count commands: the statistics are
    server-wide, and under `make test-redis7` another xdist worker writes to the same one."""
    return str(spawn_redis().url)


@pytest.fixture
async def counted_storage(private_url: str) -> Any:
    s = Storage(aioredis.Redis.from_url(private_url), size=5, ttl_s=0)
    yield s
    await s.aclose()


@pytest.fixture
def counted_client(private_url: str) -> Any:
    client = redis.Redis.from_url(private_url)
    yield client
    client.close()


def commands(client: redis.Redis, name: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{name}")
    return int(stats["calls"]) if stats else 0


async def test_a_batch_is_one_lpush_per_list_newest_first(
    counted_storage: Storage, counted_client: redis.Redis
) -> None:
    storage, redis_client = counted_storage, counted_client
    metrics = Metrics("test")
    queue = EventQueue(capacity=1000, shards=1)
    trimmer = Trimmer(storage, metrics, RedisHealth(metrics))
    writers = Writers(queue, storage, metrics, RedisHealth(metrics), trimmer.mark)
    for n in range(30):
        queue.put(entry(f"id-{n % 3}", n, Target.ALL | (Target.ERROR if n % 2 else 0)))
    redis_client.config_resetstat()
    assert await writers.write(*queue.take(0, 1000, 1 << 30))
    # three ids x two lists: six LPUSH, one ZADD for the index
    assert commands(redis_client, "lpush") == 6
    assert commands(redis_client, "zadd") == 1
    stored = redis_client.lrange(events_key("token", "id-0"), 0, -1)
    assert stored == [b'{"n":%d}' % n for n in (27, 24, 21, 18, 15, 12, 9, 6, 3, 0)]
    assert redis_client.llen(events_key("token", "id-1", Collection.ERROR)) == 5
    assert sorted(redis_client.zrange(index_key("token"), 0, -1)) == [b"id-0", b"id-1", b"id-2"]
    assert (
        metrics.registry.get_sample_value(
            "events_cache_cached_total", {"cache_namespace": "token", "collection": "all"}
        )
        == 30
    )
    assert (
        metrics.registry.get_sample_value(
            "events_cache_cached_total", {"cache_namespace": "token", "collection": "error"}
        )
        == 15
    )

    # the all-events lists (10 entries) are over size 5; the errors-only (5) need no pass
    assert trimmer.pending == 3
    await trimmer.trim_once()
    assert redis_client.llen(events_key("token", "id-0")) == 5
    assert redis_client.lrange(events_key("token", "id-0"), 0, 0) == [b'{"n":27}']
    assert trimmer.pending == 0


async def test_error_only_entries_count_as_limited_in_all(storage: Storage) -> None:
    metrics = Metrics("test")
    queue = EventQueue(capacity=10, shards=1)
    writers = Writers(queue, storage, metrics, RedisHealth(metrics), lambda keys: None)
    queue.put(entry("x", 1, Target.ERROR))
    assert await writers.write(*queue.take(0, 10, 1 << 30))
    get = metrics.registry.get_sample_value
    assert (
        get("events_cache_rate_limited_total", {"cache_namespace": "token", "collection": "all"})
        == 1
    )
    assert (
        get("events_cache_cached_total", {"cache_namespace": "token", "collection": "error"}) == 1
    )
    assert get("events_cache_cached_total", {"cache_namespace": "token", "collection": "all"}) == 0


async def test_writers_keep_per_id_order_across_shards(
    storage: Storage, redis_client: redis.Redis
) -> None:
    metrics = Metrics("test")
    queue = EventQueue(capacity=100_000, shards=4)
    writers = Writers(queue, storage, metrics, RedisHealth(metrics), lambda keys: None)
    tasks = [asyncio.create_task(writers.run(shard)) for shard in range(4)]
    for n in range(2000):
        queue.put(entry(f"id-{n % 7}", n))
        if n % 100 == 0:
            await asyncio.sleep(0)  # let the writers take partial batches meanwhile
    writers.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    for i in range(7):
        stored = redis_client.lrange(events_key("token", f"id-{i}"), 0, -1)
        numbers = [int(x[5:-1]) for x in stored]
        assert numbers == sorted(numbers, reverse=True)
        assert len(numbers) == len(range(i, 2000, 7))


async def test_writers_send_large_events_in_pipelines_bounded_in_bytes(
    storage: Storage, redis_client: redis.Redis
) -> None:
    metrics = Metrics("test")
    queue = EventQueue(capacity=1000, shards=1, capacity_bytes=1 << 30)
    writers = Writers(queue, storage, metrics, RedisHealth(metrics), lambda keys: None)
    third = MAX_BATCH_BYTES // 3
    for n in range(10):
        queue.put(big("large", n, third))
    task = asyncio.create_task(writers.run(0))
    writers.stop()
    await asyncio.wait_for(task, 30)
    stored = redis_client.lrange(events_key("token", "large"), 0, -1)
    assert [x[:2] for x in stored] == [b"%d:" % n for n in range(9, -1, -1)]
    # Three of them fill a pipeline's budget: 3 + 3 + 3 + 1.
    assert metrics.registry.get_sample_value("events_cache_redis_write_seconds_count") == 4
    assert (queue.depth, queue.bytes) == (0, 0)


async def test_a_failed_write_is_counted_as_dropped(redis_url: str) -> None:
    metrics = Metrics("test")
    client = aioredis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    dead = Storage(client, size=5, ttl_s=0)
    health = RedisHealth(metrics)
    writers = Writers(EventQueue(10, 1), dead, metrics, health, lambda keys: None)
    assert not await writers.write([entry("a", 1), entry("a", 2)])
    assert (
        metrics.registry.get_sample_value("events_cache_dropped_total", {"reason": "redis_error"})
        == 2
    )
    assert metrics.registry.get_sample_value("events_cache_redis_up") == 0
    assert not health.up and health.last_error
    await dead.aclose()


async def test_trim_sets_ttl_and_prunes_the_index(
    redis_url: str, redis_client: redis.Redis
) -> None:
    storage = Storage(aioredis.Redis.from_url(redis_url), size=2, ttl_s=120)
    try:
        await storage.write(
            {events_key("token", "a"): [b"1", b"2", b"3"]}, {"token": ["a"]}, now=10_000
        )
        await storage.write({}, {"token": ["stale"]}, now=1_000)
        await storage.trim([events_key("token", "a")], now=10_000)
    finally:
        await storage.aclose()
    assert redis_client.lrange(events_key("token", "a"), 0, -1) == [b"3", b"2"]
    assert 0 < redis_client.ttl(events_key("token", "a")) <= 120
    assert redis_client.zrange(index_key("token"), 0, -1) == [b"a"]


async def test_a_write_names_the_lists_over_size_or_all_of_them_with_a_ttl(
    redis_url: str,
) -> None:
    """The trim pass sees only the lists LPUSH left longer than `size` (its reply is the
    length), unless their TTL is to be refreshed: then every list written."""
    for ttl_s, expected in ((0, {"long"}), (60, {"long", "short", "exact"})):
        storage = Storage(aioredis.Redis.from_url(redis_url), size=3, ttl_s=ttl_s)
        try:
            await storage.client.delete("long", "short", "exact")
            lists = {"long": [b"x"] * 4, "short": [b"x"], "exact": [b"x"] * 3}
            assert await storage.write(lists, {}, now=10_000) == expected
        finally:
            await storage.aclose()


async def test_limited_counts_add_up_and_expire_is_sent_once_per_minute_key(
    counted_storage: Storage, counted_client: redis.Redis
) -> None:
    storage, redis_client = counted_storage, counted_client
    key = ("token", "busy", "all")
    redis_client.config_resetstat()
    await storage.add_limited({(key, 6000): 3, (key, 6001): 2})
    await storage.add_limited({(key, 6001): 4, (key, 6059): 1})
    await storage.add_limited({(key, 6060): 7})  # the next minute: a new key, a new EXPIRE
    assert redis_client.hgetall(limited_key("token", "busy", "all", 100)) == {
        b"6000": b"3",
        b"6001": b"6",
        b"6059": b"1",
    }
    assert redis_client.hgetall(limited_key("token", "busy", "all", 101)) == {b"6060": b"7"}
    assert 0 < redis_client.ttl(limited_key("token", "busy", "all", 100)) <= LIMITED_KEY_TTL_S
    assert 0 < redis_client.ttl(limited_key("token", "busy", "all", 101)) <= LIMITED_KEY_TTL_S
    assert commands(redis_client, "expire") == 2
    assert commands(redis_client, "hincrby") == 5


async def test_a_trim_pass_over_many_lists_goes_in_pipelines_small_enough_to_pack_inline(
    counted_storage: Storage, counted_client: redis.Redis
) -> None:
    """More lists than TRIM_LISTS_PER_PIPELINE: all trimmed, in pipelines each under
    redis-py's threshold for packing in a worker thread."""
    lists = TRIM_LISTS_PER_PIPELINE * 2 + 7
    keys = [events_key("token", f"t-{n}") for n in range(lists)]
    size = counted_storage.size
    await counted_storage.write({k: [b"x"] * (size + 3) for k in keys}, {}, now=10_000)
    counted_client.config_resetstat()
    await counted_storage.trim(keys, now=10_000)
    assert commands(counted_client, "ltrim") == lists
    assert all(counted_client.llen(k) == size for k in keys)
    # With its EXPIRE, a list is two commands: still under the threshold (redis-py 8.2+).
    offload = getattr(redis.asyncio.client, "_PIPELINE_PACK_OFFLOAD_MIN_COMMANDS", 1000)
    assert TRIM_LISTS_PER_PIPELINE * 2 + len(Namespace) < offload
