"""The write path's commands packed as RESP here, and sent on one pooled connection.

redis-py encodes every argument in Python and packs command by command, and it hands a
pipeline of 1,000 commands or more to a worker thread to pack (the hand-off and the GIL
cost the loop more). A cached event is one value of one LPUSH, so that packing is paid
per cached event. Here, framing a value is one small bytes format, and the pieces are
joined once: a transport's `writelines` of thousands of small pieces costs more than the
copy. (The measurements are in bench/RESULTS.md, P1bcpu.)

`PackedPipeline` takes the few commands the write path sends, with the signatures of
redis-py's pipeline (so `daemon.store.journey` fills either), on one Redis or
Sentinel's master; on Cluster the write path keeps redis-py's cluster pipeline, which
routes each key to its node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from daemon.store.client import RedisClient
from daemon.store.roundtrip import round_trip

_CRLF = b"\r\n"


def write_pipeline(client: RedisClient) -> Any:
    """A PackedPipeline on one Redis or Sentinel's master; redis-py's pipeline on Cluster."""
    if isinstance(client, Redis):
        return PackedPipeline(client)
    return client.pipeline(transaction=False)


class PackedPipeline:
    """Commands queued as RESP; `execute()` sends them in one write, reads every reply."""

    __slots__ = ("_client", "_count", "_parts")

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._parts: list[bytes] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def lpush(self, key: str, *values: bytes) -> None:
        self._head(b"LPUSH", key, len(values))
        parts = self._parts
        for value in values:
            parts += (b"$%d\r\n" % len(value), value, _CRLF)

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        self._head(b"ZADD", key, 2 * len(mapping))
        parts = self._parts
        for member, score in mapping.items():
            s, m = repr(score).encode(), member.encode()
            parts.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(s), s, len(m), m))

    def expireat(self, key: str, when: int) -> None:
        self._small(b"EXPIREAT", key, when)

    def expire(self, key: str, seconds: int) -> None:
        self._small(b"EXPIRE", key, seconds)

    def ltrim(self, key: str, start: int, end: int) -> None:
        self._small(b"LTRIM", key, start, end)

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self._small(b"HINCRBY", key, field, amount)

    def zremrangebyscore(self, key: str, low: float | str, high: float | str) -> None:
        self._small(b"ZREMRANGEBYSCORE", key, low, high)

    def publish(self, channel: str, message: bytes) -> None:
        self._head(b"PUBLISH", channel, 1)
        self._parts += (b"$%d\r\n" % len(message), message, _CRLF)

    def _small(self, command: bytes, key: str, *args: str | int | float) -> None:
        """A command of a few short arguments (text, integers, floats as redis-py writes
        them)."""
        self._head(command, key, len(args))
        for arg in args:
            data = (repr(arg) if isinstance(arg, float) else str(arg)).encode()
            self._parts.append(b"$%d\r\n%b\r\n" % (len(data), data))

    def _head(self, command: bytes, key: str, more: int) -> None:
        """The array's length, the command's name and the key; `more` arguments follow."""
        k = key.encode()
        self._parts.append(
            b"*%d\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (more + 2, len(command), command, len(k), k)
        )
        self._count += 1

    async def execute(self) -> list[Any]:
        """The replies, in order; an error reply raises (redis-py's ResponseError) and the
        connection is dropped, as is any with replies left unread."""
        if not self._count:
            return []
        packed, count = [b"".join(self._parts)], self._count
        self._parts, self._count = [], 0
        return await round_trip(self._client, lambda _: packed, count)
