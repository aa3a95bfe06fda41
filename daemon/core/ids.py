"""The rule every API key and destination id meets, at every entrance: one place."""

from __future__ import annotations

from typing import Any

from daemon.core.wire import MAX_ID_LENGTH


def check_id(value: Any) -> str | None:
    """Why `value` cannot be an API key or destination id, or None when it can."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    return None
