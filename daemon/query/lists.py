"""Reading the ids' lists of one query, newest first, in round trips of bounded size.

Memory while answering stays bounded however long the lists and large the entries: no
round trip reads more than its allowance of entries, and the reading stops once the
answer is full. Nothing tells the size of an entry before it is read, so the first round
trip of a query reads blind: at most FIRST_ROUND entries (one id's default `limit`, so a
small query is one round trip), and one per BLIND_BYTES of `max_response_bytes` when that
is smaller (16 MiB, the default, allows 100), as the heads of the ids' lists in order,
with their lengths and limited counts. Each later round reads at most what the answer's
room holds at the largest entry seen so far, at most twice the previous round and at
most MAX_ROUND entries: small entries first cannot lure a round into reading any number
of large ones (MAX_ROUND at most, and only as many as the lists hold). A round covers the
id being read and the next ids that have nothing read yet (one pipeline across ids).

Entries pushed meanwhile shift the positions of a list: each continued read starts at
the last entry read and goes on after it, wherever it now is, so no entry is read twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from daemon.core.model import Collection
from daemon.store.storage import IdEvents, Storage

FIRST_ROUND = 100  # entries, at most, read before any size is known
BLIND_BYTES = 163840  # and at most one per this many bytes of max_response_bytes
GROWTH = 2
MAX_ROUND = 1000  # entries of any round, whatever the sizes seen


class Lists:
    """One query's reading: the ids of a chunk, their heads, then page after page."""

    def __init__(
        self,
        storage: Storage,
        namespace: str,
        collection: Collection,
        count: int,
        max_bytes: int,
    ) -> None:
        self._storage = storage
        self._namespace = namespace
        self._collection = collection
        self._count = count  # at most this many entries of each id
        self._allowance = max(1, min(FIRST_ROUND, max_bytes // BLIND_BYTES))
        self._largest = 0  # bytes of the largest entry read so far
        self._ids: list[str] = []
        self._need: list[int] = []  # entries still to read of each id (0: done)
        self._next: list[int] = []  # where the next read starts
        self._last: list[bytes | None] = []  # the last entry read
        self._pending: list[list[bytes]] = []  # read, not yet taken

    async def open(self, ids: Sequence[str], now_s: int, room: int) -> list[IdEvents]:
        """The next chunk of ids: lengths, limited counts and, while the answer has room
        (bytes), the heads of their lists."""
        heads = []
        left = self._grant(room) if room > 0 and self._count else 0
        for _ in ids:
            heads.append(min(self._count, left))
            left -= heads[-1]
        found = await self._storage.read(self._namespace, ids, self._collection, heads, now_s)
        self._ids = list(ids)
        self._need = [min(f.total, self._count) for f in found]
        self._next, self._last, self._pending = [0] * len(ids), [None] * len(ids), []
        for n, (head, f) in enumerate(zip(heads, found, strict=True)):
            self._pending.append([])
            if head:
                self._next[n] = len(f.entries)
                self._got(n, f.entries, len(f.entries) < head)
        return found

    async def pages(self, n: int, room: Callable[[], int]) -> AsyncIterator[list[bytes]]:
        """Id n's entries a page at a time; `room()`: what the answer can still take."""
        while True:
            page, self._pending[n] = self._pending[n], []
            if page:
                yield page
            if self._need[n] <= 0:
                return
            await self._round(n, room())

    def _grant(self, room: int) -> int:
        """Entries the next round may read."""
        allowance = self._allowance
        if self._largest:
            allowance = max(1, min(allowance, room // self._largest))
        self._allowance = min(allowance * GROWTH, MAX_ROUND)
        return allowance

    async def _round(self, n: int, room: int) -> None:
        left = self._grant(room)
        wanted: list[tuple[int, int, int]] = []  # (id, start, entries)
        for j in range(n, len(self._ids)):
            if left <= 0:
                break
            if self._pending[j] or self._need[j] <= 0 or (j > n and self._last[j]):
                continue
            k = min(self._need[j], left)
            left -= k
            again = 1 if self._last[j] is not None else 0  # the last entry read, again
            wanted.append((j, self._next[j] - again, k + again))
        ranges = [(self._ids[j], start, start + k - 1) for j, start, k in wanted]
        replies = await self._storage.ranges(self._namespace, self._collection, ranges)
        for (j, start, k), page in zip(wanted, replies, strict=True):
            self._next[j] = start + len(page)
            self._largest = max(self._largest, *(len(raw) for raw in page), 0)
            ended = len(page) < k
            last = self._last[j]
            if last is not None:
                at = _index(page, last)
                if at is None:  # the list grew by more than a page, or lost its tail
                    self._need[j] = 0 if ended else self._need[j]
                    continue
                page = page[at + 1 :]
            self._got(j, page, ended)

    def _got(self, n: int, page: list[bytes], ended: bool) -> None:
        """Entries of id n read after those read before; `ended`: its list has no more."""
        self._pending[n] = page
        self._need[n] = 0 if ended else max(0, self._need[n] - len(page))
        if page:
            self._last[n] = page[-1]
            self._largest = max(self._largest, max(len(raw) for raw in page))


def _index(page: list[bytes], raw: bytes) -> int | None:
    for n, item in enumerate(page):
        if item == raw:
            return n
    return None
