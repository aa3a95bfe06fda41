"""NDJSON bodies (`POST /v1/events`): checked line by line, pure functions, no I/O.

An invalid line is reported with its number and does not stop the valid ones; an entry
is a token's event or a destination's result, in the shape docs/api.md gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from daemon.core.atsource import AT_SOURCE, count_line
from daemon.core.capture import check_capture
from daemon.core.entry import CAPTURE, MAX_ENCODABLE_DEPTH, ParsedEvent
from daemon.core.ids import check_id
from daemon.core.jsontext import json_problem
from daemon.core.model import Namespace
from daemon.core.parse import Invalid, LineReport, cut, dumps_stored, kind_of
from daemon.core.stamp import jitsu_time
from daemon.core.unbuilt import common_token_line_id

_TOKEN = Namespace.TOKEN


# Whether a token's all-events list is rate limited now (Admission.all_limited).
TokenLimited = Callable[[str], bool]


def iter_ndjson(
    body: bytes,
    max_malformed_bytes: int,
    report: LineReport,
    limited: TokenLimited | None = None,
) -> Iterator[ParsedEvent]:
    """The events of an NDJSON body one at a time; invalid lines are counted into `report`.

    The ingest limits each event as it comes, so a rate-limited line's objects are freed
    before the next line is parsed. An `original` object stays parsed in its event and is
    encoded only if the event is cached, unless the line has enough brackets to nest
    deeper than orjson writes: then it is encoded now, and such a line is invalid.
    With `limited`, a valid line of the common token shape whose token is limited is not
    built at all: its event carries only its id, for admission to count as limited.
    """
    return _ndjson_lines(body.split(b"\n"), 1, max_malformed_bytes, report, limited)


def ndjson_slices(
    body: bytes,
    max_malformed_bytes: int,
    report: LineReport,
    lines_per_slice: int,
    limited: TokenLimited | None = None,
) -> Iterator[Iterator[ParsedEvent]]:
    """iter_ndjson's events in slices of `lines_per_slice` lines each (each slice read
    lazily, as iter_ndjson is): a slice is bounded by the lines it reads, invalid ones
    included, not by the events it gives."""
    lines = body.split(b"\n")
    for start in range(0, len(lines), lines_per_slice):
        piece = lines[start : start + lines_per_slice]
        yield _ndjson_lines(piece, start + 1, max_malformed_bytes, report, limited)


def _ndjson_lines(
    lines: list[bytes],
    first_number: int,
    max_malformed_bytes: int,
    report: LineReport,
    limited: TokenLimited | None,
) -> Iterator[ParsedEvent]:
    loads = orjson.loads
    for number, line in enumerate(lines, start=first_number):
        if not line:
            continue
        if limited is not None:
            # A line that turns out not limited is parsed again below: the check builds
            # nothing and costs a fraction of the build it saves on a limited line.
            id_ = common_token_line_id(line)
            if (
                id_ is not None
                and limited(id_)
                and len(line) - len(line.translate(None, b"[{")) <= MAX_ENCODABLE_DEPTH
            ):
                # Limited in `all`, and (no error, not malformed) a target of no other
                # list: admission counts it and never encodes it, so it is not built.
                yield ParsedEvent(_TOKEN, id_, token_id=id_)
                continue
        try:
            doc = loads(line)
        except orjson.JSONDecodeError as e:
            if not line.isspace():
                report.reject(number, json_problem(line, e))
            continue
        if not isinstance(doc, dict):
            report.reject(number, f"must be a JSON object, got {kind_of(doc)}")
            continue
        # Cheaper than counting each bracket: the bytes that are not "[" or "{".
        lazy = len(line) - len(line.translate(None, b"[{")) <= MAX_ENCODABLE_DEPTH
        if lazy and len(doc) <= 4 and (common := _common_token_line(doc)) is not None:
            yield common
            continue
        if AT_SOURCE in doc:  # a client's count of the events it held back
            _count(doc, number, report)
            continue
        result = _entry(doc, max_malformed_bytes, lazy)
        if isinstance(result, str):
            report.reject(number, result)
        else:
            yield result


def _common_token_line(doc: dict[str, Any]) -> ParsedEvent | None:
    """The common shape, {"namespace": "token", "id": ..., "original": {...}}, with the
    "timestamp" the clients add or without: what _entry would find for it, without its
    calls; None for any other line (_entry reads it, or says why it is invalid)."""
    id_, original = doc.get("id"), doc.get("original")
    stamp = doc.get("timestamp") if len(doc) == 4 else None
    if (
        type(original) is dict
        and type(id_) is str
        and doc.get("namespace") == "token"
        and check_id(id_) is None
        and (len(doc) == 3 or (type(stamp) is str and (stamp := jitsu_time(stamp))))
    ):
        return ParsedEvent(_TOKEN, id_, token_id=id_, value=original, timestamp=stamp)
    return None


def _count(doc: dict[str, Any], number: int, report: LineReport) -> None:
    """A count line: its events summed into `report`, or the line rejected."""
    counted = count_line(doc)
    if isinstance(counted, str):
        report.reject(number, counted)
        return
    key, n = counted
    report.at_source[key] = report.at_source.get(key, 0) + n


def _optional_text(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise Invalid(f'"{name}" must be a string')


def _entry(doc: dict[str, Any], max_malformed_bytes: int, lazy: bool = False) -> ParsedEvent | str:
    """An event, or the message saying why the line is invalid.

    `lazy`: keep an original object parsed (the caller knows it is encodable).
    """
    try:
        namespace = doc.get("namespace")
        if namespace not in (Namespace.TOKEN, Namespace.DESTINATION):
            raise Invalid('"namespace" must be "token" or "destination"')
        problem = check_id(doc.get("id"))
        if problem:
            raise Invalid(f'"id" {problem}')
        timestamp = _optional_text(doc, "timestamp")
        if timestamp is not None:
            timestamp = _jitsu_timestamp(timestamp)
        tag = doc.get(CAPTURE)
        if tag is not None and (problem := check_capture(tag)):
            raise Invalid(f'"capture" {problem}')
        if namespace == Namespace.TOKEN:
            event = _token_entry(doc, timestamp, max_malformed_bytes, lazy)
        else:
            event = _destination_entry(doc, timestamp, lazy)
        event.capture = tag
        return event
    except Invalid as e:
        return str(e)


def _jitsu_timestamp(text: str) -> str:
    """The ingest's time as Jitsu writes times (UTC, microseconds): Jitsu reads no other."""
    stamp = jitsu_time(text)
    if stamp is None:
        raise Invalid('"timestamp" must be RFC 3339 with a time zone, e.g. 2024-05-01T12:00:00Z')
    return stamp


