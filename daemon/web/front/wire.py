"""The bytes of the front door's answers, and its limits on a request's head."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

from daemon.web.ingest import Answer

MAX_FIELD_BYTES = 8190  # one header, name and value (aiohttp's limit, and nginx's default)
MAX_HEAD_BYTES = 65536  # every header of a request together
# A body refused before it is read is still read and let go, up to this, so that a
# client that sends it whole before reading gets the answer; a larger one is cut.
MAX_DISCARD_BYTES = 16 * 1024 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}
_JSON = b"Content-Type: application/json\r\nContent-Length: "
_CLOSE = b"\r\nConnection: close"


class _Date:
    """The Date header, formatted once a second rather than once a request."""

    __slots__ = ("line", "second")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.line = b"\r\nDate: " + formatdate(second, usegmt=True).encode()
        return self.line


_DATE = _Date()


def response_bytes(answer: Answer, close: bool) -> bytes:
    """The whole response: status line, headers and the JSON body, in one write. The
    last few are kept for the current second (their Date line): a busy pod sends the
    same 202 over and over."""
    date = _DATE.now()
    if date is not _RECENT.date:
        _RECENT.responses.clear()
        _RECENT.date = date
    key = (answer.status, answer.body, answer.headers, close)  # hashes cached by bytes
    response = _RECENT.responses.get(key)
    if response is None:
        response = _response_bytes(answer, close, date)
        if len(_RECENT.responses) < _MAX_RECENT:
            _RECENT.responses[key] = response
    return response


class _Recent:
    """Responses written in the current second, by answer."""

    def __init__(self) -> None:
        self.date = b""
        self.responses: dict[tuple[int, bytes, bytes, bool], bytes] = {}


_RECENT = _Recent()
_MAX_RECENT = 64


def _response_bytes(answer: Answer, close: bool, date: bytes) -> bytes:
    status = _STATUS_LINES.get(answer.status) or f"HTTP/1.1 {answer.status} \r\n".encode()
    return b"".join(
        (
            status,
            _JSON,
            str(len(answer.body)).encode(),
            date,
            answer.headers,
            _CLOSE if close else b"",
            b"\r\n\r\n",
            answer.body,
        )
    )


def content_length(value: bytes | None) -> int | None:
    """A Content-Length header's value (None: absent; the parser refuses a bad one)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None  # the parser has refused it already


def parse_error(error: Exception) -> str:
    """What the parser said, for a 400."""
    text = str(error).strip()
    return text or type(error).__name__
