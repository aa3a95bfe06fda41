"""Redaction: configured JSON paths masked in an event's `original` before it is cached.

Events may carry personal data (`eventn_ctx.user.email`, IP addresses). An operator lists
dotted paths under `server.cache.events.redact`; each value found at such a path in the
`original` object is replaced by REDACTED_VALUE before the entry is encoded and queued,
so it never reaches Redis. A `*` segment matches every key of an object or every element
of an array (`items.*.email`). Keys that contain a dot cannot be addressed.

With no paths configured the ingest does not call this module at all (zero cost). With
paths, an event is parsed and re-encoded only when a path matched. An original that
matched but cannot be written back (nested deeper than orjson writes, 254 levels) is
never stored as it came: it is replaced by a small object that says why
(`unredactable`), and the caller counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

REDACTED_VALUE = "[redacted]"
WILDCARD = "*"


class RedactPathError(ValueError):
    """A configured path is empty or has an empty segment."""


def unredactable(text: str, reason: str) -> str:
    """The original stored in place of one that could not be redacted: JSON object text
    (as every stored original is) saying why, and how large the original was."""
    return orjson.dumps({"redaction_failed": reason, "original_bytes": len(text.encode())}).decode()


class Unredactable(Exception):
    """A path matched but the redacted original cannot be written back."""


def parse_path(text: str) -> tuple[str, ...]:
    """`eventn_ctx.user.email` -> ("eventn_ctx", "user", "email")."""
    segments = tuple(text.strip().split("."))
    if not text.strip() or any(not s for s in segments):
        raise RedactPathError(f"not a dotted JSON path: {text!r}")
    return segments


class Redactor:
    """Masks the configured paths in JSON object text; returns the text unchanged otherwise."""

    def __init__(self, paths: Sequence[str], value: str = REDACTED_VALUE) -> None:
        self._paths = [parse_path(p) for p in paths]
        self._value = value

    def __bool__(self) -> bool:
        return bool(self._paths)

    def redact_text(self, text: str) -> str:
        """The JSON text with every configured path masked (not JSON, or no match: as is)."""
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        if not isinstance(doc, dict | list):
            return text
        changed = False
        for path in self._paths:
            changed |= _mask(doc, path, self._value)
        if not changed:
            return text
        try:
            return orjson.dumps(doc).decode()
        except orjson.JSONEncodeError as e:
            raise Unredactable(f"nested too deeply to write back redacted ({e})") from e


def _mask(node: Any, path: tuple[str, ...], value: str) -> bool:
    """Mask `path` below `node` in place; True when anything was masked."""
    head, rest = path[0], path[1:]
    children: list[tuple[Any, Any]]
    if isinstance(node, dict):
        keys = list(node) if head == WILDCARD else ([head] if head in node else [])
        children = [(node, k) for k in keys]
    elif isinstance(node, list) and (head == WILDCARD or head.isdigit()):
        indexes = range(len(node)) if head == WILDCARD else [int(head)]
        children = [(node, i) for i in indexes if i < len(node)]
    else:
        return False
    changed = False
    for parent, key in children:
        if rest:
            changed |= _mask(parent[key], rest, value)
        elif parent[key] != value:
            parent[key] = value
            changed = True
    return changed
