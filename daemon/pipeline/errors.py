"""Error signatures counted as errors are written, and added to Redis once a second.

The writers hand each batch they wrote to `ErrorTally.add` (a loop over the batch, no
Redis command): an entry with an error has its message reduced to a signature
(`daemon.core.signature`, memoised) and counted per namespace, minute, signature and id,
with its first and last time and the newest entry as an example. `ErrorFlusher` moves
the tally to Redis once a second (`daemon.store.errors`), so the commands grow with the
signatures and ids of a second, not with the errors: `/api/v1/errors` reads the counts
and never the error lists.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from daemon.core.model import Namespace, RedisOperation
from daemon.core.signature import signature
from daemon.pipeline.queue import QueuedEntry
from daemon.store.client import StoreUnavailable
from daemon.store.errors import ErrorStore, Seen
from daemon.store.health import RedisHealth

# Distinct signatures a pod counts per namespace and minute (more: not counted, the
# store keeps the most frequent MAX_SIGNATURES of every pod's anyway), and ids per
# signature a flush names (more: counted in the signature, not per id).
MAX_SIGNATURES = 200
MAX_IDS_PER_FLUSH = 1000
MAX_PENDING = 2000  # signatures kept for a retry while Redis is away
# The examples' bytes a tally holds until its flush (each the newest entry of its
# signature, as stored): past this, a signature keeps the example it has (or none).
MAX_EXAMPLE_BYTES = 16 * 1024 * 1024

Key = tuple[Namespace, int, str]  # namespace, minute, signature


@dataclass(slots=True)
class Tally:
    """This pod's counts since the last flush; `skipped`: errors past MAX_SIGNATURES."""

    seen: dict[Key, Seen] = field(default_factory=dict)
    signatures: dict[tuple[Namespace, int], int] = field(default_factory=dict)
    skipped: int = 0
    example_bytes: int = 0  # of the examples held


class ErrorTally:
    """Counts the errors the writers wrote, per signature, until the next flush."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tally = Tally()

    def add(self, batch: Iterable[QueuedEntry]) -> None:
        """Count the entries of a written batch that carry an error."""
        now = self._clock()
        minute = int(now // 60)
        tally = self._tally
        seen, per_minute = tally.seen, tally.signatures
        for entry in batch:
            message = entry.error
            if not message:
                continue
            ns = entry.namespace
            key = (ns, minute, signature(message))
            found = seen.get(key)
            if found is None:
                n = per_minute.get((ns, minute), 0)
                if n >= MAX_SIGNATURES:
                    tally.skipped += 1
                    continue
                per_minute[ns, minute] = n + 1
                found = seen[key] = Seen(first=now)
            found.count += 1
            found.last = now
            grows = len(entry.data) - len(found.example)
            if tally.example_bytes + grows <= MAX_EXAMPLE_BYTES:
                tally.example_bytes += grows
                found.example, found.example_id = entry.data, entry.id
            ids = found.ids
            if entry.id in ids or len(ids) < MAX_IDS_PER_FLUSH:
                ids[entry.id] = ids.get(entry.id, 0) + 1

    def take(self) -> Tally:
        """What was counted since the last call; the tally starts again."""
        taken, self._tally = self._tally, Tally()
        return taken


class ErrorFlusher:
    """Adds this pod's tally to Redis; keeps it for the next try when Redis fails."""

    def __init__(self, tally: ErrorTally, store: ErrorStore, health: RedisHealth) -> None:
        self._tally = tally
        self._store = store
        self._health = health
        self._retry: dict[Key, Seen] = {}

    async def flush_once(self) -> None:
        """Write what was counted since the last flush (and what a failed one kept)."""
        pending = self._tally.take().seen
        for key, seen in self._retry.items():
            now = pending.get(key)
            pending[key] = seen if now is None else seen.merged(now)
        self._retry = {}
        if not pending:
            return
        try:
            await self._store.add(pending)
        except StoreUnavailable as e:
            self._health.failed(e, RedisOperation.ERRORS)
            if len(pending) <= MAX_PENDING:
                self._retry = pending
