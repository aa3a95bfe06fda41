"""Why things fail, grouped: GET /api/v1/errors from the signatures counted as errors
were written (`daemon.store.errors`), never from the error lists.

Counts are kept per minute for the last hour (or the lists' TTL, if shorter): `since`
selects whole minutes (the minute it falls in counts whole). The answer is bounded: at
most MAX_SIGNATURES signatures, MAX_IDS ids each (the most frequent), and
`max_response_bytes` in all; a cut answer says so (`truncated`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from daemon.core.stamp import rfc3339
from daemon.query.errorsquery import ErrorsQuery
from daemon.store.errorread import Found
from daemon.store.storage import Storage

MAX_SIGNATURES = 100  # signatures an answer holds, the most frequent
MAX_IDS = 100  # ids a signature names, the most frequent
_ENVELOPE_BYTES = 512  # the answer around its signatures, and the namespace


@dataclass(frozen=True, slots=True)
class ErrorsAnswer:
    """The answer as JSON, and whether anything was left out of it."""

    body: bytes
    truncated: bool


def _signature(sig: Found) -> tuple[dict[str, Any], bool]:
    """A signature as answered, and whether ids were left out."""
    ids = sorted(sig.ids.items(), key=lambda item: (-item[1], item[0]))
    return {
        "signature": sig.signature,
        "count": sig.count,
        "ids": [{"id": id_, "count": n} for id_, n in ids[:MAX_IDS]],
        "first_seen": rfc3339(sig.first) if sig.first is not None else None,
        "last_seen": rfc3339(sig.last) if sig.last is not None else None,
        "example": sig.example,
    }, len(ids) > MAX_IDS


class ErrorSignatures:
    """Answers GET /api/v1/errors."""

    def __init__(
        self, storage: Storage, max_bytes: int, wall: Callable[[], float] = time.time
    ) -> None:
        self._storage = storage
        self._max_bytes = max_bytes
        self._wall = wall

    def minutes(self, query: ErrorsQuery) -> range:
        """The minutes read: those kept (and the next, for a clock ahead of ours), from the
        one `since` falls in."""
        now = self._wall()
        first = int((now - self._storage.errors.retention_s) // 60)
        if query.since is not None:
            first = max(first, int(query.since.timestamp() // 60))
        return range(first, int(now // 60) + 2)

    async def errors(self, query: ErrorsQuery) -> ErrorsAnswer:
        """The signatures, most frequent first, within the answer's bounds."""
        found, total = await self._storage.errors.read(
            query.namespace, self.minutes(query), query.ids, MAX_SIGNATURES, MAX_IDS
        )
        truncated = total > len(found)
        room = self._max_bytes - _ENVELOPE_BYTES
        pieces: list[bytes] = []
        for sig in found:
            doc, cut_ids = _signature(sig)
            piece = orjson.dumps(doc)
            if len(piece) + 1 > room:
                truncated = True
                break
            room -= len(piece) + 1
            pieces.append(piece)
            truncated |= cut_ids
        head = orjson.dumps(str(query.namespace))
        body = b'{"namespace":%s,"signatures":[%s]}' % (head, b",".join(pieces))
        return ErrorsAnswer(body, truncated)
