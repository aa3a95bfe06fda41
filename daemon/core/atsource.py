"""Limits at the source: the count lines clients send for the events they held back, and
the `limited` entries of the NDJSON answer that let them hold events back.

Pure logic, no I/O. A client that was told an id's bucket is empty until some time does
not send the events the sidecar would certainly limit before then; it sends their number
instead, as `{"namespace", "id", "collection", "limited_at_source": n}`, so that the
sidecar's counts (`received`, `rate_limited`, `last_minute_limited`) stay exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from daemon.core.ids import check_id
from daemon.core.model import Collection, Namespace

AT_SOURCE = "limited_at_source"
# What one count line may carry: a client holds back at most the events of about a second
# between two requests; a larger count is split over several lines.
MAX_AT_SOURCE = 1_000_000
_FIELDS = frozenset(("namespace", "id", "collection", AT_SOURCE))
_NAMESPACES = {ns.value: ns for ns in Namespace}
_COLLECTIONS = {c.value: c for c in Collection}

AtSourceKey = tuple[Namespace, str, Collection]
AtSourceCounts = dict[AtSourceKey, int]


def count_line(doc: Mapping[str, Any]) -> tuple[AtSourceKey, int] | str:
    """A count line's key and count, or the message saying why the line is invalid."""
    if doc.keys() != _FIELDS:
        return f'a count line holds exactly "namespace", "id", "collection" and "{AT_SOURCE}"'
    ns = _NAMESPACES.get(doc["namespace"]) if type(doc["namespace"]) is str else None
    if ns is None:
        return '"namespace" must be "token" or "destination"'
    id_ = doc["id"]
    problem = check_id(id_)
    if problem:
        return f'"id" {problem}'
    collection = _COLLECTIONS.get(doc["collection"]) if type(doc["collection"]) is str else None
    if collection is None:
        return '"collection" must be "all" or "error"'
    n = doc[AT_SOURCE]
    if type(n) is not int or not 0 < n <= MAX_AT_SOURCE:
        return f'"{AT_SOURCE}" must be an integer from 1 to {MAX_AT_SOURCE}'
    return (ns, id_, collection), n


# The formatted seconds of recent `until`s: the ids of one request mostly refill within
# the same few seconds, so each answer formats a second once.
_SECONDS: dict[int, str] = {}
_MAX_SECONDS = 256


def rfc3339(wall: float) -> str:
    """A wall time as RFC 3339 UTC to the millisecond, rounded down (a client that
    resumes sending a little early loses nothing: the sidecar limits as usual)."""
    ms = int(wall * 1000)
    second, millis = divmod(ms, 1000)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) >= _MAX_SECONDS:
            _SECONDS.clear()
        stamp = datetime.fromtimestamp(second, UTC)
        prefix = _SECONDS[second] = stamp.strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{prefix}{millis:03d}Z"


def limited_entry(ns: str, id_: str, both: bool, until: float) -> dict[str, Any]:
    """One entry of the answer's `limited` list."""
    return {
        "namespace": ns,
        "id": id_,
        "collections": ["all", "error"] if both else ["all"],
        "until": rfc3339(until),
    }
