"""OpenAPI of the ingest API: pod-private, on the ingest listener (its own `servers`)."""

from __future__ import annotations

from typing import Any

from daemon.core.atsource import AT_SOURCE, MAX_AT_SOURCE
from daemon.core.wire import (
    ERROR_HEADER,
    MAX_REPORTED_ERRORS,
    NDJSON,
    NDJSON_EVENTS_PATH,
    SKIP_HEADER,
    TOKEN_EVENTS_PATH,
)
from daemon.web.openapi.capture import LINE_FIELD
from daemon.web.openapi.common import ID, error, json_content, ref

_ACCEPTED = {
    "description": "Queued (or counted as limited, dropped or invalid); never waits for Redis.",
    "content": json_content(ref("IngestResult")),
}

_TOO_LARGE = {
    "type": "object",
    "required": ["message", "limit", "max"],
    "properties": {
        "message": {"type": "string"},
        "limit": {
            "type": "string",
            "enum": ["bytes", "events"],
            "description": "Which bound the request met, so a client splits by that measure: "
            "bytes (max_request_bytes, as sent or once inflated) or events "
            "(max_events_per_request).",
        },
        "max": {
            "type": "integer",
            "minimum": 1,
            "description": "That bound's value: max_request_bytes in bytes, or "
            "max_events_per_request in events.",
        },
    },
}

_ERRORS = {
    "400": error(
        "The token id in the path is invalid, or the body does not inflate as its "
        "Content-Encoding says (corrupt, or cut short)."
    ),
    "408": error(
        "The body was not complete sidecar.ingest.body_read_timeout_seconds after the "
        "headers; the connection is closed."
    ),
    "413": {
        "description": "Over sidecar.ingest.max_request_bytes (as sent or once inflated) or "
        "sidecar.ingest.max_events_per_request (array elements, NDJSON lines).",
        "content": json_content(_TOO_LARGE),
    },
    "415": error("A Content-Encoding other than gzip, deflate or identity."),
    "503": error("The cache is disabled (server.cache.enabled: false)."),
}

NDJSON_LINE = {
    "type": "object",
    "required": ["namespace", "id"],
    "properties": {
        "namespace": {"type": "string", "enum": ["token", "destination"]},
        "id": ID,
        "original": {"description": "An object; for destinations also text (kept as a string)."},
        "malformed": {"type": "string"},
        "success": {"type": "object"},
        "error": {"type": "string"},
        "skip": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "token_id": {"type": "string"},
        "capture": LINE_FIELD,
        "collection": {
            "type": "string",
            "enum": ["all", "error"],
            "description": f"Count lines only (with {AT_SOURCE}): the list the events "
            "were held back from.",
        },
        AT_SOURCE: {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_AT_SOURCE,
            "description": "A count line (limits at the source): exactly namespace, id, "
            "collection and this field; the number of events of that id a client held "
            "back because the answer's `limited` named it. Added to received, rate_limited, "
            "last_minute_limited and events_cache_limited_at_source_total; any other "
            "shape or value is an invalid line.",
        },
    },
}

_LIMITED = {
    "type": "array",
    "description": "POST /v1/events only, always present there (so a client knows it may "
    "send count lines): the request's ids whose all-events bucket is empty after it, "
    "and until when; a client may hold back, until then, the events the sidecar would "
    "certainly limit (docs/api.md, Limits at the source). At most one entry per id of "
    "the request.",
    "items": {
        "type": "object",
        "required": ["namespace", "id", "collections", "until"],
        "properties": {
            "namespace": {"type": "string", "enum": ["token", "destination"]},
            "id": ID,
            "collections": {
                "type": "array",
                "items": {"type": "string", "enum": ["all", "error"]},
                "description": '["all"], or ["all", "error"] when the error list is limited too.',
            },
            "until": {
                "type": "string",
                "format": "date-time",
                "description": "RFC 3339 UTC: when a bucket of those lists takes an event again.",
            },
        },
    },
}

INGEST_RESULT = {
    "type": "object",
    "required": ["accepted", "rate_limited", "dropped", "invalid", "errors"],
    "properties": {
        "accepted": {"type": "integer"},
        "rate_limited": {"type": "integer"},
        "dropped": {"type": "integer"},
        "invalid": {"type": "integer"},
        "errors": {
            "type": "array",
            "maxItems": MAX_REPORTED_ERRORS,
            "items": {
                "type": "object",
                "properties": {"line": {"type": "integer"}, "message": {"type": "string"}},
            },
        },
        "limited": _LIMITED,
    },
}


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "schema": {"type": "string"}, "description": description}


def ingest_paths(ingest_url: str) -> dict[str, Any]:
    """The two ingest endpoints; `ingest_url` is where their listener answers."""
    servers = [{"url": ingest_url, "description": "pod-private ingest listener"}]
    token_body = {"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}}
    return {
        TOKEN_EVENTS_PATH: {
            "servers": servers,
            "post": {
                "summary": "Cache the events of one API key, body as received",
                "operationId": "ingestTokenEvents",
                "parameters": [
                    {"name": "token_id", "in": "path", "required": True, "schema": ID},
                    _header(SKIP_HEADER, "Marks the events as skipped, with this reason."),
                    _header(ERROR_HEADER, "The ingest rejected the body: cached as malformed."),
                ],
                "requestBody": {"required": False, "content": token_body},
                "responses": {"202": _ACCEPTED, **_ERRORS},
            },
        },
        NDJSON_EVENTS_PATH: {
            "servers": servers,
            "post": {
                "summary": "Cache entries of both namespaces, one JSON object per line",
                "operationId": "ingestEntries",
                "requestBody": {
                    "required": False,
                    "content": {NDJSON: {"schema": {"type": "string"}}},
                    "description": "One JSON object per line, as components.schemas."
                    "NdjsonLine describes; an invalid line is reported "
                    "and does not stop the valid ones.",
                },
                "responses": {"202": _ACCEPTED, **_ERRORS},
            },
        },
    }
