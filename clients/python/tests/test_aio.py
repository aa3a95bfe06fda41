"""The asyncio flavour against a stand-in sidecar (asyncio.run: no pytest plugin)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from conftest import accept_all

from events_cache_client import AsyncClient

BODY = json.dumps({"event_type": "pageview", "pad": "x" * 900}).encode()


def test_delivery_in_batches_and_close(stub: Any) -> None:
    s = stub()

    async def main() -> AsyncClient:
        async with AsyncClient(socket=s.socket_path) as client:
            for n in range(1200):
                client.incoming(f"k{n % 3}", BODY)
            client.processed("pg", {"a": 1}, error="refused", token_id="k0")
            await asyncio.sleep(0.3)  # the interval sends without flush()
            assert client.stats().accepted == 1201
            client.incoming("k", b"[{}, {}]")
        return client

    client = asyncio.run(main())
    stats = client.stats()
    assert (stats.sent, stats.accepted, stats.dropped, stats.buffered) == (1203, 1203, 0, 0)
    assert all(body.count(b"\n") < 500 for body in s.bodies)


def test_413_split_and_oversized(stub: Any) -> None:
    def small(body: bytes) -> tuple[int, dict[str, Any]]:
        if len(body) > 10_000:
            return 413, {"message": "too large"}
        return accept_all(body)

    s = stub(small)

    async def main() -> AsyncClient:
        client = AsyncClient(socket=s.socket_path)
        for _ in range(300):
            client.incoming("k", BODY)
        client.incoming("k", b'{"big": "' + b"x" * 20_000 + b'"}')
        assert await client.close()
        return client

    stats = asyncio.run(main()).stats()
    assert (stats.accepted, stats.dropped_oversized) == (300, 1)
    assert stats.too_large >= 1


def test_sidecar_away_then_back(stub: Any) -> None:
    s = stub()
    s.stop()

    async def main() -> AsyncClient:
        client = AsyncClient(socket=s.socket_path, max_backoff_s=0.2)
        slowest = 0.0
        for _ in range(1000):
            started = time.perf_counter()
            client.incoming("k", BODY)
            slowest = max(slowest, time.perf_counter() - started)
        assert await client.flush(5)
        assert slowest < 0.05
        assert client.stats().dropped_unavailable == 1000
        s.start()
        for _ in range(500):
            client.incoming("k", b"{}")
            await asyncio.sleep(0.01)
            if client.stats().accepted:
                break
        assert await client.close()
        return client

    assert asyncio.run(main()).stats().accepted > 0


def test_url_transport_and_a_sidecar_that_went_away(stub: Any) -> None:
    s = stub(unix=False)

    async def main() -> AsyncClient:
        client = AsyncClient(url=s.url)
        client.incoming("k", b"{}")
        assert await client.flush()
        s.stop()  # the port is closed, the keep-alive connection cut
        client.incoming("k", b"{}")
        assert await client.close()
        return client

    stats = asyncio.run(main()).stats()
    assert (stats.accepted, stats.dropped_unavailable) == (1, 1)
    assert "sidecar unavailable (http://127.0.0.1:" in stats.last_errors[0]


def test_keep_alive_connection_reopened(stub: Any) -> None:
    s = stub()

    async def main() -> AsyncClient:
        client = AsyncClient(socket=s.socket_path)
        client.incoming("k", b"{}")
        assert await client.flush()
        s.stop()
        s.start()
        client.incoming("k", b"{}")
        assert await client.close()
        return client

    stats = asyncio.run(main()).stats()
    assert (stats.accepted, stats.dropped) == (2, 0)


def test_close_twice_calls_after_close_and_timeout(stub: Any) -> None:
    def hang(body: bytes) -> tuple[int, dict[str, Any]]:
        time.sleep(1.0)
        return accept_all(body)

    s = stub(hang)

    async def main() -> AsyncClient:
        client = AsyncClient(socket=s.socket_path, timeout_s=0.5)
        client.incoming("k", b"{}")
        started = time.monotonic()
        assert await client.close(0.2) is False
        assert time.monotonic() - started < 0.5
        client.incoming("k", b"{}")
        await client.close()
        return client

    stats = asyncio.run(main()).stats()
    assert stats.dropped_closed >= 1


def test_calls_outside_a_loop_wait_for_one(stub: Any) -> None:
    s = stub()
    client = AsyncClient(socket=s.socket_path)
    client.incoming("k", b"{}")  # no running loop: buffered

    async def main() -> None:
        assert await client.close()

    asyncio.run(main())
    assert client.stats().accepted == 1
