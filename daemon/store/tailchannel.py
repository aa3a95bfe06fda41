"""The live tail's channel in Redis: the batches that writers publish, as they come.

Any sidecar sharing the Redis can subscribe: on a Redis Cluster, PUBLISH reaches every
node, so the subscription holds one connection to any node.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from daemon.store.client import RedisClient, database_of, redis_call, unavailable
from daemon.store.keys import tail_channel

POLL_TIMEOUT_S = 1.0  # the subscription checks its caller's cancellation this often


async def tail_messages(client: RedisClient) -> AsyncIterator[bytes]:
    """Published batches until the caller stops iterating; b"" once Redis confirmed the
    subscription (what is published from then on comes here) and after each quiet
    POLL_TIMEOUT_S, so the caller may stop; RedisError when the connection fails (the
    caller resubscribes)."""
    pubsub: Any = client.pubsub()
    try:
        async with redis_call():
            await pubsub.subscribe(tail_channel(database_of(client)))
            confirmed = await pubsub.get_message(timeout=POLL_TIMEOUT_S)
        if confirmed is not None:
            yield b""
        while True:
            # get_message is bounded by its own timeout: no timeout context per message
            # (one per published batch, a share of the tail's cost), only the mapping of
            # its failures.
            try:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=POLL_TIMEOUT_S
                )
            except asyncio.CancelledError:
                raise
            except Exception as e:
                raise unavailable(e) from e
            if message is None:
                yield b""
            elif message.get("type") == "message":
                yield message["data"]
    finally:
        async with redis_call():
            await pubsub.aclose()
