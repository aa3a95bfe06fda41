"""Terminal rendering of the cache: aligned columns a person can scan.

An event's status follows Jitsu Classic's UI: success, error, malformed, skip; an entry
with none of them is a success in the token namespace (the ingest took it) and pending
in the destination namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.core.model import Namespace

EVENT_COLUMNS = (("TIME", 27), ("ID", 24), ("STATUS", 9), ("EVENT TYPE / ERROR", 0))
ID_COLUMNS = (
    ("ID", 28),
    ("EVENTS", 7),
    ("ERRORS", 7),
    ("LIMITED/MIN", 11),
    ("LAST EVENT", 27),
    ("LAST ERROR", 0),
)
MAX_CELL = 120


def status(namespace: str, event: dict[str, Any]) -> str:
    """success, error, malformed, skip or pending."""
    if event.get("malformed"):
        return "malformed"
    if event.get("error"):
        return "error"
    if event.get("skip"):
        return "skip"
    if event.get("success") or namespace == Namespace.TOKEN:
        return "success"
    return "pending"


def _event_type(event: dict[str, Any]) -> str:
    original = event.get("original")
    if isinstance(original, dict):
        for key in ("event_type", "type", "event"):
            if isinstance(original.get(key), str):
                return str(original[key])
    return "-"


def _summary(event: dict[str, Any]) -> str:
    """What happened: the error (or skip reason), else the event's type."""
    for key in ("error", "skip"):
        if event.get(key):
            return str(event[key])
    return _event_type(event)


def _cell(value: Any, width: int) -> str:
    text = " ".join(str(value).split())  # one line, whatever the event holds
    limit = width or MAX_CELL
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.ljust(width) if width else text


def row(cells: Sequence[Any], columns: Sequence[tuple[str, int]]) -> str:
    """One line of aligned cells."""
    return "  ".join(_cell(c, w) for c, (_, w) in zip(cells, columns, strict=True)).rstrip()


def header(columns: Sequence[tuple[str, int]]) -> str:
    """The column names."""
    return row([name for name, _ in columns], columns)


def event_row(namespace: str, id_: str, event: dict[str, Any], state: str = "") -> str:
    """An event as one line: time, id, status (`state` when the API said it), type or
    error."""
    cells = (event.get("timestamp", ""), id_, state or status(namespace, event), _summary(event))
    return row(cells, EVENT_COLUMNS)


def id_row(summary: dict[str, Any]) -> str:
    """A summary entry as one line."""
    cells = (
        summary["id"],
        summary["total_events"],
        summary["error_events"],
        summary["last_minute_limited"],
        summary["last_event_at"],
        summary["last_error"] or "",
    )
    return row(cells, ID_COLUMNS)


def event_id(namespace: str, event: dict[str, Any]) -> str:
    """The id an event is cached under: its API key, or its destination."""
    key = "token_id" if namespace == Namespace.TOKEN else "destination_id"
    return str(event.get(key, ""))
