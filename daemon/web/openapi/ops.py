"""OpenAPI of the operations endpoints of the API listener."""

from __future__ import annotations

from typing import Any

from daemon.core.wire import HEALTHZ_PATH, METRICS_PATH, OPENAPI_PATH, READYZ_PATH


def _get(summary: str, operation_id: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "operationId": operation_id, "responses": responses}}


def ops_paths() -> dict[str, Any]:
    """/metrics, /healthz, /readyz, /openapi.json."""
    return {
        METRICS_PATH: _get(
            "Prometheus metrics",
            "metrics",
            {"200": {"description": "Text format.", "content": {"text/plain": {}}}},
        ),
        HEALTHZ_PATH: _get(
            "Liveness: the event loop answers", "healthz", {"200": {"description": "Alive."}}
        ),
        READYZ_PATH: _get(
            "Readiness: listeners are up (never Redis)",
            "readyz",
            {
                "200": {"description": "Ready; Redis state in body."},
                "503": {"description": "Still starting."},
            },
        ),
        OPENAPI_PATH: _get("This document", "openapi", {"200": {"description": "OpenAPI 3."}}),
    }
