"""Error signatures in Redis: counted per namespace and minute, read without the lists.

Per namespace and minute `m` (`daemon.store.keys.errors_key`), with `h` a signature's
hash (16 hex digits):
- `events_cache:errors:<ns>:<m>` Sorted Set h -> errors counted (ZINCRBY), cut to the
  MAX_SIGNATURES most frequent after each flush (ZREMRANGEBYRANK);
- `...:<m>:first` and `...:<m>:last` Sorted Sets h -> first and last time seen (one
  `ZADD LT` and one `ZADD GT` a flush: exact whichever pod flushes first);
- `...:<m>:sigs` Hash h -> `{"signature", "id", "example"}` (the newest example entry,
  its long fields cut to EXAMPLE_FIELD_BYTES; one multi-field HSET a flush);
- `...:<m>:ids:<h>` Sorted Set id -> errors counted, cut to MAX_IDS most frequent.
Every key expires (EXPIREAT, once per key and pod) `retention_s` after its minute ends:
the last hour, or the lists' TTL if shorter. Every command touches one key (Cluster).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from daemon.core.cut import cut
from daemon.core.entry import decode
from daemon.store.client import RedisClient, redis_call
from daemon.store.errorread import Found, read_signatures
from daemon.store.keys import errors_key

RETENTION_S = 3600  # how long a minute's counts are kept (or the lists' TTL, if shorter)
MAX_SIGNATURES = 200  # signatures kept per namespace and minute, the most frequent
MAX_IDS = 1000  # ids kept per signature and minute, the most frequent
EXAMPLE_BYTES = 4096  # an example entry longer than this is stored cut
EXAMPLE_FIELD_BYTES = 1024  # to this many bytes of JSON per field


def signature_hash(text: str) -> str:
    """The short name of a signature in key names and members."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class Seen:
    """One signature of one namespace and minute, as one pod counted it."""

    first: float
    last: float = 0.0
    count: int = 0
    ids: dict[str, int] = field(default_factory=dict)
    example: bytes = b""
    example_id: str = ""

    def merged(self, newer: Seen) -> Seen:
        """This tally and a newer one of the same signature and minute, as one."""
        ids = dict(self.ids)
        for id_, n in newer.ids.items():
            ids[id_] = ids.get(id_, 0) + n
        return Seen(
            min(self.first, newer.first),
            max(self.last, newer.last),
            self.count + newer.count,
            ids,
            newer.example or self.example,
            newer.example_id if newer.example else self.example_id,
        )


def example(raw: bytes) -> Any:
    """An entry as an example: as answered, its long fields cut when it is long; None
    when the tally held none (`daemon.pipeline.errors.MAX_EXAMPLE_BYTES`)."""
    if not raw:
        return None
    return cut(raw, EXAMPLE_FIELD_BYTES) if len(raw) > EXAMPLE_BYTES else decode(raw)


