"""The admin routes' guard does not depend on the order routes are added in: the live
tail alone, its guard installed after it, refuses a wrong token (401) and lets the right
one in, on a real aiohttp server (the guard's app keys used to be set by the query
routes only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from daemon.metrics import Metrics
from daemon.pipeline.tailhub import TailHub
from daemon.pipeline.tailswitch import TailSwitch
from daemon.query.service import QueryService
from daemon.store.health import RedisHealth
from daemon.store.storage import Storage
from daemon.web.auth import TokenCheck, install
from daemon.web.listeners import api_application
from daemon.web.sse import SseFraming
from daemon.web.tailstream import Tail, add_tail_routes
from tests.support.servers import free_port

TOKEN = "a-token-of-enough-length-0123"


@pytest.fixture
async def tail_only() -> AsyncIterator[str]:
    metrics = Metrics("test")
    health = RedisHealth(metrics)
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", retry=None)
    storage = Storage(client, size=10, ttl_s=0)
    hub = TailHub(storage.tail_messages, health, 4, SseFraming())
    app = api_application(metrics)
    tail = Tail(hub, TailSwitch(storage, health, lambda: hub.count))
    add_tail_routes(app, tail, QueryService(storage, 10, 60, 10_000, 1 << 24))
    install(app, TokenCheck((TOKEN,), False), health)  # after the routes: order is free
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/api/v1/events/stream?namespace=token"
    hub.stop()
    await runner.cleanup()
    await client.aclose()


async def test_the_tail_alone_is_guarded(tail_only: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(tail_only, headers={"X-Admin-Token": "wrong"}) as reply:
            assert reply.status == 401
            assert "message" in await reply.json()
        async with session.get(tail_only, headers={"X-Admin-Token": TOKEN}) as reply:
            # Redis is not there: the stream opens all the same (a gap will say so).
            assert reply.status == 200
            assert (await reply.content.readuntil(b"\r\n\r\n")).startswith(b": tailing")
