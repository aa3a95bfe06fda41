"""Activity: per id and minute, how many events a pod received, cached, cached as errors
and rate limited, held in memory until the flusher adds them to Redis (once a second).

Pure logic, no I/O. Memory is bounded: at most `cap` cells (namespace, id, minute) are
held at once; the counts of a cell that does not fit are not kept, only counted
(`take_lost`). The flusher empties the cells every second, so the cap bounds the distinct
ids (per minute) a pod can count within one second. Counts are summed per request (the
admission) or per batch (the writers) before they get here: nothing is done per event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from typing import Any

from daemon.core.model import Collection

RECEIVED, CACHED, ERRORS, RATE_LIMITED = range(4)
KINDS = ("received", "cached", "errors", "rate_limited")  # by index: the answer's arrays
MAX_CELLS = 50_000  # (namespace, id, minute) cells held at once, a few MB at most

Cell = tuple[str, str, int]  # namespace, id, minute (seconds since the epoch // 60)
Cells = dict[Cell, list[int]]  # each cell's counts, indexed by RECEIVED .. RATE_LIMITED


class ActivityCounter:
    """One pod's activity counts not yet added to Redis."""

    def __init__(self, cap: int = MAX_CELLS) -> None:
        self.cap = cap  # public so that a test can lower it
        self._cells: Cells = {}
        self._lost = 0

    def _counts(self, cell: Cell) -> list[int] | None:
        counts = self._cells.get(cell)
        if counts is None and len(self._cells) < self.cap:
            counts = self._cells[cell] = [0, 0, 0, 0]
        return counts

    def add(self, namespace: str, id_: str, wall: float, kind: int, n: int = 1) -> None:
        """Count `n` events of `kind` for the id in the minute `wall` falls in."""
        counts = self._counts((namespace, id_, int(wall // 60)))
        if counts is None:
            self._lost += n
        else:
            counts[kind] += n

    def add_admitted(
        self,
        received: Mapping[tuple[Any, str, Collection], int],
        limited: Mapping[tuple[Any, str, Collection], int],
        wall: float,
    ) -> None:
        """One request's counts: received per (namespace, id, all), and limited per
        (namespace, id, collection), of which only the all-events lists' count (an event
        cached in the errors-only list alone is rate limited, as in the metrics)."""
        add = self.add
        for (namespace, id_, _), n in received.items():
            add(namespace, id_, wall, RECEIVED, n)
        for (namespace, id_, collection), n in limited.items():
            if collection is Collection.ALL:
                add(namespace, id_, wall, RATE_LIMITED, n)

    def add_cached(
        self, per_id: Mapping[tuple[Any, str], tuple[Sized, Sized]], wall: float
    ) -> None:
        """One written batch: the entries of each id's all-events and errors-only lists."""
        add = self.add
        for (namespace, id_), (all_values, error_values) in per_id.items():
            if all_values:
                add(namespace, id_, wall, CACHED, len(all_values))
            if error_values:
                add(namespace, id_, wall, ERRORS, len(error_values))

    def take(self) -> Cells:
        """Hand over the cells and start afresh."""
        cells, self._cells = self._cells, {}
        return cells

    def restore(self, cells: Cells) -> None:
        """Take back cells a flush could not write (within the cap; the rest is lost)."""
        for cell, counts in cells.items():
            held = self._counts(cell)
            if held is None:
                self._lost += sum(counts)
                continue
            for kind, n in enumerate(counts):
                held[kind] += n

    def take_lost(self) -> int:
        """The counts not kept since the last call."""
        lost, self._lost = self._lost, 0
        return lost

    def __len__(self) -> int:
        return len(self._cells)
