"""JSON the CLI reads and writes at any depth the daemon stores.

orjson reads 1,024 levels and writes 254. The daemon keeps an ingest's body text as sent
(up to 1,024 levels) and embeds it in its answers a few levels down, so one deep event
could make `events --output json` or `tail` fail with a traceback, or every query that
includes it fail to decode. Past orjson's limits, Python's json module does the work,
with room to recurse for the deepest document the daemon can hold.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

# The daemon's deepest entry (1,024 levels) inside its answer, and Python's own frames.
RECURSION_ROOM = 4000


def loads(data: bytes | str) -> Any:
    """The document; ValueError (json.JSONDecodeError) when it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        with _room():
            return json.loads(data)


def dumps(doc: Any, indent: bool = False) -> str:
    """The document's JSON text (two-space indented with `indent`)."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    except orjson.JSONEncodeError:
        with _room():
            return json.dumps(doc, indent=2 if indent else None, ensure_ascii=False)


@contextmanager
def _room() -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, RECURSION_ROOM))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)
