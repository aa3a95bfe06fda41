"""JSON checked without being built (daemon/core/unbuilt.py): what it accepts, and that
the ingest's answers and counts are the same with it as without it."""

from __future__ import annotations

import json
from functools import partial

import orjson
import pytest

from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.core.model import Namespace
from daemon.core.ndjson import iter_ndjson
from daemon.core.parse import LineReport
from daemon.core.unbuilt import SIMDJSON_MAX_BYTES, common_token_line_id, is_one_object
from daemon.core.wire import MAX_ID_BYTES
from daemon.metrics import Metrics
from daemon.metrics.summary import totals
from daemon.pipeline.admission import Admission
from daemon.pipeline.queue import EventQueue


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": 1}', True),
        (b'  {"a": {"b": [1, 2]}}\n', True),
        (b"{}", True),
        (b"[{}]", False),
        (b'"text"', False),
        (b'{"a": 1', False),
        (b'{"a": 1}x', False),
        (b'{"a": "\xff"}', False),  # not UTF-8
        (b'{"a": "\\ud800"}', False),  # a lone surrogate: orjson refuses it too
        (b'{"a": 123456789012345678901234567890}', True),  # simdjson refuses, orjson reads
        (b'{"a": ' + b"[" * 1100 + b"]" * 1100 + b"}", False),  # deeper than either reads
        (b'{"pad": "' + b"x" * SIMDJSON_MAX_BYTES + b'"}', True),  # large: orjson's
    ],
)
def test_is_one_object_agrees_with_orjson(body: bytes, expected: bool) -> None:
    try:
        by_orjson = type(orjson.loads(body)) is dict
    except orjson.JSONDecodeError:
        by_orjson = False
    assert is_one_object(body) is expected is by_orjson


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"namespace": "token", "id": "k", "original": {"a": 1}}', "k"),
        (b'{"original": {}, "id": "k", "namespace": "token"}', "k"),
        (b'{"namespace": "token", "id": "k", "id": "j", "original": {}}', None),
        (b'{"namespace": "token", "id": "k", "original": {}, "error": "x"}', None),
        (b'{"namespace": "destination", "id": "k", "original": {}}', None),
        (b'{"namespace": "token", "id": "", "original": {}}', None),
        (b'{"namespace": "token", "id": 7, "original": {}}', None),
        (b'{"namespace": "token", "id": "k", "original": "text"}', None),
        (b'{"namespace": "token", "id": "k", "original": {"n": 1e999}}', None),
        (b'{"namespace": "token", "id": "k", "original": {}', None),
        (b"[1, 2, 3]", None),
    ],
)
def test_common_token_line_id(line: bytes, expected: str | None) -> None:
    assert common_token_line_id(line) == expected


def test_an_id_over_the_length_limit_is_not_the_common_shape() -> None:
    id_ = "k" * (MAX_ID_BYTES + 1)
    line = json.dumps({"namespace": "token", "id": id_, "original": {}}).encode()
    assert common_token_line_id(line) is None
    assert common_token_line_id(line.replace(id_.encode(), id_[1:].encode())) == id_[1:]


def _lines() -> list[bytes]:
    """Every kind of line, several times over one busy token (limited after 3 events)."""
    kinds = [
        {"namespace": "token", "id": "busy", "original": {"n": 1}},
        {"namespace": "token", "id": "busy", "original": {"n": 1}, "error": "failed"},
        {"namespace": "token", "id": "busy", "malformed": "{not json"},
        {"namespace": "token", "id": "busy", "original": "text"},
        {"namespace": "destination", "id": "d", "original": {"n": 1}, "success": {}},
        {"namespace": "token", "id": "quiet", "original": {"n": 2}},
    ]
    lines = [orjson.dumps(k) for k in kinds]
    # Deeper than orjson writes (254): invalid when read, limited or not.
    nested = b'{"n":' * 300 + b"{}" + b"}" * 300
    lines.append(b'{"namespace": "token", "id": "busy", "original": ' + nested + b"}")
    lines.append(b'{"namespace": "token", "id": "busy", "id": "other", "original": {}}')
    lines.append(b'{"namespace": "token", "id": "busy", "original": {"n": 1}')  # cut short
    lines.append(b'{"namespace": "token", "id": "busy", "original": {"n": 99999999999999999999}}')
    return lines * 6


def _admit(with_limited: bool) -> tuple[list[object], dict[str, float]]:
    metrics = Metrics("test")
    queue = EventQueue(10_000, 1)
    admission = Admission(queue, RateLimiters(3, 3600), LimitedCounter(), metrics)
    answers: list[object] = []
    body = b"\n".join(_lines())
    for _ in range(3):
        report = LineReport()
        limited = partial(admission.all_limited, Namespace.TOKEN) if with_limited else None
        outcome = admission.submit(iter_ndjson(body, 100, report, limited))
        answers.append((outcome, report.invalid, report.errors))
    entries, _ = queue.take(0, 10**6, 1 << 40)
    for entry in entries:  # each entry's own uid and time set aside
        stored = {
            k: v for k, v in orjson.loads(entry.data).items() if k not in ("uid", "timestamp")
        }
        answers.append((entry.namespace, entry.id, entry.target, stored))
    return answers, totals(metrics.registry)


def test_lines_left_unbuilt_are_counted_as_the_built_ones_were() -> None:
    """The same bodies, with and without the unbuilt path: the same answers (accepted,
    limited, invalid lines and their messages), the same entries queued, the same
    counts."""
    assert _admit(with_limited=True) == _admit(with_limited=False)
