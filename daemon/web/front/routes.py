"""What the ingest and mirror listeners answer, by request head and then by body.

A route looks at a request's head first (method, target, headers, declared length) and
may answer it there: a wrong path or method, a token id the id rule refuses, a declared
body over the limit. Otherwise it answers once the body is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from daemon.core.ids import check_id
from daemon.core.wire import NDJSON_EVENTS_PATH, TOKEN_EVENTS_PATH
from daemon.web.ingest import DISABLED, Answer, Intake, RawHeaders, Work, message
from daemon.web.mirror import Mirror

ANY_PATH_LABEL = "/{tail}"  # ANY_PATH's canonical form, the label aiohttp's router gave it
UNMATCHED = "unmatched"  # the route label of a 404 or 405, as aiohttp's router gave it
INGEST_NOT_FOUND = (
    "Not Found: this is the events-cache ingest listener, which takes POST "
    f"{TOKEN_EVENTS_PATH} and POST {NDJSON_EVENTS_PATH}; the query API and the viewer "
    "are on the API listener (sidecar.api.listen)"
)
_NDJSON_PATH = NDJSON_EVENTS_PATH.encode()
_PREFIX, _SUFFIX = (part.encode() for part in TOKEN_EVENTS_PATH.split("{token_id}"))
MAX_KNOWN_PATHS = 4096
_NOT_ALLOWED = Answer(405, b'{"message":"Method Not Allowed"}', headers=b"\r\nAllow: POST")


@dataclass(slots=True)
class Head:
    """A request once its head is read: its route label (for request times), method,
    target, the token id of a token path, and the answer when the head settles it."""

    label: str
    method: str
    target: bytes
    token: str | None = None
    refusal: Answer | None = None


# A body larger than this is parsed in a step of its own, in the pacer's turn (a parse of
# 64 KiB is short, whatever the body holds).
INLINE_BODY_BYTES = 64 * 1024
INTERNAL_ERROR = message(500, "internal error; see the sidecar's log")


class Route(Protocol):
    """A listener's answers."""

    def head(self, method: str, target: bytes, headers: RawHeaders, length: int | None) -> Head:
        """The request's head read; its refusal when the head settles it."""

    def answer(self, head: Head, headers: RawHeaders, body: bytes) -> Answer | Work:
        """The answer once the whole body is read (or the work that makes it)."""

    def too_large(self) -> Answer:
        """A body grew past the limit while being read."""

    def body_timeout(self) -> Answer:
        """A body not complete in time."""


def in_steps(route: Route, head: Head, headers: RawHeaders, body: bytes) -> Work:
    """A large body's answer as steps: its parse alone, then its slices if any."""
    result = route.answer(head, headers, body)
    if isinstance(result, Answer):
        return result
    yield
    return (yield from result)


def token_of(path: bytes) -> str | None:
    """The token id of a `/v1/token/{token_id}/events` path, percent-decoded (so an id
    may hold "/" as %2F), or None when the path is not one: one non-empty segment. (The
    id rule, applied after, decides what the segment may hold: braces too, as NDJSON
    lines may have them.)"""
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    raw = path[len(_PREFIX) : -len(_SUFFIX)]
    if not raw or b"/" in raw:
        return None
    text = raw.decode("utf-8", "surrogateescape")
    if b"%" in raw:
        try:
            text = unquote(text, errors="strict")
        except UnicodeDecodeError:
            pass  # escapes that are not UTF-8 stay as sent, as yarl leaves them
    return text or None


class IngestRoute:
    """POST /v1/token/{token_id}/events and POST /v1/events."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        # The token ids of the paths seen lately (a pod's ingest sends the same few), and
        # whether the id rule takes them.
        self.tokens: dict[bytes, tuple[str | None, bool]] = {}

    def head(self, method: str, target: bytes, headers: RawHeaders, length: int | None) -> Head:
        path = target.partition(b"?")[0]
        if path == _NDJSON_PATH:
            token, known_good = None, False
        elif path in self.tokens:
            token, known_good = self.tokens[path]
        else:
            token = token_of(path)
            if len(self.tokens) >= MAX_KNOWN_PATHS:
                self.tokens.clear()
            known_good = token is not None and check_id(token) is None
            self.tokens[path] = token, known_good
        if token is None and path != _NDJSON_PATH:
            return Head(UNMATCHED, method, target, refusal=message(404, INGEST_NOT_FOUND))
        if method != "POST":
            return Head(UNMATCHED, method, target, refusal=_NOT_ALLOWED)
        label = NDJSON_EVENTS_PATH if token is None else TOKEN_EVENTS_PATH
        head = Head(label, method, target, token)
        intake = self.intake
        if not intake.enabled:
            head.refusal = message(503, DISABLED)
        elif length is not None and length > intake.max_request_bytes:
            head.refusal = intake.too_large(length)
        elif token is not None and not known_good:
            head.refusal = intake.token_problem(token)
        return head

    def answer(self, head: Head, headers: RawHeaders, body: bytes) -> Answer | Work:
        if head.token is None:
            return self.intake.ndjson_events(body, headers)
        return self.intake.token_events(head.token, body, headers)

    def too_large(self) -> Answer:
        return self.intake.too_large()

    def body_timeout(self) -> Answer:
        return self.intake.body_timeout()


class MirrorRoute:
    """Any method and path: a mirrored copy of an ingest request."""

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror
        self.intake = mirror.intake

    def head(self, method: str, target: bytes, headers: RawHeaders, length: int | None) -> Head:
        head = Head(ANY_PATH_LABEL, method, target)
        framed = self.mirror.reply.framed
        if not self.intake.enabled:
            head.refusal = framed(message(503, DISABLED))
        elif length is not None and length > self.intake.max_request_bytes:
            head.refusal = framed(self.intake.too_large(length))
        return head

    def answer(self, head: Head, headers: RawHeaders, body: bytes) -> Answer | Work:
        return self.mirror.mirrored(head.method, head.target, headers, body)

    def too_large(self) -> Answer:
        return self.mirror.reply.framed(self.intake.too_large())

    def body_timeout(self) -> Answer:
        return self.mirror.reply.framed(self.intake.body_timeout())
