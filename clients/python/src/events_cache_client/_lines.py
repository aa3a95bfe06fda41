"""NDJSON lines of `POST /v1/events`, built on the sender's side: pure, no I/O.

A raw token body is split as the sidecar's raw endpoint (`POST /v1/token/{id}/events`)
would split it: a JSON object is one entry (its own text, not re-encoded), an array is
one entry per element, anything else is one malformed entry saying why.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Union

try:  # the C encoder of a JSON string (json.dumps' own), else the Python one
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover - CPython always has _json
    from json.encoder import py_encode_basestring as _quote

Raw = Union[bytes, str]

# Item kinds (the first field of a buffered item).
# `capture`: the call's capture tag or None (the line's "capture": the sidecar caches the
# event beyond its id's rate limit, within its budget); `size` is always last.
TOKEN_RAW = 0  # (kind, token_id, body: bytes | str, skip, error, ts, capture, size)
TOKEN_JSON = 1  # (kind, token_id, event_text: str, skip, None, ts, capture, size)
DESTINATION = 2  # (kind, destination_id, original, [(field, value)], token_id, ts, capture, size)
# A raw body the caller vouched is one JSON object (`parsed=True`): sent without parsing.
# (3 is _core's flush marker.)
TOKEN_VOUCHED = 4  # (kind, token_id, body: bytes, skip, None, ts, capture, size)

_WHITESPACE = " \t\r\n"


def encode(value: Any) -> str:
    """JSON text of a parsed value, compact; ValueError/TypeError when not encodable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    """json.loads as strict as the sidecar's parser: no NaN/Infinity, no infinite floats."""
    return json.loads(text, parse_float=_finite, parse_constant=_reject_constant)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _text(body: Raw) -> str | None:
    """The body as text, or None when it is not valid UTF-8."""
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _cut(body: Raw, max_bytes: int) -> str:
    """A malformed body as the sidecar stores it: cut to `max_bytes`, bad UTF-8 replaced."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return data[:max_bytes].decode("utf-8", "replace")


def one_line(text: str) -> str:
    """JSON text on one line: raw newlines can only be whitespace in valid JSON."""
    if "\n" in text or "\r" in text:
        return text.replace("\r", " ").replace("\n", " ")
    return text


class Clock:
    """RFC 3339 UTC timestamps with microseconds, the date part formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"


