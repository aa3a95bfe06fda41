"""Limits at the source: events the sidecar would certainly rate limit are held back.

The sidecar's NDJSON answer names, among a request's ids, those whose bucket is empty and
until when (`limited`). Until then an event of such an id that goes to the all-events
list only (a parsed object, or a raw body the caller vouches is one JSON object, with no
`error`) is not sent, nor any event when both lists are limited; never one with a
capture tag. What was held back is counted per namespace, id and collection and sent as
count lines at the head of the next request, or alone within a second, so that the
sidecar's counts stay exact. Only a sidecar that answered with `limited` gets them.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

COUNT_PREFIX = b'{"limited_at_source":'
MAX_AT_SOURCE = 1_000_000  # the sidecar's bound per count line
MAX_COUNT_LINES = 1000  # count lines at the head of one request; the rest wait
MAX_LIMITED_IDS = 10_000  # ids remembered as limited; expired ones make room
SEND_WITHIN_S = 1.0  # counts go out alone when no request carried them this long
_SPACE = b" \t\r\n"


def one_object(body: Any, vouched: bool) -> bool:
    """Whether the event is known to be one JSON object (goes to the all list only)."""
    if isinstance(body, dict):
        return True
    if not vouched:
        return False
    if isinstance(body, str):
        return body.lstrip(" \t\r\n")[:1] == "{"
    if isinstance(body, (bytes, bytearray, memoryview)):
        head = bytes(body[:1])
        return head == b"{" or (
            head in (b" ", b"\t", b"\r", b"\n") and bytes(body).lstrip(_SPACE)[:1] == b"{"
        )
    return False


def _wall(text: str) -> float:
    """An RFC 3339 time as seconds since the epoch (Python 3.9 reads no "Z")."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).timestamp()


class Holds:
    """The limited ids the sidecar named, and the counts of what was held back."""

    def __init__(self) -> None:
        self.until: dict[str, tuple[float, bool]] = {}  # token id: (until, both lists)
        self.supported = False  # the last 202 carried `limited`
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = {}  # (token id, collection): events
        self.first = 0.0  # when the oldest unsent count was made (0: none)
        self.held = 0

    def hold(self, token_id: str, body: Any, error: Any, vouched: bool, now: float) -> bool:
        """Count the event as held back, when the sidecar would certainly limit it."""
        entry = self.until.get(token_id)
        if entry is None or now >= entry[0]:
            return False
        both = entry[1]
        if error is not None and error != "":
            if not both:
                return False
        elif not one_object(body, vouched):
            return False
        with self.lock:
            counts = self.counts
            key = (token_id, "all")
            counts[key] = counts.get(key, 0) + 1
            if error:
                key = (token_id, "error")
                counts[key] = counts.get(key, 0) + 1
            if not self.first:
                self.first = now
            self.held += 1
        return True

    def answered(self, answer: dict[str, Any], now: float) -> None:
        """Read a 202's `limited` (a sidecar without it gets no count lines)."""
        limited = answer.get("limited")
        if not isinstance(limited, list):
            self.supported = False
            self.until = {}
            return
        self.supported = True
        until = self.until
        if len(until) + len(limited) > MAX_LIMITED_IDS:
            until = self.until = {k: v for k, v in until.items() if v[0] > now}
        for entry in limited:
            try:
                if entry["namespace"] != "token" or len(until) >= MAX_LIMITED_IDS:
                    continue
                until[str(entry["id"])] = (_wall(entry["until"]), "error" in entry["collections"])
            except (KeyError, TypeError, ValueError):
                continue

    def due(self, now: float) -> bool:
        """Counts wait that no request carried for SEND_WITHIN_S."""
        return bool(self.first) and now - self.first >= SEND_WITHIN_S

    def take_lines(self) -> list[bytes]:
        """The count lines for the head of the next request (none to an older sidecar:
        what it would not understand is forgotten, the events stay counted held back)."""
        if not self.first:
            return []
        with self.lock:
            counts, self.counts, self.first = self.counts, {}, 0.0
            if len(counts) > MAX_COUNT_LINES:
                keys = list(counts)[MAX_COUNT_LINES:]
                self.counts = {k: counts.pop(k) for k in keys}
                self.first = 1e-9  # due at once: more lines wait
        if not self.supported:
            return []
        lines = []
        for (token_id, collection), n in counts.items():
            while n > 0:
                part = min(n, MAX_AT_SOURCE)
                n -= part
                lines.append(
                    b"%s%d,%s}"
                    % (
                        COUNT_PREFIX,
                        part,
                        json.dumps(
                            {"namespace": "token", "id": token_id, "collection": collection},
                            ensure_ascii=False,
                        )[1:-1].encode("utf-8", "backslashreplace"),
                    )
                )
        return lines


def count_lines_in(batch: list[bytes]) -> int:
    """How many count lines head the batch (they are not events)."""
    n = 0
    while n < len(batch) and batch[n].startswith(COUNT_PREFIX):
        n += 1
    return n
