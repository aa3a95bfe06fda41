"""Limits at the source, without a sidecar: which events are held back, the count lines."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from events_cache_client._holds import Holds, count_lines_in, one_object


def _answer(now: float) -> dict[str, object]:
    until = datetime.fromtimestamp(now + 3600, timezone.utc).isoformat().replace("+00:00", "Z")
    return {
        "accepted": 0,
        "limited": [
            {"namespace": "token", "id": "a", "collections": ["all"], "until": until},
            {"namespace": "token", "id": "b", "collections": ["all", "error"], "until": until},
            {"namespace": "destination", "id": "d", "collections": ["all"], "until": until},
        ],
    }


def test_only_what_the_sidecar_would_certainly_limit_is_held_back() -> None:
    h, now = Holds(), time.time()
    h.answered(_answer(now), now)
    assert h.supported
    assert h.hold("a", b'{"x": 1}', None, True, now)  # a vouched object
    assert h.hold("a", {"x": 1}, None, False, now)  # a parsed object
    assert not h.hold("a", b'{"x": 1}', None, False, now)  # not vouched: may be malformed
    assert not h.hold("a", b"[{}]", None, True, now)  # an array: several events
    assert not h.hold("a", b"{}", "bad", True, now)  # an error: the error list has room
    assert h.hold("b", b"junk", "bad", False, now)  # both lists limited: any event
    assert not h.hold("d", b"{}", None, True, now)  # destinations are not held back
    assert not h.hold("a", b"{}", None, True, now + 7200)  # after `until`
    lines = h.take_lines()
    assert [json.loads(line) for line in lines] == [
        {"limited_at_source": 2, "namespace": "token", "id": "a", "collection": "all"},
        {"limited_at_source": 1, "namespace": "token", "id": "b", "collection": "all"},
        {"limited_at_source": 1, "namespace": "token", "id": "b", "collection": "error"},
    ]
    assert count_lines_in([*lines, b'{"namespace":"token"}']) == 3
    assert h.held == 3
    assert h.take_lines() == []


def test_counts_are_due_within_a_second() -> None:
    h, now = Holds(), time.time()
    h.answered(_answer(now), now)
    h.hold("a", {}, None, False, now)
    assert not h.due(now + 0.5)
    assert h.due(now + 1.0)


def test_an_old_sidecar_gets_no_count_lines() -> None:
    h, now = Holds(), time.time()
    h.answered(_answer(now), now)
    h.hold("a", {}, None, False, now)
    h.answered({"accepted": 1}, now)
    assert not h.hold("a", {}, None, False, now)
    assert h.take_lines() == []


def test_one_object() -> None:
    assert one_object(b" \n{}", True)
    assert one_object("{}", True)
    assert not one_object(b"{}", False)
    assert not one_object(b"[]", True)
    assert not one_object([], False)
