"""OpenAPI of the query API: Jitsu's cache endpoint, the summary, reset, the live tail,
the journey (`daemon.web.openapi.journey`)."""

from __future__ import annotations

from typing import Any

from daemon.core.ids import IDS_PATTERN
from daemon.core.wire import (
    CACHE_PATH,
    DEFAULT_IDS_LIMIT,
    DEFAULT_LIMIT,
    IDS_PATH,
    JOURNEY_PATH,
    MAX_IDS_LIMIT,
    MAX_QUERY_TEXT,
    STREAM_PATH,
    TRUNCATED_HEADER,
)
from daemon.query.params import MAX_UID_LENGTH
from daemon.web.openapi import capture
from daemon.web.openapi.common import ERRORS, SECURITY, error, json_content, query_param, ref
from daemon.web.openapi.journey import journey_get

EVENT = {
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
        "capture": capture.ENTRY_FIELD,
        "cut": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "Only on an event longer than sidecar.api.max_response_bytes on "
            "its own: the fields cut to a string of their first 8 KiB (as JSON), each with "
            'its whole length in bytes, e.g. {"original": 1048600}. `uid=` answers the '
            "event whole.",
        },
    },
}

_INTEGERS = ("total_events", "last_minute_limited", "cache_capacity_per_interval")
CACHE_RESPONSE = {
    "type": "object",
    "required": [*_INTEGERS, "interval_seconds", "response_events", "events"],
    "properties": {
        **{name: {"type": "integer"} for name in _INTEGERS},
        "interval_seconds": {"type": "integer"},
        "response_events": {"type": "integer"},
        "events": {"type": "array", "items": ref("Event")},
    },
}

_NULLABLE_TEXT = {"type": "string", "nullable": True}
IDS_RESPONSE = {
    "type": "object",
    "required": ["namespace", "ids", "next_cursor"],
    "properties": {
        "namespace": {"type": "string", "enum": ["token", "destination"]},
        "ids": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "total_events", "error_events", "last_event_at"],
                "properties": {
                    "id": {"type": "string"},
                    "total_events": {"type": "integer"},
                    "error_events": {"type": "integer"},
                    "last_event_at": {"type": "string"},
                    "last_error_at": _NULLABLE_TEXT,
                    "last_error": _NULLABLE_TEXT,
                    "last_minute_limited": {"type": "integer"},
                },
            },
        },
        "next_cursor": _NULLABLE_TEXT,
    },
}

_NAMESPACE = query_param(
    "namespace", {"type": "string", "enum": ["destination", "token"], "default": "destination"}
)
_IDS = query_param(
    "ids",
    {"type": "string", "maxLength": 256, "pattern": IDS_PATTERN},
    "Comma-separated ids, each meeting the id rule (else 400); absent (and no `id`): every "
    "id; empty: none.",
)
# Repeated, each taken whole: an id stored before the id rule (`alice,bob`) stays readable.
_ID = {
    **query_param(
        "id",
        {"type": "array", "items": {"type": "string", "minLength": 1}},
        "One id taken whole, as stored (repeat for several): for an id the id rule would "
        "refuse, stored before it; added to `ids`.",
    ),
    "style": "form",
    "explode": True,
}
_STATUS = query_param("status", {"type": "string", "enum": ["", "error"]})
_TEXT = {"type": "string", "maxLength": MAX_QUERY_TEXT}
_TIME = {"type": "string", "format": "date-time"}


def _cache_get() -> dict[str, Any]:
    limit_schema = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
    return {
        "summary": "Last cached events per id, Jitsu Classic's response shape",
        "operationId": "getEventsCache",
        "security": SECURITY,
        "parameters": [
            _NAMESPACE,
            _IDS,
            _ID,
            _STATUS,
            # parse_query takes at most 18 digits (then "limit must be int")
            query_param(
                "limit",
                {**limit_schema, "default": DEFAULT_LIMIT},
                "Events per id, capped at server.cache.events.size; 0: counts only.",
            ),
            query_param("since", _TIME, "Only events at or after this time (RFC 3339)."),
            query_param("until", _TIME, "Only events at or before this time (RFC 3339)."),
            query_param("q", _TEXT, "Only events that contain this text (any case)."),
            query_param(
                "before",
                {"type": "string", "maxLength": MAX_UID_LENGTH},
                "A uid: only events older than that one, per id (stable paging).",
            ),
            query_param(
                "uid",
                {"type": "string", "maxLength": MAX_UID_LENGTH},
                "Just the entry with this uid (among the ids, namespace and status given), "
                "whole even when longer than sidecar.api.max_response_bytes: the viewer's "
                "'show all' of a cut event. Not with `before` (400).",
            ),
            capture.GET_PARAM,
        ],
        "responses": {
            "200": {
                "description": "Cached events.",
                "headers": {
                    TRUNCATED_HEADER: {
                        "description": "true when sidecar.api.max_response_events or "
                        "sidecar.api.max_response_bytes cut the answer: more events match "
                        "than it holds (page on with `before`, or narrow the query).",
                        "schema": {"type": "string"},
                    }
                },
                "content": json_content(ref("CacheResponse")),
            },
            **ERRORS,
        },
    }


