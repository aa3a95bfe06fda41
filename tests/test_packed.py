"""The write path's hand-packed commands (daemon.store.packed) on a real server: the same
effect and replies as redis-py's pipeline, and a failed batch leaves no reply behind."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from daemon.store.packed import PackedPipeline, write_pipeline


def fill(pipe: Any, prefix: str) -> None:
    """Every command the write path packs, with awkward arguments: empty values, binary
    values, CRLF inside, non-ASCII keys and members, float scores."""
    pipe.lpush(f"{prefix}:list:é", b"", b"a\r\nb", bytes(range(256)), b"x" * 70_000)
    pipe.zadd(f"{prefix}:z", {"m-1": 1.5, "ü\0member": 1e-6 + 1700000000.25, "m-3": 0})
    pipe.expireat(f"{prefix}:z", 4_102_444_800)
    pipe.expire(f"{prefix}:list:é", 3600)
    pipe.ltrim(f"{prefix}:list:é", 0, 2)
    pipe.hincrby(f"{prefix}:h", "7:received", 3)
    pipe.hincrby(f"{prefix}:h", "7:received", -1)
    pipe.zremrangebyscore(f"{prefix}:z", "-inf", 1.0)
    pipe.publish(f"{prefix}:channel", b"frame\r\n")


def state(client: redis.Redis, prefix: str) -> dict[str, Any]:
    return {
        "list": client.lrange(f"{prefix}:list:é", 0, -1),
        "z": client.zrange(f"{prefix}:z", 0, -1, withscores=True),
        "z_expires": client.expiretime(f"{prefix}:z"),
        "list_ttl": client.ttl(f"{prefix}:list:é") > 3500,
        "h": client.hgetall(f"{prefix}:h"),
    }


async def test_packed_commands_do_what_the_pipeline_does(
    redis_url: str, redis_client: redis.Redis
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        packed = write_pipeline(client)
        assert isinstance(packed, PackedPipeline)
        fill(packed, "ours")
        assert len(packed) == 9
        ours = await packed.execute()
        assert len(packed) == 0 and await packed.execute() == []  # emptied for reuse
        pipe = client.pipeline(transaction=False)
        fill(pipe, "redispy")
        theirs = await pipe.execute()
    finally:
        await client.aclose()
    # the raw replies; redis-py's callbacks turn OK and 1 into True
    assert [True if r in (b"OK", 1) else r for r in ours] == [
        True if r is True else r for r in theirs
    ]
    assert state(redis_client, "ours") == state(redis_client, "redispy")
    # LPUSH leaves the last value first; LTRIM 0 2 keeps three of four
    assert state(redis_client, "ours")["list"] == [b"x" * 70_000, bytes(range(256)), b"a\r\nb"]
    assert len(state(redis_client, "ours")["z"]) == 2  # the score 0 pruned (<= 1.0)


async def test_an_error_reply_raises_and_the_connection_is_not_reused_with_replies_left(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set("a-string", "x")
    client = aioredis.Redis.from_url(redis_url, max_connections=1)
    try:
        packed = PackedPipeline(client)
        packed.lpush("a-string", b"v")  # WRONGTYPE
        packed.lpush("fine", b"v")
        packed.hincrby("h", "f", 1)
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await packed.execute()
        # the one pooled connection still answers its own commands, not the old replies
        assert await client.incrby("counter", 5) == 5
        packed.hincrby("h", "f", 10)
        assert await packed.execute() == [11]
    finally:
        await client.aclose()
    assert redis_client.lrange("fine", 0, -1) == [b"v"]  # Redis ran the rest of the batch
