"""Read-only commands in one round trip, without redis-py's pipeline machinery.

redis-py's asyncio pipeline spends, per command, more than the command costs Redis
(its command stack, response callbacks, per-pipeline preparations and observability
hooks): for the journey's look-up, two pipelines of 5-20 short commands, a large share
of the daemon's own time. On one Redis (or Sentinel's master) the commands here are
packed and written on a pooled connection and their replies read back in order; a
connection error is retried once on a fresh connection (the client's `Retry`, as the
pipeline would), and any failure drops the connection, so that no reply is left for the
next borrower. On Cluster the pipeline is kept: it routes each key to its node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from daemon.store.client import RedisClient

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
    pool = client.connection_pool
    conn: Connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        replies: list[Any] = await conn.retry.call_with_retry(
            lambda: _round_trip(conn, commands),
            lambda error: conn.disconnect(nowait=True),
        )
    except BaseException:
        await conn.disconnect(nowait=True)  # replies may be left on the socket
        raise
    finally:
        await pool.release(conn)
    return replies


async def _round_trip(conn: Connection, commands: Sequence[Command]) -> list[Any]:
    await conn.send_packed_command(conn.pack_commands(commands))
    return [await conn.read_response() for _ in commands]
