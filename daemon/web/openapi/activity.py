"""OpenAPI of the activity: per id and minute, every pod's counts, for charts."""

from __future__ import annotations

from typing import Any

from daemon.core.activity import KINDS
from daemon.core.ids import IDS_PATTERN
from daemon.core.wire import ACTIVITY_PATH, TRUNCATED_HEADER
from daemon.query.activity import MAX_ACTIVITY_IDS, MAX_ACTIVITY_MINUTES
from daemon.web.openapi.common import ERRORS, SECURITY, json_content, query_param, ref

_COUNTS = {
    "type": "array",
    "items": {"type": "integer", "minimum": 0},
    "maxItems": MAX_ACTIVITY_MINUTES,
    "description": "One count per minute, aligned with `minutes`.",
}
ACTIVITY_RESPONSE = {
    "type": "object",
    "required": ["namespace", "minutes", "ids"],
    "properties": {
        "namespace": {"type": "string", "enum": ["token", "destination"]},
        "minutes": {
            "type": "array",
            "items": {"type": "string", "format": "date-time"},
            "minItems": 1,
            "maxItems": MAX_ACTIVITY_MINUTES,
            "description": "Each minute's start (RFC 3339, UTC), oldest first; the last is "
            "the current minute, still counting.",
        },
        "ids": {
            "type": "array",
            "maxItems": MAX_ACTIVITY_IDS,
            "items": {
                "type": "object",
                "required": ["id", *KINDS],
                "properties": {"id": {"type": "string"}, **{kind: _COUNTS for kind in KINDS}},
            },
        },
    },
}


_ID = {
    **query_param(
        "id",
        {"type": "array", "items": {"type": "string", "minLength": 1}},
        "One id taken whole, as stored (repeat for several); added to `ids`.",
    ),
    "style": "form",
    "explode": True,
}


def _activity_get() -> dict[str, Any]:
    minutes = {"type": "integer", "minimum": 1, "maximum": MAX_ACTIVITY_MINUTES}
    return {
        "summary": "Per id and minute: events received, cached, errors and rate limited",
        "operationId": "getActivity",
        "security": SECURITY,
        "description": "From every pod (each adds its counts once a second). `received`: "
        "events handed to a sidecar; `cached`: entries written to the id's list; `errors`: "
        "entries written to its errors-only list; `rate_limited`: events its rate limit "
        "kept out of its list. Counts are kept an hour after their hour.",
        "parameters": [
            query_param(
                "namespace",
                {"type": "string", "enum": ["destination", "token"], "default": "destination"},
            ),
            query_param(
                "ids",
                {"type": "string", "maxLength": 256, "pattern": IDS_PATTERN},
                f"Comma-separated ids (at most {MAX_ACTIVITY_IDS}, each meeting the id rule); "
                f"absent (and no `id`): the {MAX_ACTIVITY_IDS} ids written most recently "
                "within the minutes asked for; empty: none.",
            ),
            _ID,
            query_param(
                "minutes",
                {**minutes, "default": MAX_ACTIVITY_MINUTES},
                "How many minutes, ending with the current one.",
            ),
        ],
        "responses": {
            "200": {
                "description": "The counts.",
                "headers": {
                    TRUNCATED_HEADER: {
                        "description": "true when sidecar.api.max_response_bytes left ids out "
                        "(the last ones).",
                        "schema": {"type": "string"},
                    }
                },
                "content": json_content(ref("ActivityResponse")),
            },
            **ERRORS,
        },
    }


def activity_paths() -> dict[str, Any]:
    """The activity's endpoint."""
    return {ACTIVITY_PATH: {"get": _activity_get()}}