class ErrorStore:
    """Adds pods' tallies to Redis (`add`), reads them (`read`, `daemon.store.errorread`)
    and forgets ids (`forget`)."""

    def __init__(self, client: RedisClient, retention_s: int) -> None:
        self.client = client
        self.retention_s = retention_s
        self._expiring: dict[int, set[str]] = {}  # minute -> keys given their EXPIREAT

    async def add(self, tally: Mapping[tuple[Any, int, str], Seen]) -> None:
        """One pipeline: the tally's counts, times and examples, the cuts, the EXPIREATs."""
        pipe = self.client.pipeline(transaction=False)
        minutes: dict[tuple[str, int], dict[str, Seen]] = {}
        for (namespace, minute, text), seen in tally.items():
            minutes.setdefault((namespace, minute), {})[text] = seen
        new: dict[int, set[str]] = {}
        for (namespace, minute), signatures in minutes.items():
            keys = self._add_minute(pipe, namespace, minute, signatures)
            expire_at = (minute + 1) * 60 + self.retention_s
            known = self._expiring.get(minute, set())
            for key in keys:
                if key not in known:
                    pipe.expireat(key, expire_at)
                    new.setdefault(minute, set()).add(key)
        async with redis_call():
            await pipe.execute()
        for minute, written in new.items():
            self._expiring.setdefault(minute, set()).update(written)
        newest = max(self._expiring, default=0)
        self._expiring = {m: k for m, k in self._expiring.items() if m >= newest - 2}

    @staticmethod
    def _add_minute(
        pipe: Any, namespace: str, minute: int, signatures: dict[str, Seen]
    ) -> list[str]:
        """Queue one minute's signatures on `pipe`; the keys written."""
        counts = errors_key(namespace, minute)
        firsts: dict[str, float] = {}
        lasts: dict[str, float] = {}
        docs: dict[str, bytes] = {}
        keys = [counts, f"{counts}:first", f"{counts}:last", f"{counts}:sigs"]
        for text, seen in signatures.items():
            h = signature_hash(text)
            pipe.zincrby(counts, seen.count, h)
            ids_key = errors_key(namespace, minute, f"ids:{h}")
            for id_, n in seen.ids.items():
                pipe.zincrby(ids_key, n, id_)
            pipe.zremrangebyrank(ids_key, 0, -(MAX_IDS + 1))
            keys.append(ids_key)
            firsts[h], lasts[h] = seen.first, seen.last
            doc = {"signature": text, "id": seen.example_id, "example": example(seen.example)}
            docs[h] = orjson.dumps(doc)
        pipe.zremrangebyrank(counts, 0, -(MAX_SIGNATURES + 1))
        pipe.zadd(keys[1], firsts, lt=True)
        pipe.zadd(keys[2], lasts, gt=True)
        pipe.hset(keys[3], mapping=docs)
        return keys

    async def read(
        self,
        namespace: str,
        minutes: Sequence[int],
        ids: Sequence[str] | None,
        top: int,
        per_id: int,
    ) -> tuple[list[Found], int]:
        """The `top` most frequent signatures of `minutes` (`errorread.read_signatures`)."""
        return await read_signatures(self.client, namespace, minutes, ids, top, per_id)

    async def forget(self, namespace: str, ids: Sequence[str] | None, now_s: int) -> None:
        """Forget `ids` (None: every id) in the namespace's signatures: their counts, and
        the examples they gave (the signature stays, with no example)."""
        minutes = range((now_s - self.retention_s) // 60 - 1, now_s // 60 + 2)
        pipe = self.client.pipeline(transaction=False)
        for minute in minutes:
            pipe.zrange(errors_key(namespace, minute), 0, -1)
            pipe.hgetall(errors_key(namespace, minute, "sigs"))
        async with redis_call():
            replies = iter(await pipe.execute())
        found = [(m, [h.decode() for h in next(replies)], next(replies)) for m in minutes]
        if ids is None:
            await self._delete_all(namespace, found)
        elif ids:
            await self._forget_ids(namespace, ids, found)

    async def _delete_all(self, namespace: str, found: list[tuple[int, list[str], Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for minute, hashes, _ in found:
            counts = errors_key(namespace, minute)
            for key in (counts, f"{counts}:first", f"{counts}:last", f"{counts}:sigs"):
                pipe.delete(key)
            for h in hashes:
                pipe.delete(errors_key(namespace, minute, f"ids:{h}"))
        async with redis_call():
            await pipe.execute()

    async def _forget_ids(
        self, namespace: str, ids: Sequence[str], found: list[tuple[int, list[str], Any]]
    ) -> None:
        pipe = self.client.pipeline(transaction=False)
        where = [(m, h) for m, hashes, _ in found for h in hashes]
        for minute, h in where:
            pipe.zmscore(errors_key(namespace, minute, f"ids:{h}"), list(ids))
        async with redis_call():
            scores = await pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        for (minute, h), counted in zip(where, scores, strict=True):
            removed = sum(int(n) for n in counted if n)
            if removed:
                pipe.zrem(errors_key(namespace, minute, f"ids:{h}"), *ids)
                pipe.zincrby(errors_key(namespace, minute), -removed, h)
        erased = set(ids)
        for minute, _, docs in found:
            for h, raw in docs.items():
                doc = orjson.loads(raw)
                if doc.get("id") in erased:
                    doc["id"], doc["example"] = "", None
                    pipe.hset(errors_key(namespace, minute, "sigs"), h, orjson.dumps(doc))
        if len(pipe):
            async with redis_call():
                await pipe.execute()
