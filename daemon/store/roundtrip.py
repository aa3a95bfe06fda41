"""Commands already packed, written on a pooled connection and their replies read back.

The hand-off that `daemon.store.reads` and `daemon.store.packed` share, outside redis-py's
pipeline machinery (its command stack, response callbacks and per-pipeline hooks cost
more per command than the command costs Redis). A connection error is retried on a
fresh connection as the client's `Retry` says, as the pipeline would; any failure drops
the connection, so that no reply is left on it for the next borrower.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection

Packer = Callable[[Connection], Sequence[bytes]]  # the commands' RESP, in pieces


async def round_trip(client: Redis, pack: Packer, count: int) -> list[Any]:
    """The `count` replies to the commands `pack` gives for the borrowed connection (its
    encoder), in order."""
    pool = client.connection_pool
    conn: Connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        packed = pack(conn)
        replies: list[Any] = await conn.retry.call_with_retry(
            lambda: _send_and_read(conn, packed, count),
            lambda error: conn.disconnect(nowait=True),
        )
    except BaseException:
        await conn.disconnect(nowait=True)  # replies may be left on the socket
        raise
    finally:
        await pool.release(conn)
    return replies


async def _send_and_read(conn: Connection, packed: Sequence[bytes], count: int) -> list[Any]:
    await conn.send_packed_command(packed)
    return [await conn.read_response() for _ in range(count)]
