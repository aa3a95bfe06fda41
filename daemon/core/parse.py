"""Parsing of ingest bodies into events: pure functions, no I/O.

A raw token body never fails: what is not an object or an array of objects is kept
as a malformed entry with an error saying why. NDJSON bodies are `daemon.core.ndjson`'s;
the report of their invalid lines and the helpers both share are here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from daemon.core.entry import ParsedEvent
from daemon.core.jsontext import json_problem
from daemon.core.model import Namespace
from daemon.core.wire import MAX_REPORTED_ERRORS


@dataclass(frozen=True, slots=True)
class LineError:
    """Why one NDJSON line was rejected (1-based line number)."""

    line: int
    message: str


@dataclass(slots=True)
class LineReport:
    """What was wrong with the invalid lines of an NDJSON body: how many, and why."""

    invalid: int = 0
    errors: list[LineError] = field(default_factory=list)
    # Count lines (daemon.core.atsource): events a client held back, per key.
    at_source: dict[Any, int] = field(default_factory=dict)

    def reject(self, line: int, message: str) -> None:
        """Count an invalid line; keep the first few messages for the response."""
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(LineError(line, message))


class TooManyEvents(Exception):
    """A body holds more events than the request bound allows."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


def cut(body: bytes, max_bytes: int) -> str:
    """A malformed body as stored: cut to `max_bytes`, invalid UTF-8 replaced."""
    return body[:max_bytes].decode("utf-8", "replace")


def parse_token_body(
    body: bytes,
    token: str,
    max_malformed_bytes: int,
    skip: str | None = None,
    ingest_error: str | None = None,
    parsed: tuple[Any] | None = None,
    max_events: int = 0,
) -> list[ParsedEvent]:
    """Events of a raw `POST /v1/token/{token}/events` body; `parsed` is `(document,)`
    when the caller has parsed the body already (a mirror's `json:` rule). An array of
    more than `max_events` elements (when > 0) raises TooManyEvents before any is made."""
    if ingest_error:
        return [_malformed(token, body, max_malformed_bytes, ingest_error)]
    if not body.strip():
        return [_malformed(token, body, max_malformed_bytes, "empty body")]
    try:
        doc = parsed[0] if parsed is not None else orjson.loads(body)
    except orjson.JSONDecodeError as e:
        return [_malformed(token, body, max_malformed_bytes, json_problem(body, e))]
    if isinstance(doc, dict):
        # Valid JSON is valid UTF-8: keep the ingest's own text, no re-encoding; the parsed
        # document goes along, so that the event's own id is found without parsing again.
        text = body.decode().strip()
        return [
            ParsedEvent(Namespace.TOKEN, token, original=text, skip=skip, token_id=token, value=doc)
        ]
    if isinstance(doc, list):
        if 0 < max_events < len(doc):
            raise TooManyEvents(len(doc))
        return _array_events(doc, body, token, max_malformed_bytes, skip)
    return [
        _malformed(
            token,
            body,
            max_malformed_bytes,
            f"body is {kind_of(doc)}, not an object or an array of objects",
        )
    ]


def _array_events(
    doc: list[Any], body: bytes, token: str, max_malformed_bytes: int, skip: str | None
) -> list[ParsedEvent]:
    """One event per element of a JSON array body; what is not an object is malformed."""
    events = []
    for n, item in enumerate(doc):
        try:
            text = dumps_stored(item)
        except Invalid as e:
            # Too deep to store on its own: keep the body it came in as malformed.
            events.append(_malformed(token, body, max_malformed_bytes, f"array element {n}: {e}"))
            continue
        if isinstance(item, dict):
            events.append(
                ParsedEvent(
                    Namespace.TOKEN, token, original=text, skip=skip, token_id=token, value=item
                )
            )
        else:
            problem = f"array element {n} is {kind_of(item)}, not an object"
            events.append(_malformed(token, text.encode(), max_malformed_bytes, problem))
    return events


def _malformed(token: str, body: bytes, max_bytes: int, error: str) -> ParsedEvent:
    return ParsedEvent(
        Namespace.TOKEN, token, malformed=cut(body, max_bytes), error=error, token_id=token
    )


def dumps_stored(value: Any) -> str:
    """JSON text of a parsed value; Invalid when it nests deeper than orjson writes.

    orjson reads up to 1024 levels of nesting but writes only 254.
    """
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as e:
        raise Invalid(f"JSON nested too deeply to store ({e})") from e


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


class Invalid(Exception):
    """A value the ingest cannot store, with the message that says why."""