def _token_entry(
    doc: dict[str, Any], timestamp: str | None, max_bytes: int, lazy: bool = False
) -> ParsedEvent:
    token: str = doc["id"]
    original, malformed = doc.get("original"), doc.get("malformed")
    if (original is None) == (malformed is None):
        raise Invalid('a token entry needs exactly one of "original" or "malformed"')
    error, skip = _optional_text(doc, "error"), _optional_text(doc, "skip")
    if original is not None:
        if not isinstance(original, dict):
            raise Invalid('"original" must be a JSON object')
        return ParsedEvent(
            Namespace.TOKEN,
            token,
            original=None if lazy else dumps_stored(original),
            value=original if lazy else None,
            error=error,
            skip=skip,
            timestamp=timestamp,
            token_id=token,
        )
    if not isinstance(malformed, str):
        raise Invalid('"malformed" must be a string')
    return ParsedEvent(
        Namespace.TOKEN,
        token,
        malformed=cut(malformed.encode(), max_bytes),
        error=error or "malformed event",
        skip=skip,
        timestamp=timestamp,
        token_id=token,
    )


def _destination_entry(
    doc: dict[str, Any], timestamp: str | None, lazy: bool = False
) -> ParsedEvent:
    destination: str = doc["id"]
    original = doc.get("original")
    value: Any = None
    if isinstance(original, dict):
        original_text, value = (None, original) if lazy else (dumps_stored(original), None)
    elif isinstance(original, str) and original:
        # Stored as a JSON string (its encoding), when cached: Jitsu embeds every stored
        # original in its answers as JSON text, and bare text would fail them all.
        original_text, value = None, original
    else:
        raise Invalid('"original" must be a JSON object or a non-empty string')
    success = doc.get("success")
    error, skip = _optional_text(doc, "error"), _optional_text(doc, "skip")
    if sum(x is not None for x in (success, error, skip)) != 1:
        raise Invalid('a destination entry needs exactly one of "success", "error" or "skip"')
    if success is not None and not isinstance(success, dict):
        raise Invalid('"success" must be a JSON object')
    token_id = _optional_text(doc, "token_id") or ""
    return ParsedEvent(
        Namespace.DESTINATION,
        destination,
        original=original_text,
        value=value,
        success=dumps_stored(success) if success is not None else None,
        error=error,
        skip=skip,
        timestamp=timestamp,
        destination_id=destination,
        token_id=token_id,
    )
