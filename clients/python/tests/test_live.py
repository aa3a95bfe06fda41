"""Against a running sidecar, when EVENTS_CACHE_TEST_SOCKET or EVENTS_CACHE_TEST_URL
names one (the repository's tests/test_clients.py starts one and sets them).

The behaviours that need a sidecar configured to provoke them (413s, rate limits,
rejections, outages, restarts, a hung sidecar) are driven by tests/test_clients.py.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from events_cache_client import AsyncClient, Client

SOCKET = os.environ.get("EVENTS_CACHE_TEST_SOCKET", "")
URL = os.environ.get("EVENTS_CACHE_TEST_URL", "")
pytestmark = pytest.mark.skipif(
    not (SOCKET or URL), reason="no live sidecar: set EVENTS_CACHE_TEST_SOCKET or _URL"
)
N = 2000


def transports() -> list[dict[str, str]]:
    return [t for t in ({"socket": SOCKET}, {"url": URL}) if next(iter(t.values()))]


@pytest.mark.parametrize("transport", transports(), ids=lambda t: next(iter(t)))
def test_threaded_client_delivers(transport: dict[str, str]) -> None:
    key = f"live-{uuid.uuid4().hex[:8]}"
    client = Client(**transport)
    for n in range(N):
        client.incoming(key, b'{"n": %d}' % n)
    client.incoming(key, b"not json")
    client.processed(key, {"n": 0}, error="refused", token_id=key)
    client.processed(key, {"n": 1}, success={"t": 1}, error="both: invalid")
    assert client.close(10)
    stats = client.stats()
    assert stats.sent == N + 3
    assert stats.accepted + stats.rate_limited == N + 2
    assert stats.invalid == 1 and "exactly one" in stats.last_errors[-1]
    assert stats.dropped == 0


@pytest.mark.parametrize("transport", transports(), ids=lambda t: next(iter(t)))
def test_asyncio_client_delivers(transport: dict[str, str]) -> None:
    key = f"live-{uuid.uuid4().hex[:8]}"

    async def main() -> AsyncClient:
        async with AsyncClient(**transport) as client:
            for n in range(N):
                client.incoming(key, {"n": n})
        return client

    stats = asyncio.run(main()).stats()
    assert stats.sent == N
    assert stats.accepted + stats.rate_limited == N
    assert stats.dropped == 0


def test_asyncio_calls_outside_a_loop_wait_for_one() -> None:
    """A call made before any loop runs is buffered, then sent by the loop's task."""
    transport = transports()[0]
    key = f"live-{uuid.uuid4().hex[:8]}"
    client = AsyncClient(**transport)
    client.incoming(key, b"{}")  # no running loop: buffered
    assert client.stats().buffered == 1

    async def main() -> None:
        assert await client.close()

    asyncio.run(main())
    stats = client.stats()
    assert (stats.sent, stats.accepted + stats.rate_limited, stats.dropped) == (1, 1, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_sends_on_its_own() -> None:
    """After fork() the child has an empty buffer, zeroed counters and a sender of its
    own; the parent goes on with its own."""
    transport = transports()[0]
    key = f"live-{uuid.uuid4().hex[:8]}"
    client = Client(**transport)
    client.incoming(key, b'{"from": "parent"}')
    assert client.flush()
    pid = os.fork()
    if pid == 0:  # the child: its own sender thread, its own counters
        client.incoming(key, b'{"from": "child"}')
        stats = client.close(5) and client.stats()
        ok = stats and (stats.sent, stats.accepted + stats.rate_limited, stats.dropped) == (1, 1, 0)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.incoming(key, b'{"from": "parent"}')
    assert client.close()
    stats = client.stats()
    assert (stats.sent, stats.accepted + stats.rate_limited, stats.dropped) == (2, 2, 0)
