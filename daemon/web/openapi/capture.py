"""OpenAPI of capture tags (`sidecar.capture`): the entries' `capture` field, the NDJSON
line's, `capture=` on GET and DELETE /api/v1/events/cache, and the answer of a reset by
capture."""

from __future__ import annotations

from typing import Any

from daemon.core.capture import MAX_CAPTURE_BYTES
from daemon.core.ids import TAG_PATTERN
from daemon.core.wire import MAX_QUERY_TEXT
from daemon.query.params import MAX_CAPTURE_RESET_IDS
from daemon.web.openapi.common import query_param

# A tag's bytes are at most MAX_CAPTURE_BYTES (its characters no more than that), and
# the Cc and Cf code points past U+FFFF are stated in words, as for ids.
TAG = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_CAPTURE_BYTES,
    "pattern": TAG_PATTERN,
    "description": f"At most {MAX_CAPTURE_BYTES} bytes (UTF-8), no control or format "
    "characters (Unicode Cc, Cf), no whitespace at its ends.",
}

ENTRY_FIELD = {
    "type": "string",
    "description": "Only on an entry cached with a capture tag (sidecar.capture): the tag. "
    "Jitsu Classic's readers ignore it.",
}

LINE_FIELD = {
    **TAG,
    "description": "A test run's tag: the event bypasses its id's rate limit within the "
    "pod's sidecar.capture.budget_per_minute, and keeps the tag. Not a secret (it may be "
    "logged). A non-empty string of at most 256 bytes, no control or format characters, "
    "no whitespace at its ends; anything else makes the line invalid.",
}

GET_PARAM = query_param("capture", TAG, "Only entries carrying this capture tag.")

DELETE_PARAMS = [
    query_param(
        "capture",
        TAG,
        "Remove only the entries carrying this tag, from the lists of the ids given (at "
        f"most {MAX_CAPTURE_RESET_IDS}), or without ids from those of the "
        f"{MAX_CAPTURE_RESET_IDS} most recently active ids of the namespace (`next_cursor` "
        "pages on). The ids and their other entries stay. Not with `all`.",
    ),
    query_param(
        "cursor",
        {"type": "string", "maxLength": 4 * MAX_QUERY_TEXT},
        "With `capture` and no ids: the `next_cursor` of the previous answer.",
    ),
]

_CAPTURE_ANSWER = {
    "type": "object",
    "required": ["deleted_events", "scanned_ids", "next_cursor"],
    "properties": {
        "deleted_events": {"type": "integer"},
        "scanned_ids": {"type": "integer"},
        "next_cursor": {"type": "string", "nullable": True},
    },
}


def delete_answer(ids_answer: dict[str, Any]) -> dict[str, Any]:
    """DELETE's answer: ids forgotten, or (with `capture`) tagged entries removed."""
    return {"oneOf": [ids_answer, _CAPTURE_ANSWER]}
