"""Choosing an answer's events: filters, `before` paging and the response bound."""

from __future__ import annotations

from typing import Any

import orjson

from daemon.web.query.params import parse_query
from daemon.web.query.selection import Selection, find_anchor


def entry(uid: str, second: int, **fields: str) -> bytes:
    """A stored entry of the given second of 2024-05-01T12:00 UTC."""
    doc: dict[str, Any] = {"original": orjson.dumps({"n": uid}).decode(), **fields}
    doc["timestamp"] = f"2024-05-01T12:00:{second:02d}.000000Z"
    doc["uid"] = uid
    doc["token_id"] = "k"
    return orjson.dumps(doc)


# newest first, as LRANGE returns them
LIST = [
    entry(f"u{n}", n, **({"error": "Table MISSING"} if n % 3 == 0 else {}))
    for n in range(9, -1, -1)
]


def uids(selection: Selection) -> list[str]:
    return [e["uid"] for e in selection.events]


def select(params: dict[str, str], entries: list[bytes] = LIST, max_events: int = 100) -> Selection:
    selection = Selection(parse_query(params, size=100), max_events)
    selection.add(entries)
    return selection


def test_no_filter_is_jitsus_newest_limit() -> None:
    assert uids(select({"limit": "3"})) == ["u9", "u8", "u7"]


def test_since_until_and_text_alone_and_combined() -> None:
    assert uids(select({"since": "2024-05-01T12:00:07Z"})) == ["u9", "u8", "u7"]
    assert uids(select({"until": "2024-05-01T12:00:01Z"})) == ["u1", "u0"]
    assert uids(select({"q": "table missing"})) == ["u9", "u6", "u3", "u0"]
    combined = {
        "q": "missing",
        "since": "2024-05-01T14:00:03+02:00",
        "until": "2024-05-01T12:00:08Z",
    }
    assert uids(select(combined)) == ["u6", "u3"]
    assert uids(select({**combined, "limit": "1"})) == ["u6"]


def test_before_pages_by_position_in_the_list() -> None:
    page = select({"limit": "4"})
    assert uids(page) == ["u9", "u8", "u7", "u6"]
    older = select({"limit": "4", "before": "u6"})
    assert uids(older) == ["u5", "u4", "u3", "u2"]
    # New entries on top do not move the page: positions are relative to the anchor.
    grown = [entry("u11", 11), entry("u10", 10), *LIST]
    assert uids(select({"limit": "4", "before": "u6"}, grown)) == uids(older)


def test_before_a_uid_the_list_lacks() -> None:
    """Another id's anchor: by its time; no anchor anywhere: nothing (trimmed away)."""
    selection = Selection(parse_query({"before": "elsewhere"}, 100), 100)
    selection.anchor_time = find_anchor([[entry("elsewhere", 5)]], "elsewhere")
    selection.add(LIST)
    assert uids(selection) == ["u4", "u3", "u2", "u1", "u0"]
    assert uids(select({"before": "gone"})) == []


def test_the_answer_is_bounded_and_says_so() -> None:
    selection = Selection(parse_query({}, 100), max_events=12)
    selection.add(LIST)
    assert not selection.truncated and not selection.full
    selection.add(LIST)
    assert len(selection.events) == 12 and selection.truncated and selection.full


def test_entries_without_a_usable_time_never_match_a_time_filter() -> None:
    odd = [b'{"original":"{}","uid":"x","timestamp":"later"}', b"not json", entry("ok", 9)]
    assert uids(select({"since": "2024-05-01T12:00:00Z"}, odd)) == ["ok"]
    assert uids(select({"q": "x"}, odd)) == ["x"]
