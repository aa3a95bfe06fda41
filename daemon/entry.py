"""The cached entry: Jitsu Classic's format, written and read.

An entry is one JSON object with the string fields `malformed`, `original`, `success`,
`error`, `skip`, `timestamp`, `uid`, `destination_id`, `token_id`, empty ones omitted.
`original` and `success` hold JSON text (double-encoded), as the original stored them,
so a Jitsu Classic server sharing the Redis reads our entries and we read its.
"""

from __future__ import annotations

import os
import time
from enum import IntFlag, StrEnum
from typing import Any

import orjson


class Namespace(StrEnum):
    """Where an event comes from: raw events by API key, or results by destination."""

    TOKEN = "token"
    DESTINATION = "destination"


class Collection(StrEnum):
    """Every id has an all-events list and an errors-only list."""

    ALL = "all"
    ERROR = "error"


class DropReason(StrEnum):
    """Why an accepted event did not reach Redis."""

    QUEUE_FULL = "queue_full"
    REDIS_ERROR = "redis_error"
    SHUTDOWN = "shutdown"


class Target(IntFlag):
    """Which lists of its id an entry is written to."""

    NONE = 0
    ALL = 1
    ERROR = 2


# Field order of the response; also the order in which we write entries.
FIELDS = ("malformed", "original", "success", "error", "skip")
ALWAYS = ("timestamp", "uid", "destination_id", "token_id")


_NAMES = (
    "namespace",
    "id",
    "original",
    "malformed",
    "success",
    "error",
    "skip",
    "timestamp",
    "token_id",
    "destination_id",
)


class ParsedEvent:
    """One event as the ingest handed it over, before rate limiting.

    `original` is JSON text. An entry parsed from NDJSON may carry its original as the
    parsed object instead (`value=`): it becomes text only when first read, which a
    rate-limited event never is, so the ingest skips re-encoding what it will not cache.
    """

    __slots__ = (
        "_original",
        "_value",
        "destination_id",
        "error",
        "id",
        "malformed",
        "namespace",
        "skip",
        "success",
        "timestamp",
        "token_id",
    )

    def __init__(
        self,
        namespace: Namespace,
        id: str,
        original: str | None = None,  # JSON text (or raw text for a destination's original)
        malformed: str | None = None,
        success: str | None = None,  # JSON text
        error: str | None = None,
        skip: str | None = None,
        timestamp: str | None = None,  # when the ingest processed it; else time of caching
        token_id: str = "",
        destination_id: str = "",
        *,
        value: Any = None,  # the original as a parsed object (must be encodable), if no text
    ) -> None:
        self.namespace = namespace
        self.id = id
        self._original = original
        self._value = value
        self.malformed = malformed
        self.success = success
        self.error = error
        self.skip = skip
        self.timestamp = timestamp
        self.token_id = token_id
        self.destination_id = destination_id

    @property
    def original(self) -> str | None:
        """The original's JSON text, encoded on first use when it was parsed from NDJSON."""
        if self._original is None and self._value is not None:
            self._original = orjson.dumps(self._value).decode()
        return self._original

    @original.setter
    def original(self, text: str | None) -> None:
        """Replace the original's text (redaction); the parsed object is dropped."""
        self._original = text
        self._value = None

    @property
    def is_error(self) -> bool:
        """Errors and malformed entries also go to the errors-only list."""
        return bool(self.error or self.malformed)

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.namespace,
            self.id,
            self.original,
            self.malformed,
            self.success,
            self.error,
            self.skip,
            self.timestamp,
            self.token_id,
            self.destination_id,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedEvent):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(_NAMES, self._fields(), strict=True))
        return f"ParsedEvent({inner})"


class _Clock:
    """RFC 3339 UTC timestamps; the date part is formatted once per second, and the
    whole text once per distinct time (every event of a request shares one)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._now = -1.0
        self._text = ""

    def format(self, now: float) -> str:
        if now == self._now:
            return self._text
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._now = now
        self._text = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return self._text


_clock = _Clock()


def rfc3339(now: float) -> str:
    """Format a Unix time as Jitsu does: RFC 3339, UTC, microseconds."""
    return _clock.format(now)


class _RandomPool:
    """Random bytes from the OS, fetched 4 KB at a time instead of 16 bytes per uid
    (one getrandom system call per event was a third of P3's profile)."""

    SIZE = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def take16(self) -> bytes:
        pos = self._pos
        if pos + 16 > len(self._pool):
            self._pool = os.urandom(self.SIZE)
            pos = 0
        self._pos = pos + 16
        return self._pool[pos : pos + 16]


_random = _RandomPool()


def new_uid() -> str:
    """A random (version 4) UUID as text, without the cost of building a uuid.UUID."""
    b = bytearray(_random.take16())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode(event: ParsedEvent, now: float) -> bytes:
    """The stored bytes of an entry; `now` stamps it when the ingest gave no time."""
    doc: dict[str, str] = {}
    if event.malformed:
        doc["malformed"] = event.malformed
    if event.original:
        doc["original"] = event.original
    if event.success:
        doc["success"] = event.success
    if event.error:
        doc["error"] = event.error
    if event.skip:
        doc["skip"] = event.skip
    doc["timestamp"] = event.timestamp or rfc3339(now)
    doc["uid"] = new_uid()
    if event.destination_id:
        doc["destination_id"] = event.destination_id
    if event.token_id:
        doc["token_id"] = event.token_id
    # A copy of exactly its size: the bytes orjson returns keep its whole output buffer
    # (~8 KB for a 1.7 KB entry), and queued entries live until Redis takes them.
    return b"%s" % orjson.dumps(doc)


def decode(raw: bytes, verbatim: bool = False) -> dict[str, Any]:
    """An entry as the query returns it: JSON fields as objects, the ids always present.

    Entries that are not what we expect (another writer, corruption) come back as
    malformed entries with an error instead of failing the whole response.
    `verbatim`: `original` and `success` come back as orjson.Fragment of their stored
    text once it parses (the answer then carries the bytes as stored, with no
    re-encoding of the nested objects); the answer is the same JSON either way.
    """
    try:
        doc = orjson.loads(raw)
        problem = "" if isinstance(doc, dict) else "cached entry is not a JSON object"
    except orjson.JSONDecodeError as e:
        problem = f"cached entry is not JSON: {e}"
    if problem:
        doc = {"malformed": raw.decode("utf-8", "replace"), "error": problem}
    # Too few brackets in the whole entry for any field to nest deeper than orjson writes.
    shallow = verbatim and len(raw) - len(raw.translate(None, b"[{")) <= MAX_ENCODABLE_DEPTH
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = doc.get(name)
        if value is None or value == "":
            continue
        if name in _JSON_FIELDS and isinstance(value, str):
            value = _json_or_text(value, shallow)
        out[name] = value
    for name in ALWAYS:
        value = doc.get(name)
        out[name] = value if isinstance(value, str) else ("" if value is None else str(value))
    return out


_JSON_FIELDS = ("original", "success")

# orjson reads up to 1024 levels of nesting but writes only 254: a value nested deeper
# (another writer's entry, or an object body kept as the ingest sent it) stays text, or
# the whole query answer could not be encoded.
MAX_ENCODABLE_DEPTH = 254


def _json_or_text(text: str, verbatim: bool = False) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if verbatim:  # valid, and shallow enough: written as stored
        return orjson.Fragment(text)
    if text.count("[") + text.count("{") > MAX_ENCODABLE_DEPTH:  # cheap: may nest too deep
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return text
    return value
