"""JSON checked without being built, for the events that rate limiting drops: on a busy
key every request, where building an event's fields only to drop them would cost several
times what checking them does.

simdjson validates the whole document (grammar, UTF-8, depth) and builds nothing. Where
it and orjson disagree, simdjson is the stricter one (an integer beyond 64 bits, a
depth over 1024): the caller then parses with orjson as before, so nothing simdjson
accepts here is something orjson would refuse. Bodies over SIMDJSON_MAX_BYTES are left
to orjson, so the parser's buffers (a few times the largest document it has read) stay
small. One parser, used on the event loop's thread only; every document is dropped
before the next is read (the parser refuses to read while one is still referenced).
"""

from __future__ import annotations

from typing import Any

import orjson
import simdjson

from daemon.core.ids import check_id

SIMDJSON_MAX_BYTES = 64 * 1024
_parser = simdjson.Parser()
_OBJECT = simdjson.Object


def is_one_object(body: bytes) -> bool:
    """The body is one valid JSON object (an event that is not malformed)."""
    if len(body) <= SIMDJSON_MAX_BYTES:
        try:
            return type(_parser.parse(body)) is _OBJECT
        except (ValueError, RuntimeError):
            pass  # not JSON, or JSON simdjson does not take: orjson decides
    try:
        return type(orjson.loads(body)) is dict
    except orjson.JSONDecodeError:
        return False


def common_token_line_id(line: bytes) -> str | None:
    """The id of a valid NDJSON line of the common shape, exactly
    {"namespace": "token", "id": <id>, "original": {...}} in any order and no other or
    repeated field; None for any other line (the caller reads it as usual)."""
    if len(line) > SIMDJSON_MAX_BYTES:
        return None
    try:
        return _token_id(_parser.parse(line))
    except (ValueError, RuntimeError):
        return None


def _token_id(doc: Any) -> str | None:
    # simdjson counts a repeated field twice: three fields are three distinct ones here.
    if type(doc) is not _OBJECT or len(doc) != 3 or doc.get("namespace") != "token":
        return None
    id_ = doc.get("id")
    if type(id_) is not str or check_id(id_) is not None:
        return None
    return id_ if type(doc.get("original")) is _OBJECT else None
