"""OpenAPI of the error signatures (`GET /api/v1/errors`): why things fail, grouped."""

from __future__ import annotations

from typing import Any

from daemon.core.wire import ERRORS_PATH, TRUNCATED_HEADER
from daemon.query.errors import MAX_IDS, MAX_SIGNATURES
from daemon.web.openapi.common import ERRORS, SECURITY, json_content, query_param, ref
from daemon.web.openapi.query import _ID, _IDS, _NAMESPACE, _TIME

_TIME_OR_NULL = {"type": "string", "format": "date-time", "nullable": True}

ERRORS_RESPONSE = {
    "type": "object",
    "required": ["namespace", "signatures"],
    "properties": {
        "namespace": {"type": "string", "enum": ["destination", "token"]},
        "signatures": {
            "type": "array",
            "maxItems": MAX_SIGNATURES,
            "description": "Most frequent first.",
            "items": {
                "type": "object",
                "required": ["signature", "count", "ids", "first_seen", "last_seen", "example"],
                "properties": {
                    "signature": {
                        "type": "string",
                        "description": "The message with its values replaced: numbers `<n>`, "
                        "quoted values `<q>`, UUIDs `<uuid>`, IP addresses and host:port "
                        "`<addr>`, hex strings `<hex>`.",
                    },
                    "count": {"type": "integer", "minimum": 1},
                    "ids": {
                        "type": "array",
                        "maxItems": MAX_IDS,
                        "description": "The ids that had it, most frequent first.",
                        "items": {
                            "type": "object",
                            "required": ["id", "count"],
                            "properties": {
                                "id": {"type": "string"},
                                "count": {"type": "integer", "minimum": 1},
                            },
                        },
                    },
                    "first_seen": _TIME_OR_NULL,
                    "last_seen": _TIME_OR_NULL,
                    "example": {
                        "allOf": [ref("Event")],
                        "nullable": True,
                        "description": "The newest entry of the signature, its long fields "
                        "cut to 1 KiB (marked `cut`); null once its id was erased.",
                    },
                },
            },
        },
    },
}


def errors_get() -> dict[str, Any]:
    """GET /api/v1/errors."""
    return {
        "summary": "Error signatures: why things fail, grouped, most frequent first",
        "operationId": "getErrors",
        "security": SECURITY,
        "description": "From every pod: counted as errors are written (each pod adds its "
        "counts once a second), per minute, for the last hour (or the lists' TTL, if "
        f"shorter). At most {MAX_SIGNATURES} signatures and {MAX_IDS} ids each, and "
        f"sidecar.api.max_response_bytes in all; a cut answer carries `{TRUNCATED_HEADER}`.",
        "parameters": [
            _NAMESPACE,
            _IDS,
            _ID,
            query_param(
                "since",
                _TIME,
                "Only errors of the minute this time falls in and later (RFC 3339); "
                "default: the last hour.",
            ),
        ],
        "responses": {
            "200": {
                "description": "The signatures.",
                "content": json_content(ref("ErrorsResponse")),
            },
            **ERRORS,
        },
    }


def errors_paths() -> dict[str, Any]:
    """The error signatures' endpoint."""
    return {ERRORS_PATH: {"get": errors_get()}}
