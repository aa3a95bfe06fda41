"""Choosing an answer's events: filters, `before` paging and the response bound."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from daemon.core.cut import PREVIEW_BYTES, preview
from daemon.query.params import parse_query
from daemon.query.selection import Anchor, Selection


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
    return [orjson.loads(e)["uid"] for e in selection.events]


def select(
    params: dict[str, str],
    entries: list[bytes] = LIST,
    max_events: int = 100,
    max_bytes: int = 1 << 24,
    anchor: Anchor | None = None,
) -> Selection:
    selection = Selection(parse_query(params, size=100), max_events, max_bytes)
    selection.anchor = anchor or (Anchor("k", None) if params.get("before") else None)
    selection.begin("k")
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
    elsewhere = Anchor("other", datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC).timestamp())
    selection = select({"before": "elsewhere"}, anchor=elsewhere)
    assert uids(selection) == ["u4", "u3", "u2", "u1", "u0"]
    nowhere = Selection(parse_query({"before": "gone"}, 100), 100, 1 << 24)
    nowhere.begin("k")
    assert not nowhere.add(LIST) and uids(nowhere) == []


def test_the_answer_is_bounded_and_says_so() -> None:
    selection = Selection(parse_query({}, 100), max_events=12, max_bytes=1 << 24)
    selection.begin("k")
    selection.add(LIST)
    assert not selection.truncated and not selection.full
    selection.begin("j")
    selection.add(LIST)
    assert len(selection.events) == 12 and selection.truncated and selection.full


def test_entries_without_a_usable_time_never_match_a_time_filter() -> None:
    odd = [b'{"original":"{}","uid":"x","timestamp":"later"}', b"not json", entry("ok", 9)]
    assert uids(select({"since": "2024-05-01T12:00:00Z"}, odd)) == ["ok"]
    assert uids(select({"q": "x"}, odd)) == ["x"]


def array(selection: Selection) -> bytes:
    """The `events` array of the answer, as the service writes it."""
    return b"[" + b",".join(selection.events) + b"]"


def test_the_bytes_bound_is_exact() -> None:
    """An answer whose events land exactly on max_response_bytes holds them all; one byte
    less and the last one is left out, whole, and the answer says it was cut."""
    whole = select({})
    exact = len(array(whole))
    at = select({}, max_bytes=exact)
    assert uids(at) == uids(whole) and not at.truncated and len(array(at)) == exact
    under = select({}, max_bytes=exact - 1)
    assert uids(under) == uids(whole)[:-1] and under.truncated
    assert len(array(under)) <= exact - 1
    assert [orjson.loads(e) for e in under.events] == orjson.loads(array(whole))[:-1]


def test_an_event_larger_than_the_bound_is_cut_and_whole_by_uid() -> None:
    big = entry("big", 30, error="x" * 300_000)
    entries = [entry("small", 31), big, *LIST]
    bound = 131072
    page = select({}, entries, max_bytes=bound)
    assert uids(page)[:2] == ["small", "big"] and len(array(page)) <= bound
    cut = orjson.loads(page.events[1])
    assert cut["cut"] == {"error": 300_000} and cut["error"] == "x" * 8190
    assert cut["original"] == {"n": "big"}  # short fields stay whole
    alone = select({"uid": "big"}, entries, max_bytes=bound)
    assert len(alone.events) == 1 and orjson.loads(alone.events[0])["error"] == "x" * 300_000
    assert not alone.truncated and alone.full
    assert uids(select({"uid": "u3"}, entries)) == ["u3"]
    assert uids(select({"uid": "nope"}, entries)) == []


def test_a_cut_preview_is_bounded_in_json_bytes() -> None:
    assert len(orjson.dumps(preview("\x01" * 100_000))) <= PREVIEW_BYTES
    assert len(orjson.dumps(preview("é" * 100_000))) <= PREVIEW_BYTES
    assert preview("short") == "short"


def v7(second: int, seq: int = 0) -> str:
    """A version 7 uid made at the given second of 2024-05-01T12:00 UTC."""
    ms = int(datetime(2024, 5, 1, 12, 0, second, tzinfo=UTC).timestamp() * 1000)
    h = f"{ms:012x}"
    return f"{h[:8]}-{h[8:]}-7000-8{seq:03x}-000000000000"


def select_after(anchor: str, entries: list[bytes]) -> list[str]:
    query = replace(parse_query({}, size=100), after=anchor)
    selection = Selection(query, 100, 1 << 24)
    selection.begin("k")
    selection.add(entries)
    return uids(selection)


def test_after_a_v7_uid_by_uid_order_and_old_random_uids_by_their_time() -> None:
    # newest first: v7 uids of seconds 30..20 (two in second 25), then random ones
    newer = [entry(v7(s), s) for s in range(30, 25, -1)]
    same_ms = [entry(v7(25, 2), 25), entry(v7(25, 1), 25)]
    older = [entry(v7(s), s) for s in range(24, 19, -1)]
    anchor = v7(25, 1)
    assert select_after(anchor, newer + same_ms + older) == [
        *(v7(s) for s in range(30, 25, -1)),
        v7(25, 2),  # the same millisecond, made after the anchor
    ]
    # entries cached before uids were time-ordered: after the anchor when their
    # timestamp is later
    old = [entry("6f1c9a7e-0d4b-4c44-9a57-2f1e4b0c1d2e", 27), entry("u-old", 24)]
    assert select_after(anchor, old) == ["6f1c9a7e-0d4b-4c44-9a57-2f1e4b0c1d2e"]


def test_after_reads_an_id_on_only_a_few_seconds_past_the_anchor() -> None:
    """Entries out of their uids' order by less than AFTER_SLACK_S (5 s) are still
    found; the id's reading ends at the first entry older than that."""
    out_of_order = [entry(v7(40), 40), entry(v7(35), 35), entry(v7(38), 38)]
    long_ago = [entry(v7(20), 20), entry(v7(50), 50)]  # 50: never reached
    assert select_after(v7(36), out_of_order + long_ago) == [v7(40), v7(38)]
