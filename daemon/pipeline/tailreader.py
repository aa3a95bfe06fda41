"""One live-tail reader on this sidecar: what it watches, and the frames waiting for it.

A stream buffers at most MAX_PENDING_BYTES for a slow reader; beyond that, frames are
counted as missed and the reader is told (`event: gap`), so memory stays bounded per
stream. The hub (`daemon.pipeline.tailhub`) offers each batch's frames to a stream in
one call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

MAX_PENDING_BYTES = 1 << 20  # per stream


@dataclass(frozen=True, slots=True)
class TailFilter:
    """What a stream watches: a namespace, some ids (None: all) and one collection."""

    namespace: str
    ids: frozenset[str] | None
    collection: str  # "all", or "error" for the errors-only lists


class Framing(Protocol):
    """How entries and gaps are framed for the readers (Server-Sent Events: `daemon.web.sse`):
    each entry is framed once, and the same bytes offered to every stream that watches it."""

    def entry(self, namespace: str, id_: str, collection: str, entry: dict[str, Any]) -> bytes:
        """One cached entry, as published and parsed."""

    def gap(self, missed: int | None, reason: str) -> bytes:
        """Events the reader did not get (None: unknown how many)."""

    def uid_of(self, frame: bytes) -> bytes | None:
        """The uid of the entry an entry's frame carries (None: another frame)."""


class Stream:
    """One open live-tail stream: frames waiting for its reader, and what it missed."""

    def __init__(self, tail_filter: TailFilter, framing: Framing) -> None:
        self.filter = tail_filter
        self._framing = framing
        self._pending: list[bytes] = []
        self._size = 0
        self._missed = 0
        self._lost = ""  # the subscription broke: the reader missed an unknown number
        self._closed = False
        self._wake = asyncio.Event()
        self._sent: set[bytes] = set()  # uids the backfill sent: their live frames are not

    def skip(self, uids: set[bytes]) -> None:
        """The backfill sent these entries: drop their frames, queued or to come."""
        self._sent = uids
        kept = [f for f in self._pending if not self._was_sent(f)]
        self._size = sum(len(f) for f in kept)
        self._pending = kept

    def _was_sent(self, frame: bytes) -> bool:
        uid = self._framing.uid_of(frame)
        if uid is not None and uid in self._sent:
            self._sent.discard(uid)  # each entry is published once
            return True
        return False

    def offer(self, frames: list[bytes], size: int) -> None:
        """Queue frames of `size` bytes in all (one call per batch and stream, not per
        frame); those beyond MAX_PENDING_BYTES are counted as missed."""
        if self._sent:
            frames = [f for f in frames if not self._was_sent(f)]
            size = sum(len(f) for f in frames)
        if self._size + size <= MAX_PENDING_BYTES:
            self._pending += frames
            self._size += size
        else:
            for frame in frames:
                if self._size + len(frame) > MAX_PENDING_BYTES:
                    self._missed += 1
                else:
                    self._pending.append(frame)
                    self._size += len(frame)
        self._wake.set()

    def lost(self, reason: str) -> None:
        """The subscription broke: events may have been missed."""
        self._lost = reason
        self._wake.set()

    def close(self) -> None:
        """End the stream (shutdown, or the hub is done with it)."""
        self._closed = True
        self._wake.set()

    async def next_chunk(self) -> bytes | None:
        """What the reader should get next, gap frames included; None when closed."""
        while not (self._pending or self._missed or self._lost or self._closed):
            self._wake.clear()
            await self._wake.wait()
        if self._closed:
            return None
        chunk = b"".join(self._pending)
        if self._missed:
            chunk += self._framing.gap(self._missed, "the reader was too slow")
        if self._lost:
            chunk += self._framing.gap(None, self._lost)
        self._pending, self._size, self._missed, self._lost = [], 0, 0, ""
        return chunk
