"""The cached entry: Jitsu Classic's format, written and read.

An entry is one JSON object with the string fields `malformed`, `original`, `success`,
`error`, `skip`, `timestamp`, `uid`, `destination_id`, `token_id`, empty ones omitted,
and ours alone may carry `capture` (a test run's tag), which Jitsu's readers ignore.
`original` and `success` hold JSON text (double-encoded), as the original stored them,
so a Jitsu Classic server sharing the Redis reads our entries and we read its: Jitsu
answers them as json.RawMessage, so what we store there is always valid JSON text.
"""

from __future__ import annotations

from typing import Any

import orjson

from daemon.core.jsontext import is_json
from daemon.core.model import Namespace
from daemon.core.stamp import new_uid, rfc3339

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
    "capture",
)
# A test run's tag (`daemon.core.capture`): an extra field, written and answered only when
# present (Jitsu's readers ignore fields they do not know), last.
CAPTURE = "capture"


class ParsedEvent:
    """One event as the ingest handed it over, before rate limiting.

    `original` is JSON text. An entry parsed from NDJSON may carry its original as the
    parsed value instead (`value=`: an object, or a destination's text original, which
    is stored as a JSON string): it becomes JSON text only when first read, which a
    rate-limited event never is, so the ingest skips encoding what it will not cache.
    """

    __slots__ = (
        "_original",
        "_value",
        "capture",
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
        original: str | None = None,  # JSON text
        malformed: str | None = None,
        success: str | None = None,  # JSON text
        error: str | None = None,
        skip: str | None = None,
        timestamp: str | None = None,  # Jitsu's layout (parse converts); else time of caching
        token_id: str = "",
        destination_id: str = "",
        *,
        value: Any = None,  # the original as a parsed value (must be encodable); with a text
        # too, the text is what is stored and the value only read (the event's own id)
        capture: str | None = None,  # a test run's tag (daemon.core.capture)
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
        self.capture = capture

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

    def original_value(self) -> Any:
        """The original parsed (the value NDJSON gave, else its text parsed); None when
        there is none or its text is not JSON."""
        if self._value is not None:
            return self._value
        if not self._original:
            return None
        try:
            return orjson.loads(self._original)
        except orjson.JSONDecodeError:
            return None

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
            self.capture,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedEvent):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(_NAMES, self._fields(), strict=True))
        return f"ParsedEvent({inner})"


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
    if event.capture is not None:
        doc[CAPTURE] = event.capture
    # A copy of exactly its size: the bytes orjson returns keep its whole output buffer
    # (several times a typical entry's size), and queued entries live until Redis takes them.
    return b"%s" % orjson.dumps(doc)


def decode(raw: bytes) -> dict[str, Any]:
    """An entry as the query answers it, in Jitsu's field order, the ids always present.

    `original` and `success` come back as orjson.Fragment of their stored text whenever
    that text is valid JSON, at any depth: the answer carries it as stored, as Jitsu's
    handler (json.RawMessage) does, with no re-encoding of the nested objects. Stored
    text that is not JSON (another writer's) comes back as a string, and an entry that is
    not what we expect as a malformed entry with an error, instead of failing the answer.
    """
    try:
        doc = orjson.loads(raw)
        problem = "" if isinstance(doc, dict) else "cached entry is not a JSON object"
    except orjson.JSONDecodeError as e:
        problem = f"cached entry is not JSON: {e}"
    if problem:
        doc = {"malformed": raw.decode("utf-8", "replace"), "error": problem}
    return answered(doc)


def answered(doc: dict[str, Any], trusted: bool = False) -> dict[str, Any]:
    """A parsed entry as the query answers it (see `decode`).

    `trusted`: the entry was written by a sidecar moments ago (the live tail's published
    batches), so its `original` and `success` are JSON text (the ingest stores nothing
    else there) and go out as Fragments without being parsed again.
    """
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = doc.get(name)
        if value is None or value == "":
            continue
        if name in _JSON_FIELDS and isinstance(value, str):
            value = orjson.Fragment(value) if trusted else _json_or_text(value)
        out[name] = value
    for name in ALWAYS:
        value = doc.get(name)
        out[name] = value if isinstance(value, str) else ("" if value is None else str(value))
    tag = doc.get(CAPTURE)
    if isinstance(tag, str) and tag:
        out[CAPTURE] = tag
    return out


_JSON_FIELDS = ("original", "success")

# orjson reads up to 1024 levels of nesting but writes only 254: our ingest stores
# nothing it would have to re-encode deeper than this (see daemon/core/parse.py).
MAX_ENCODABLE_DEPTH = 254


def _json_or_text(text: str) -> Any:
    """Valid JSON text as a Fragment (written as stored), anything else as a string."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        # Beyond what orjson reads (nesting deeper than 1024 levels, a number beyond
        # double range) the grammar alone decides, as it does for Go.
        return orjson.Fragment(text) if is_json(text) else text
    return orjson.Fragment(text)