class LineBuilder:
    """Turns buffered items into NDJSON lines (bytes, without the newline)."""

    def __init__(self, max_malformed_bytes: int, timestamps: bool = True) -> None:
        self.max_malformed_bytes = max_malformed_bytes
        self.timestamps = timestamps
        self._clock = Clock()

    def lines(self, item: tuple[Any, ...]) -> list[bytes]:
        """The lines of one item; ValueError/TypeError when it cannot be encoded."""
        kind = item[0]
        if kind == DESTINATION:
            return [self._destination(item)]
        if kind == TOKEN_JSON:
            return [self._token(item[1], item[2], item[3], None, item[5], item[6])]
        if kind == TOKEN_VOUCHED:
            return [self._vouched(item)]
        return self._token_raw(item)

    def _vouched(self, item: tuple[Any, ...]) -> bytes:
        """The line of a body the ingest parsed already: its bytes as they are, on one
        line (raw CR/LF can only be whitespace in JSON). Neither decoded nor parsed here:
        that re-parse was half the client's CPU per event; a body vouched for that is not
        JSON makes the sidecar count its line as invalid."""
        token_id, skip, ts, capture = item[1], item[3], item[5], item[6]
        body: bytes = item[2]
        if b"\n" in body or b"\r" in body:
            body = body.replace(b"\r", b" ").replace(b"\n", b" ")
        head = '{"namespace":"token","id":' + _quote(token_id) + ',"original":'
        rest = (',"skip":' + _quote(skip) if skip else "") + self._tail(ts, capture)
        return (
            head.encode("utf-8", "backslashreplace")
            + body
            + rest.encode("utf-8", "backslashreplace")
        )

    def _tail(self, ts: float, capture: str | None) -> str:
        tag = ',"capture":' + _quote(capture) if capture is not None else ""
        return tag + (f',"timestamp":"{self._clock.format(ts)}"}}' if self.timestamps else "}")

    def _token(
        self,
        token_id: str,
        original: str,
        skip: str | None,
        error: str | None,
        ts: float,
        capture: str | None,
    ) -> bytes:
        head = '{"namespace":"token","id":' + _quote(token_id) + ',"original":'
        marks = ""
        if skip:
            marks += ',"skip":' + _quote(skip)
        if error:
            marks += ',"error":' + _quote(error)
        return (head + one_line(original) + marks + self._tail(ts, capture)).encode(
            "utf-8", "backslashreplace"
        )

    def _malformed(
        self, token_id: str, body: Raw, error: str, ts: float, capture: str | None
    ) -> bytes:
        text = _cut(body, self.max_malformed_bytes)
        return (
            '{"namespace":"token","id":'
            + _quote(token_id)
            + ',"malformed":'
            + _quote(text)
            + ',"error":'
            + _quote(error)
            + self._tail(ts, capture)
        ).encode("utf-8", "backslashreplace")

    def _token_raw(self, item: tuple[Any, ...]) -> list[bytes]:
        _, token_id, body, skip, error, ts, tag, _ = item
        if error:
            return [self._malformed(token_id, body, error, ts, tag)]
        text = _text(body)
        if text is None:
            return [self._malformed(token_id, body, "invalid JSON: not valid UTF-8", ts, tag)]
        if not text.strip(_WHITESPACE):
            return [self._malformed(token_id, body, "empty body", ts, tag)]
        try:
            doc = _loads(text)
        except (ValueError, RecursionError) as e:
            return [self._malformed(token_id, body, f"invalid JSON: {e}", ts, tag)]
        if isinstance(doc, dict):
            return [self._token(token_id, text.strip(_WHITESPACE), skip, None, ts, tag)]
        if isinstance(doc, list):
            return self._array(token_id, doc, body, skip, ts, tag)
        problem = f"body is {_kind(doc)}, not an object or an array of objects"
        return [self._malformed(token_id, body, problem, ts, tag)]

    def _array(
        self,
        token_id: str,
        doc: list[Any],
        body: Raw,
        skip: str | None,
        ts: float,
        tag: str | None,
    ) -> list[bytes]:
        out = []
        for n, element in enumerate(doc):
            try:
                text = encode(element)
            except (ValueError, RecursionError) as e:
                problem = f"array element {n}: JSON nested too deeply to store ({e})"
                out.append(self._malformed(token_id, body, problem, ts, tag))
                continue
            if isinstance(element, dict):
                out.append(self._token(token_id, text, skip, None, ts, tag))
            else:
                problem = f"array element {n} is {_kind(element)}, not an object"
                out.append(self._malformed(token_id, text, problem, ts, tag))
        return out

    def _destination(self, item: tuple[Any, ...]) -> bytes:
        _, destination_id, original, outcome, token_id, ts, tag, _ = item
        parts = [
            '{"namespace":"destination","id":',
            _quote(destination_id),
            ',"original":',
            raw_value(original),
        ]
        for field, value in outcome:
            parts += [f',"{field}":', raw_value(value) if field == "success" else _quote(value)]
        if token_id:
            parts += [',"token_id":', _quote(token_id)]
        parts.append(self._tail(ts, tag))
        return "".join(parts).encode("utf-8", "backslashreplace")


class Encoded(str):
    """JSON text encoded in the call (a parsed value the application passed)."""

    __slots__ = ()


def raw_value(value: Any) -> str:
    """JSON for a destination's `original` or `success`: text encoded in the call is used
    as is; raw bytes or text that hold a JSON object are embedded as that object, any
    other raw text is sent as a JSON string."""
    if isinstance(value, Encoded):
        return one_line(value)
    text = _text(value)
    if text is None:
        return _quote(value.decode("utf-8", "replace"))
    stripped = text.strip(_WHITESPACE)
    if stripped.startswith("{"):
        try:
            if isinstance(_loads(stripped), dict):
                return one_line(stripped)
        except (ValueError, RecursionError):
            pass
    return str(_quote(text))
