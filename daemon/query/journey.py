"""One event's journey: the API key's entries that carry its id and every destination's
outcome for it, from the lists the journey index names (`daemon.store.journey`).

The index says where to look; each entry read is checked again with the same
`event_id_from` rules, so an entry trimmed away or a list reused by other events adds
nothing. Entries found in both an id's all-events and errors-only lists count once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.core.entry import answered
from daemon.core.eventid import EventIdFinder
from daemon.core.model import Namespace
from daemon.query.selection import entry_time, parse_entry
from daemon.store.storage import Storage

# An id of these characters appears in a stored entry's bytes as it is (JSON escapes
# none of them, at either level of the double encoding), so an entry without it can be
# passed over unparsed, unless it holds a \u escape.
_PLAIN = re.compile(r"[^\"\\\x00-\x1f]+")
_ESCAPE = b"\\\\u"  # a \u escape inside the stored original's text
# ... and no JSON writer escapes these as \u either (Go escapes <>&, PHP /, ASCII-only
# writers what is not ASCII): for such an id (a UUID, most ids) the needle alone decides,
# and the second scan of every entry, as long as the first, is saved.
_VERBATIM = re.compile(r"[A-Za-z0-9_.:~+=@ -]+")


class JourneyNotFound(LookupError):
    """No cached entry carries the event id."""


@dataclass(frozen=True, slots=True)
class JourneyAnswer:
    """The journey as the API answers it, and whether it was cut: at `max_response_bytes`,
    or at MAX_JOURNEY_LISTS lists read."""

    doc: dict[str, Any]
    truncated: bool


def outcome(doc: dict[str, Any]) -> str:
    """What a destination made of the event: success, error (or malformed) or skip. A
    destination entry with none of them (never one this sidecar's ingest takes; another
    writer's) is a skip: nothing says it was delivered."""
    if doc.get("success"):
        return "success"
    if doc.get("error") or doc.get("malformed"):
        return "error"
    return "skip"


def _newest_first(entry: dict[str, Any]) -> float:
    return -(entry_time(entry) or 0.0)


class Journeys:
    """Answers GET /api/v1/events/journey."""

    def __init__(
        self,
        storage: Storage,
        finder: EventIdFinder,
        max_bytes: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._finder = finder
        self._max_bytes = max_bytes
        self._wall = wall

    @property
    def finder(self) -> EventIdFinder:
        """How event ids are found (the long poll's `event_id` uses the same rules)."""
        return self._finder

    async def journey(self, event_id: str) -> JourneyAnswer:
        """The token entries and destination outcomes of `event_id`, newest first (the
        destinations by id); JourneyNotFound when no cached entry carries it."""
        found, truncated = await self._storage.journey_lists(event_id, self._wall())
        needle = event_id.encode() if _PLAIN.fullmatch(event_id) else None
        verbatim = _VERBATIM.fullmatch(event_id) is not None
        received: list[dict[str, Any]] = []
        destinations: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        room = self._max_bytes
        for location, entries in found:
            for raw in entries:
                if needle is not None and needle not in raw and (verbatim or _ESCAPE not in raw):
                    continue
                doc = parse_entry(raw)
                uid = doc.get("uid")
                if not isinstance(uid, str) or uid in seen:
                    continue
                if self._finder.find_in_entry(doc) != event_id:
                    continue
                if len(raw) > room:
                    truncated = True
                    continue
                seen.add(uid)
                room -= len(raw)
                if location.namespace is Namespace.TOKEN:
                    received.append(doc)
                else:
                    destinations.append((location.id, doc))
        if not received and not destinations:
            raise JourneyNotFound(event_id)
        received.sort(key=_newest_first)
        destinations.sort(key=lambda d: (d[1].get("destination_id") or d[0], _newest_first(d[1])))
        doc = {
            "event_id": event_id,
            "received": [answered(e) for e in received],
            "destinations": [
                {
                    "destination_id": e.get("destination_id") or id_,
                    "status": outcome(e),
                    "event": answered(e),
                }
                for id_, e in destinations
            ],
        }
        return JourneyAnswer(doc, truncated)
