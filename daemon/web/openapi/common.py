"""Pieces every part of the OpenAPI document uses."""

from __future__ import annotations

from typing import Any

from daemon.core.ids import ID_PATTERN

ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 256,  # characters: 256 always fit the rule's 1,024 bytes (UTF-8)
    "pattern": ID_PATTERN,
    "description": "An API key or destination id: at most 1,024 bytes (UTF-8), no control "
    "or format characters (Unicode Cc, Cf), no leading or trailing whitespace, no comma, "
    "not ending in `:error`.",
}


def ref(name: str) -> dict[str, str]:
    """A reference to a schema of components.schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """An application/json body with this schema."""
    return {"application/json": {"schema": schema}}


def error(description: str) -> dict[str, Any]:
    """An error answer: {"message": ...}."""
    return {"description": description, "content": json_content(ref("Message"))}


def query_param(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """A query parameter."""
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        param["description"] = description
    return param


MESSAGE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}


# The admin routes' answers beside their own: a parameter, the token, Redis.
ERRORS = {
    "400": error("A parameter is invalid; the message names it."),
    "401": error("Admin token does not match."),
    "503": error("Redis is unreachable."),
}
# Either: X-Admin-Token, or Authorization: Bearer with the same token.
SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}, {"bearer": []}]
