"""OpenAPI of the long poll: GET /api/v1/events/wait."""

from __future__ import annotations

from typing import Any

from daemon.core.eventid import MAX_EVENT_ID
from daemon.core.wire import TRUNCATED_HEADER, WAIT_PATH
from daemon.query.waitquery import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S
from daemon.web.openapi import capture
from daemon.web.openapi.common import ERRORS, SECURITY, error, json_content, query_param, ref
from daemon.web.openapi.query import _ID as ID
from daemon.web.openapi.query import _IDS as IDS
from daemon.web.openapi.query import _NAMESPACE as NAMESPACE
from daemon.web.openapi.query import _STATUS as STATUS
from daemon.web.openapi.query import _TEXT as TEXT
from daemon.web.openapi.query import _TIME as TIME

WAIT_RESPONSE = {
    "type": "object",
    "required": ["matched", "events"],
    "properties": {
        "matched": {
            "type": "boolean",
            "description": "`count` events matched; false: the timeout (or the daemon "
            "stopping) came first, and `events` holds what matched so far.",
        },
        "events": {
            "type": "array",
            "description": "The matching events, oldest first, at most `count`.",
            "items": {
                "type": "object",
                "required": ["namespace", "id", "collection", "event"],
                "properties": {
                    "namespace": {"type": "string", "enum": ["token", "destination"]},
                    "id": {"type": "string"},
                    "collection": {"type": "string", "enum": ["all", "error"]},
                    "event": ref("Event"),
                },
            },
        },
    },
}


def _wait_get() -> dict[str, Any]:
    event_id = {"type": "string", "maxLength": MAX_EVENT_ID, "pattern": "^[^\\u0000]*$"}
    seconds = {"type": "number", "minimum": 0, "default": DEFAULT_TIMEOUT_S}
    return {
        "summary": "Wait until matching events are cached (long poll), from any pod",
        "operationId": "waitEvents",
        "security": SECURITY,
        "description": "Answers as soon as `count` cached events match. Only events cached "
        "after the wait began count, unless `since` is given (then those cached since "
        "then count too). An event cached by another pod just as the wait begins is not "
        "missed. At most sidecar.api.max_waits open per pod. Bounded by "
        f"sidecar.api.max_response_bytes (`{TRUNCATED_HEADER}`). For tests and CI.",
        "parameters": [
            NAMESPACE,
            IDS,
            ID,
            STATUS,
            query_param(
                "event_id",
                event_id,
                "Only the event with this id, found by sidecar.journey.event_id_from (400 "
                "when that is empty).",
            ),
            query_param("q", TEXT, "Only events that contain this text (any case)."),
            capture.GET_PARAM,
            query_param("since", TIME, "Count events cached at or after this time too."),
            query_param("count", {"type": "integer", "minimum": 1, "default": 1}),
            query_param(
                "timeout",
                seconds,
                f"Seconds to wait at most; more than {MAX_TIMEOUT_S:.0f} is taken as "
                f"{MAX_TIMEOUT_S:.0f}. 0: read what is cached (with `since`) and answer.",
            ),
        ],
        "responses": {
            "200": {
                "description": "Matched, or timed out with what matched so far.",
                "content": json_content(ref("WaitResponse")),
            },
            **ERRORS,
            "503": error("Redis is unreachable, or sidecar.api.max_waits waits are open."),
        },
    }


def wait_paths() -> dict[str, Any]:
    """The long poll's path."""
    return {WAIT_PATH: {"get": _wait_get()}}
