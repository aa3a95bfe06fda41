"""The OpenAPI 3 description of both APIs, served at /openapi.json.

The ingest paths carry their own `servers` entry: they are served on the pod-private
ingest listener, not on the API listener that serves this document.
"""

from __future__ import annotations

from typing import Any

from daemon.core.wire import (
    CACHE_PATH,
    DEFAULT_LIMIT,
    ERROR_HEADER,
    HEALTHZ_PATH,
    MAX_ID_LENGTH,
    MAX_REPORTED_ERRORS,
    METRICS_PATH,
    NDJSON,
    NDJSON_EVENTS_PATH,
    OPENAPI_PATH,
    READYZ_PATH,
    SKIP_HEADER,
    TOKEN_EVENTS_PATH,
    TOKEN_HEADER,
)

_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}

_MESSAGE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
    }


_ACCEPTED = {
    "description": "Queued (or counted as limited, dropped or invalid); never waits for Redis.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}},
}

_INGEST_ERRORS = {
    "400": _error("The token id in the path is invalid."),
    "413": _error("The body exceeds sidecar.ingest.max_request_bytes."),
    "503": _error("The cache is disabled (server.cache.enabled: false)."),
}

_EVENT = {
    "type": "object",
    "required": ["timestamp", "uid", "destination_id", "token_id"],
    "properties": {
        "malformed": {"type": "string", "description": "The body, cut, when it was not JSON."},
        "original": {"description": "The event as received: an object, or a string."},
        "success": {"description": "What the destination made of it."},
        "error": {"type": "string"},
        "skip": {"type": "string"},
        "timestamp": {"type": "string", "description": "RFC 3339, UTC."},
        "uid": {"type": "string"},
        "destination_id": {"type": "string"},
        "token_id": {"type": "string"},
    },
}


def _ndjson_line() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["namespace", "id"],
        "properties": {
            "namespace": {"type": "string", "enum": ["token", "destination"]},
            "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            "original": {
                "description": "An object; for destinations also text (kept as a string)."
            },
            "malformed": {"type": "string"},
            "success": {"type": "object"},
            "error": {"type": "string"},
            "skip": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
            "token_id": {"type": "string"},
        },
    }


def build_openapi(version: str, ingest_url: str) -> dict[str, Any]:
    """The document; `ingest_url` is where the ingest listener answers (for humans)."""
    ingest_servers = [{"url": ingest_url, "description": "pod-private ingest listener"}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "events-cache",
            "version": version,
            "description": "Jitsu Classic compatible events cache sidecar.",
        },
        "paths": {
            TOKEN_EVENTS_PATH: {
                "servers": ingest_servers,
                "post": {
                    "summary": "Cache the events of one API key, body as received",
                    "operationId": "ingestTokenEvents",
                    "parameters": [
                        {
                            "name": "token_id",
                            "in": "path",
                            "required": True,
                            "schema": _ID,
                        },
                        {
                            "name": SKIP_HEADER,
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "Marks the events as skipped, with this reason.",
                        },
                        {
                            "name": ERROR_HEADER,
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "The ingest rejected the body: cached as malformed.",
                        },
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {"schema": {}},
                            "text/plain": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {"202": _ACCEPTED, **_INGEST_ERRORS},
                },
            },
            NDJSON_EVENTS_PATH: {
                "servers": ingest_servers,
                "post": {
                    "summary": "Cache entries of both namespaces, one JSON object per line",
                    "operationId": "ingestEntries",
                    "requestBody": {
                        "required": False,
                        "content": {
                            NDJSON: {"schema": {"type": "string"}},
                        },
                        "description": "One JSON object per line, as components.schemas."
                        "NdjsonLine describes; an invalid line is reported "
                        "and does not stop the valid ones.",
                    },
                    "responses": {"202": _ACCEPTED, **_INGEST_ERRORS},
                },
            },
            CACHE_PATH: {
                "get": {
                    "summary": "Last cached events per id, Jitsu Classic's response shape",
                    "operationId": "getEventsCache",
                    "security": [{"adminToken": []}],
                    "parameters": [
                        {
                            "name": "namespace",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["destination", "token"],
                                "default": "destination",
                            },
                        },
                        {
                            "name": "ids",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "Comma-separated ids; absent: every id; empty: none.",
                        },
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["", "error"]},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            # parse_query takes at most 18 digits (then "limit must be int")
                            "schema": {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": 10**18 - 1,
                                "default": DEFAULT_LIMIT,
                            },
                            "description": "Events per id, capped at server.cache.events.size.",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "Cached events.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/CacheResponse"}
                                }
                            },
                        },
                        "400": _error("A parameter is invalid."),
                        "401": _error("Admin token does not match."),
                        "503": _error("Redis is unreachable."),
                    },
                },
            },
            METRICS_PATH: {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {
                        "200": {"description": "Text format.", "content": {"text/plain": {}}}
                    },
                }
            },
            HEALTHZ_PATH: {
                "get": {
                    "summary": "Liveness: the event loop answers",
                    "operationId": "healthz",
                    "responses": {"200": {"description": "Alive."}},
                }
            },
            READYZ_PATH: {
                "get": {
                    "summary": "Readiness: listeners are up (never Redis)",
                    "operationId": "readyz",
                    "responses": {
                        "200": {"description": "Ready; Redis state in body."},
                        "503": {"description": "Still starting."},
                    },
                }
            },
            OPENAPI_PATH: {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {"200": {"description": "OpenAPI 3."}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "adminToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
            },
            "schemas": {
                "Message": _MESSAGE,
                "Event": _EVENT,
                "NdjsonLine": _ndjson_line(),
                "IngestResult": {
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
                                "properties": {
                                    "line": {"type": "integer"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "CacheResponse": {
                    "type": "object",
                    "required": [
                        "total_events",
                        "last_minute_limited",
                        "cache_capacity_per_interval",
                        "interval_seconds",
                        "response_events",
                        "events",
                    ],
                    "properties": {
                        "total_events": {"type": "integer"},
                        "last_minute_limited": {"type": "integer"},
                        "cache_capacity_per_interval": {"type": "integer"},
                        "interval_seconds": {"type": "integer"},
                        "response_events": {"type": "integer"},
                        "events": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Event"},
                        },
                    },
                },
            },
        },
    }
