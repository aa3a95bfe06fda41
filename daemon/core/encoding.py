"""Request bodies' Content-Encoding, undone within a byte limit.

Every ingest-side entrance (the ingest and mirror listeners, the proxy's tee) reads a
body as it came and inflates it here, not in the HTTP library: one rule for all of
them, an inflated size bounded by the limit whatever the framing (inflation stops at
limit + 1 bytes, so a gzip bomb costs no more than a body of the limit), and an answer
that says what is wrong with a stream that is corrupt or ends early.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import Enum

SUPPORTED = "gzip, deflate or identity"
# 47 = 32 + 15: a zlib or a gzip header, detected; raw deflate (some clients send it
# as "deflate") is the fallback when neither header is there.
_DETECT_HEADER, _RAW_DEFLATE = 47, -15
_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})


class DecodeProblem(Enum):
    """Why a body could not be inflated."""

    UNSUPPORTED = "unsupported"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A body that cannot be had: the problem and a message naming it."""

    problem: DecodeProblem
    message: str


def inflate(body: bytes, content_encoding: str, limit: int) -> bytes | DecodeFailure:
    """The body with its Content-Encoding undone, at most `limit` bytes, or why not."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in _CODINGS:
        return DecodeFailure(
            DecodeProblem.UNSUPPORTED,
            f"Content-Encoding {content_encoding.strip()!r} is not supported: send {SUPPORTED}",
        )
    result = _members(body, _DETECT_HEADER, limit, coding)
    if coding == "deflate" and isinstance(result, DecodeFailure):
        if result.problem is DecodeProblem.CORRUPT:
            raw = _members(body, _RAW_DEFLATE, limit, coding)
            return result if isinstance(raw, DecodeFailure) else raw
    return result


def _members(body: bytes, wbits: int, limit: int, coding: str) -> bytes | DecodeFailure:
    """Inflate one stream after another (gzip allows concatenated members)."""
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            part = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as e:
            return DecodeFailure(
                DecodeProblem.CORRUPT,
                f"the request body is not valid {coding} data (Content-Encoding: {coding}): "
                + str(e).removeprefix("Error -3 while decompressing data: "),
            )
        size += len(part)
        parts.append(part)
        if size > limit:
            return DecodeFailure(
                DecodeProblem.TOO_LARGE,
                "the request body inflates to more than sidecar.ingest.max_request_bytes "
                f"({limit} bytes) (Content-Encoding: {coding})",
            )
        if not inflater.eof:
            return DecodeFailure(
                DecodeProblem.TRUNCATED,
                f"the request body ends before its {coding} stream does "
                f"(Content-Encoding: {coding}): the body was cut short",
            )
        rest = inflater.unused_data
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)
