"""Read-only commands in one round trip, without redis-py's pipeline machinery.

For short commands such as the journey's look-up (two pipelines of 5-20), redis-py's
pipeline machinery costs more than the commands. On one Redis (or Sentinel's master) the
commands are packed by redis-py and sent by `daemon.store.roundtrip`; on Cluster the
pipeline is kept: it routes each key to its node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from daemon.store.client import RedisClient
from daemon.store.roundtrip import round_trip

Command = tuple[Any, ...]  # ("LRANGE", key, 0, 99)


async def read_many(client: RedisClient, commands: Sequence[Command]) -> list[Any]:
    """The replies of `commands` (read-only: a retry may send them twice), in order."""
    if not commands:
        return []
    if not isinstance(client, Redis):
        pipe = client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        return list(await pipe.execute())
    return await round_trip(client, lambda conn: conn.pack_commands(commands), len(commands))
