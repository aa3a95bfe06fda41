"""sidecar.mirror.reply: what the mirror listener answers.

A mirrored copy's answer is thrown away, so 202 with the ingest's counts is enough there;
a tracker sending straight to the mirror (a test's stand-in collector) reads the answer,
and Jitsu's SDKs log "Failed to send" for anything but 200. The rules below keep the
answer one a client takes as "accepted": the events were cached whatever it says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from daemon.config.fields import HeaderMap, setting

# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Printable ASCII, space and tab: what a header value may hold (no CR/LF: no header
# injection, no other controls).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
# What the listener writes itself: a second copy would contradict it.
RESERVED_HEADERS = ("content-length", "content-type", "transfer-encoding", "connection", "date")


def check_status(status: int) -> str | None:
    """2xx only: a tracker retries (and resends, duplicating the cached events) on any
    other answer, while the mirror has cached them; 204 and 205 carry no body, and the
    mirror's answer has one."""
    if not 200 <= status <= 299:
        return (
            f"must be a 2xx status (200-299), got {status}: the events are cached whatever "
            "the answer says, and a client retries (duplicating them) on anything else"
        )
    if status in (204, 205):
        return f"{status} carries no body and the mirror answers with one: use 200 or 202"
    return None


def check_body(body: str) -> str | None:
    """The answer is sent as application/json, and SDKs parse a 200's body as JSON."""
    if not body:
        return None
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as e:
        return f'must be JSON (sent as application/json), or "" for the ingest\'s answer: {e}'
    return None


def check_headers(headers: HeaderMap) -> str | None:
    """Header names are tokens, values printable ASCII; the framing headers are the
    listener's own."""
    problems = []
    for name, value in headers.items:
        if not _HEADER_NAME.fullmatch(name):
            problems.append(f"{name!r} is not a header name (letters, digits and !#$%&'*+.^_`|~-)")
        elif name.lower() in RESERVED_HEADERS:
            problems.append(f"{name!r} is set by the listener itself")
        elif not _HEADER_VALUE.fullmatch(value):
            problems.append(f"{name}: the value must be printable ASCII on one line, got {value!r}")
    return "; ".join(problems) or None


@dataclass(frozen=True)
class MirrorReplySettings:
    """sidecar.mirror.reply: the mirror's answer (not the proxy's: it relays the upstream's)."""

    status: int = setting(
        202,
        "Status of the mirror's answer: 2xx, not 204 or 205. 200 with body "
        '`{"status":"ok"}` answers as Jitsu\'s collector does, so Jitsu\'s SDKs can send to '
        "the mirror directly (tests: see docs/testing.md).",
        check=check_status,
    )
    body: str = setting(
        "",
        'Body of the answer, JSON (sent as `application/json`); `""`: the ingest answer\'s '
        "JSON (the counts of accepted, limited, dropped and invalid events).",
        check=check_body,
    )
    headers: HeaderMap = setting(
        HeaderMap(),
        "Headers added to every answer of the mirror, e.g. CORS headers "
        "(`Access-Control-Allow-Origin`) for a browser tracker; an `OPTIONS` request (a "
        "preflight) gets the status and these headers with no body. Not `Content-Length`, "
        "`Content-Type`, `Transfer-Encoding`, `Connection` or `Date`.",
        check=check_headers,
    )
