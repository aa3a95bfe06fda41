"""Content-Encoding undone within a byte limit (daemon.core.encoding)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from daemon.core.encoding import DecodeFailure, DecodeProblem, inflate

EVENT = b'{"event_type": "pageview"}'


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(EVENT, mtime=0)),
        ("x-gzip", gzip.compress(EVENT, mtime=0)),
        (" GZIP ", gzip.compress(EVENT, mtime=0)),
        ("deflate", zlib.compress(EVENT)),
        ("deflate", raw_deflate(EVENT)),  # what some clients send as "deflate"
        ("gzip", zlib.compress(EVENT)),  # the header tells, whatever the label
        ("identity", EVENT),
        ("", EVENT),
    ],
)
def test_inflates(encoding: str, body: bytes) -> None:
    assert inflate(body, encoding, 1000) == EVENT


def test_concatenated_gzip_members() -> None:
    assert (
        inflate(gzip.compress(b"[1,", mtime=0) + gzip.compress(b"2]", mtime=0), "gzip", 100)
        == b"[1,2]"
    )


def problem(body: bytes, encoding: str, limit: int = 1000) -> DecodeFailure:
    result = inflate(body, encoding, limit)
    assert isinstance(result, DecodeFailure), result
    assert encoding.strip() in result.message
    return result


def test_the_limit_is_on_the_inflated_size() -> None:
    assert inflate(gzip.compress(b"0" * 1000, mtime=0), "gzip", 1000) == b"0" * 1000
    over = problem(gzip.compress(b"0" * 1001, mtime=0), "gzip")
    assert over.problem is DecodeProblem.TOO_LARGE
    assert "max_request_bytes (1000 bytes)" in over.message
    # A bomb is stopped at the limit, across members too.
    assert (
        problem(gzip.compress(b"0" * 10_000_000, mtime=0), "gzip").problem
        is DecodeProblem.TOO_LARGE
    )
    two = gzip.compress(b"0" * 600, mtime=0) * 2
    assert problem(two, "gzip").problem is DecodeProblem.TOO_LARGE


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (gzip.compress(EVENT, mtime=0)[:-12], "gzip"),
        (gzip.compress(EVENT, mtime=0)[:-1], "gzip"),  # the trailer cut short
        (zlib.compress(EVENT)[:5], "deflate"),
        (gzip.compress(EVENT, mtime=0)[:10], "gzip"),  # the header alone
    ],
)
def test_truncated(body: bytes, encoding: str) -> None:
    failure = problem(body, encoding)
    assert failure.problem is DecodeProblem.TRUNCATED
    assert "cut short" in failure.message


@pytest.mark.parametrize(
    ("body", "encoding", "expected"),
    [
        (b"this is not gzip", "gzip", DecodeProblem.CORRUPT),
        (b"nor deflate", "deflate", DecodeProblem.CORRUPT),
        (gzip.compress(EVENT, mtime=0) + b"trailing", "gzip", DecodeProblem.CORRUPT),
        (b"", "gzip", DecodeProblem.TRUNCATED),
    ],
)
def test_corrupt(body: bytes, encoding: str, expected: DecodeProblem) -> None:
    assert problem(body, encoding).problem is expected


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
def test_unsupported(encoding: str) -> None:
    failure = problem(b"xx", encoding)
    assert failure.problem is DecodeProblem.UNSUPPORTED
    assert "gzip, deflate or identity" in failure.message
