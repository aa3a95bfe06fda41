"""The OpenAPI 3 description of both APIs, served at /openapi.json.

The ingest paths carry their own `servers` entry: they are served on the pod-private
ingest listener, not on the API listener that serves this document.
"""

from __future__ import annotations

from typing import Any

from daemon.core.wire import TOKEN_HEADER
from daemon.web.openapi.activity import ACTIVITY_RESPONSE, activity_paths
from daemon.web.openapi.common import MESSAGE
from daemon.web.openapi.errors import ERRORS_RESPONSE, errors_paths
from daemon.web.openapi.ingest import INGEST_RESULT, NDJSON_LINE, ingest_paths
from daemon.web.openapi.journey import JOURNEY_RESPONSE
from daemon.web.openapi.ops import ops_paths
from daemon.web.openapi.query import (
    CACHE_RESPONSE,
    EVENT,
    IDS_RESPONSE,
    query_paths,
)
from daemon.web.openapi.wait import WAIT_RESPONSE, wait_paths


def build_openapi(version: str, ingest_url: str) -> dict[str, Any]:
    """The document; `ingest_url` is where the ingest listener answers (for humans)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "events-cache",
            "version": version,
            "description": "Jitsu Classic compatible events cache sidecar.",
        },
        "paths": {
            **ingest_paths(ingest_url),
            **query_paths(),
            **wait_paths(),
            **activity_paths(),
            **errors_paths(),
            **ops_paths(),
        },
        "components": {
            "securitySchemes": {
                "adminToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Message": MESSAGE,
                "Event": EVENT,
                "NdjsonLine": NDJSON_LINE,
                "IngestResult": INGEST_RESULT,
                "CacheResponse": CACHE_RESPONSE,
                "IdsResponse": IDS_RESPONSE,
                "JourneyResponse": JOURNEY_RESPONSE,
                "WaitResponse": WAIT_RESPONSE,
                "ActivityResponse": ACTIVITY_RESPONSE,
                "ErrorsResponse": ERRORS_RESPONSE,
            },
        },
    }