def _cache_delete() -> dict[str, Any]:
    return {
        "summary": "Forget ids: their events, index entry and limited counts",
        "operationId": "resetEventsCache",
        "security": SECURITY,
        "parameters": [
            _NAMESPACE,
            _IDS,
            _ID,
            query_param("all", {"type": "string", "enum": ["true", "false"]}, "true: every id."),
            *capture.DELETE_PARAMS,
        ],
        "responses": {
            "200": {
                "description": "How many ids had something to forget (with `capture`: how "
                "many tagged events were removed).",
                "content": json_content(
                    capture.delete_answer(
                        {
                            "type": "object",
                            "required": ["deleted_ids"],
                            "properties": {"deleted_ids": {"type": "integer"}},
                        }
                    )
                ),
            },
            **ERRORS,
        },
    }


def _ids_get() -> dict[str, Any]:
    limit_schema = {"type": "integer", "minimum": 1, "maximum": MAX_IDS_LIMIT}
    return {
        "summary": "Which ids the cache holds, most recently active first",
        "operationId": "getIds",
        "security": SECURITY,
        "parameters": [
            _NAMESPACE,
            query_param("q", _TEXT, "Only ids that contain this text (any case)."),
            query_param("limit", {**limit_schema, "default": DEFAULT_IDS_LIMIT}),
            query_param("cursor", {"type": "string"}, "next_cursor of the previous page."),
        ],
        "responses": {
            "200": {"description": "One page of ids.", "content": json_content(ref("IdsResponse"))},
            **ERRORS,
        },
    }


def _stream_get() -> dict[str, Any]:
    return {
        "summary": "Live tail: every event cached from now on, as Server-Sent Events",
        "operationId": "streamEvents",
        "security": SECURITY,
        "description": "`event: entry` with `id: <uid>` and `data: {namespace, id, collection, "
        "event}`; `event: gap` with `data: {missed, reason}` when the reader missed events; "
        "a comment line at least every 10 s. With `last` or `since`, or a `Last-Event-ID` "
        "header, the stream first sends cached events (the backfill), oldest first, then "
        "follows, with neither a gap nor a duplicate between the two. The backfill is "
        "bounded as a query answer is (sidecar.api.max_response_events and "
        "max_response_bytes); when they cut it, an `event: gap` follows it.",
        "parameters": [
            _NAMESPACE,
            _IDS,
            _ID,
            _STATUS,
            query_param(
                "last",
                {"type": "integer", "minimum": 0, "maximum": 10**18 - 1, "default": 0},
                "First the newest N cached events of the ids watched (capped at "
                "sidecar.api.max_response_events), oldest first. Not with `since` (400).",
            ),
            query_param(
                "since",
                _TIME,
                "First every cached event at or after this time (RFC 3339, on the entry's "
                "`timestamp`), oldest first. Not with `last` (400).",
            ),
            {
                "name": "Last-Event-ID",
                "in": "header",
                "schema": {"type": "string", "maxLength": MAX_UID_LENGTH},
                "description": "On a reconnect (EventSource sends it), the uid of the last "
                "entry received: the stream first sends the matching events cached after it, "
                "oldest first, instead of `last` or `since`. A uid that is not time-ordered "
                "(UUID version 7; entries cached by earlier versions have random ones) is "
                "ignored, and an `event: gap` with `missed: null` says so first.",
            },
        ],
        "responses": {
            "200": {"description": "The stream.", "content": {"text/event-stream": {}}},
            **ERRORS,
            "503": error("Redis is unreachable, or sidecar.api.max_streams are open."),
        },
    }


def query_paths() -> dict[str, Any]:
    """The endpoints of the query API."""
    return {
        CACHE_PATH: {"get": _cache_get(), "delete": _cache_delete()},
        IDS_PATH: {"get": _ids_get()},
        STREAM_PATH: {"get": _stream_get()},
        JOURNEY_PATH: {"get": journey_get()},
    }
