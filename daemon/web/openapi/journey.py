"""OpenAPI of the journey: one event's way through the cache."""

from __future__ import annotations

from typing import Any

from daemon.core.eventid import MAX_EVENT_ID
from daemon.core.wire import TRUNCATED_HEADER
from daemon.web.openapi.common import ERRORS, SECURITY, error, json_content, query_param, ref

JOURNEY_RESPONSE = {
    "type": "object",
    "required": ["event_id", "received", "destinations"],
    "properties": {
        "event_id": {"type": "string"},
        "received": {
            "type": "array",
            "items": ref("Event"),
            "description": "The API keys' entries whose original carries the id, newest first.",
        },
        "destinations": {
            "type": "array",
            "description": "Each destination's entries for the event, by destination id, "
            "newest first within one.",
            "items": {
                "type": "object",
                "required": ["destination_id", "status", "event"],
                "properties": {
                    "destination_id": {"type": "string"},
                    "status": {"type": "string", "enum": ["success", "error", "skip"]},
                    "event": ref("Event"),
                },
            },
        },
    },
}


def journey_get() -> dict[str, Any]:
    """GET /api/v1/events/journey."""
    event_id = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_EVENT_ID,
        "pattern": "^[^\\u0000]+$",
    }
    return {
        "summary": "One event's journey: the API key's entries and every destination's outcome",
        "operationId": "getJourney",
        "security": SECURITY,
        "description": "From every pod. The id is found with sidecar.journey.event_id_from "
        "in originals and in destinations' success records; an id can be found for "
        "sidecar.journey.retention_minutes after it was cached, while its entries are in "
        f"the lists. Bounded by sidecar.api.max_response_bytes (`{TRUNCATED_HEADER}`).",
        "parameters": [
            {**query_param("event_id", event_id, "The event's own id (no NUL)."), "required": True}
        ],
        "responses": {
            "200": {"description": "The journey.", "content": json_content(ref("JourneyResponse"))},
            "404": error("No cached entry carries the event id."),
            **ERRORS,
        },
    }
