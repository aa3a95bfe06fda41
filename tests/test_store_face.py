"""The store's one face: every operation on a Redis that is not there fails with
StoreUnavailable (the one error the rest of the daemon catches), its text saying what
Redis' client said, and the health view records it as such."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from daemon.core.model import Collection, RedisOperation
from daemon.metrics import Metrics
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth
from daemon.store.keys import events_key
from daemon.store.storage import Storage
from tests.support.servers import free_port


@pytest.fixture
async def nowhere() -> AsyncIterator[Storage]:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", retry=None)
    storage = Storage(client, size=10, ttl_s=60)
    yield storage
    await client.aclose()


async def _first_message(storage: Storage) -> None:
    async for _ in storage.tail_messages():
        return


OPERATIONS: dict[str, Callable[[Storage], Awaitable[Any]]] = {
    "ping": lambda s: s.ping(),
    "write": lambda s: s.write({events_key("token", "a"): [b"{}"]}, {"token": ["a"]}, now=1.0),
    "trim": lambda s: s.trim([events_key("token", "a")], now=1.0),
    "add_limited": lambda s: s.add_limited({(("token", "a", "all"), 60): 1}),
    "read": lambda s: s.read("token", ["a"], Collection.ALL, [10], 60),
    "ranges": lambda s: s.ranges("token", Collection.ALL, [("a", 0, 9)]),
    "summaries": lambda s: s.summaries("token", ["a"], 60),
    "watched": lambda s: s.watched(),
    "watch": lambda s: s.watch(5.0),
    "ids": lambda s: s.ids("token"),
    "index_page": lambda s: s.index_page("token", 10),
    "erase_ids": lambda s: s.erase_ids("token", ["a"], 60),
    "erase_namespace": lambda s: s.erase_namespace("token", 60),
    "tail_messages": _first_message,
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_every_operation_on_a_missing_redis_is_store_unavailable(
    nowhere: Storage, operation: str
) -> None:
    with pytest.raises(StoreUnavailable, match="ConnectionError") as raised:
        await OPERATIONS[operation](nowhere)
    health = RedisHealth(Metrics("test"))
    health.failed(raised.value, RedisOperation.QUERY)
    assert health.last_error.startswith("ConnectionError: ") and not health.up
