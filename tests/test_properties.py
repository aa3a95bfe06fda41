"""Property-based tests: the NDJSON and token-body parsers, the limiter, the query parser.

Whatever the input, parsing never raises, counts add up, what we store is what Jitsu
Classic reads (JSON text in `original` and `success`, its timestamp layout), and the
limiter never lets more through than its bucket allows.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.core.entry import encode
from daemon.core.ids import check_id
from daemon.core.jsontext import is_json
from daemon.core.limiter import LIMITED_WINDOW_S, Bucket, RateLimiters, last_minute_total
from daemon.core.model import Namespace
from daemon.core.ndjson import _entry, iter_ndjson
from daemon.core.parse import LineReport, parse_token_body
from daemon.core.wire import MAX_ID_BYTES, MAX_REPORTED_ERRORS
from daemon.query.params import QueryError, parse_query

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)
ids = st.text(min_size=1, max_size=40).filter(lambda s: check_id(s) is None)


# -- NDJSON ----------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000))
def test_ndjson_never_raises_and_every_line_is_counted(body: bytes) -> None:
    batch = LineReport()
    events = list(iter_ndjson(body, 100, batch))
    lines = [line for line in body.split(b"\n") if line.strip()]
    assert len(events) + batch.invalid == len(lines)
    assert len(batch.errors) == min(batch.invalid, MAX_REPORTED_ERRORS)
    numbers = [e.line for e in batch.errors]
    assert numbers == sorted(numbers) and all(1 <= n <= body.count(b"\n") + 1 for n in numbers)
    assert all(e.message for e in batch.errors)


def _line(entry: dict[str, Any]) -> bytes:
    return orjson.dumps(entry)


timestamps = st.one_of(
    st.none(),
    st.sampled_from(
        ["2024-05-01T12:00:00Z", "2024-05-01t12:00:00.123456789+02:00", "2024-05-01", ""]
    ),
    st.text(max_size=30),
    st.integers(-(2**63), 2**63 - 1),
)


@SETTINGS
@given(ids, json_objects, timestamps, st.sampled_from(["timestamp", "skip", "capture"]))
def test_the_inline_token_line_agrees_with_the_general_path(
    id_: str, original: dict[str, Any], fourth: Any, name: str
) -> None:
    """The common token line (with or without the clients' "timestamp") is read inline:
    the same event, or the same refusal, as the general path."""
    doc: dict[str, Any] = {"namespace": "token", "id": id_, "original": original}
    if fourth is not None:
        doc[name] = fourth
    report = LineReport()
    inline = list(iter_ndjson(orjson.dumps(doc), 100, report))
    general = _entry(orjson.loads(orjson.dumps(doc)), 100, lazy=True)
    if isinstance(general, str):
        assert inline == [] and report.errors[0].message == general
        return
    [event] = inline
    fields = ("namespace", "id", "token_id", "original", "timestamp", "skip", "capture")
    assert [getattr(event, f) for f in fields] == [getattr(general, f) for f in fields]


token_entries = st.builds(
    lambda id_, original, skip: (
        {"namespace": "token", "id": id_, "original": original} | ({"skip": skip} if skip else {})
    ),
    ids,
    json_objects,
    st.text(max_size=5),
)
destination_entries = st.builds(
    lambda id_, original, outcome: (
        {"namespace": "destination", "id": id_, "original": original} | outcome
    ),
    ids,
    json_objects | st.text(min_size=1, max_size=30),
    st.one_of(
        st.builds(lambda s: {"success": s}, json_objects),
        st.builds(lambda e: {"error": e}, st.text(min_size=1, max_size=10)),
        st.builds(lambda s: {"skip": s}, st.text(min_size=1, max_size=10)),
    ),
)
garbage_lines = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    st.builds(lambda v: orjson.dumps(v), json_values),
    st.builds(lambda o: orjson.dumps({"namespace": "token", **o}), json_objects),
)


@SETTINGS
@given(st.lists(st.one_of(token_entries, destination_entries), max_size=20), st.data())
def test_valid_entries_all_parse_whatever_is_mixed_in(entries: list[Any], data: Any) -> None:
    lines = [_line(e) for e in entries]
    garbage = data.draw(st.lists(garbage_lines, max_size=10))
    body_lines = list(lines)
    for g in garbage:
        body_lines.insert(data.draw(st.integers(0, len(body_lines))), g)
    batch = LineReport()
    events = list(iter_ndjson(b"\n".join(body_lines), 100, batch))
    # every valid entry made an event, in order, with its id and namespace
    valid = [(e["namespace"], e["id"]) for e in entries]
    got = [(str(ev.namespace), ev.id) for ev in events]
    assert _is_subsequence(valid, got)
    for ev in events:
        assert 0 < len(ev.id) <= MAX_ID_BYTES
        if ev.namespace == Namespace.TOKEN and ev.original is not None:
            assert isinstance(orjson.loads(ev.original), dict)


def _is_subsequence(needle: list[Any], haystack: list[Any]) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


# -- raw token bodies ------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=3000), st.integers(1, 500), st.text(max_size=5), st.text(max_size=5))
def test_token_body_never_raises_and_malformed_is_cut(
    body: bytes, max_bytes: int, skip: str, error: str
) -> None:
    events = parse_token_body(body, "key", max_bytes, skip=skip or None, ingest_error=error or None)
    assert events
    for ev in events:
        assert ev.token_id == "key" and ev.namespace == Namespace.TOKEN
        assert (ev.original is None) != (ev.malformed is None)
        if ev.malformed is not None:
            assert ev.error
            assert len(ev.malformed.encode("utf-8", "surrogatepass")) <= max_bytes * 3
        else:
            assert isinstance(json.loads(ev.original or ""), dict)


@SETTINGS
@given(st.lists(json_objects, min_size=1, max_size=10))
def test_token_array_of_objects_is_one_event_each(objects: list[dict[str, Any]]) -> None:
    events = parse_token_body(orjson.dumps(objects), "key", 100)
    assert [orjson.loads(ev.original or "") for ev in events] == [
        orjson.loads(orjson.dumps(o)) for o in objects
    ]


# -- JSON text (the grammar Go's json.RawMessage checks) -------------------------------------


def _strict_json(text: str) -> bool:
    """Python's json, strict (no NaN/Infinity): the RFC 8259 grammar at shallow depths."""

    def constant(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=constant)
    except ValueError:
        return False
    return True


json_ish = st.text(alphabet='[]{}:," \\\t\n0123456789.eE+-truefalsnu\x01\x7fé', max_size=24)


@SETTINGS
@given(json_ish | st.builds(lambda v: orjson.dumps(v).decode(), json_values))
def test_is_json_agrees_with_a_strict_parser(text: str) -> None:
    assert is_json(text) == _strict_json(text), text


@SETTINGS
@given(json_values, st.integers(0, 3), st.data())
def test_is_json_on_json_text_cut_or_extended(value: Any, spaces: int, data: Any) -> None:
    text = orjson.dumps(value).decode()
    assert is_json(" " * spaces + text + "\n" * spaces)
    # One character taken out: whatever remains, the strict parser's verdict.
    n = data.draw(st.integers(0, len(text) - 1))
    assert is_json(text[:n] + text[n + 1 :]) == _strict_json(text[:n] + text[n + 1 :])
    # Something after a complete value is never JSON.
    assert not is_json(text + data.draw(st.sampled_from(["]", "}", ",", ":", '"', "x", " x"])))


# -- what we store, as Jitsu Classic reads it -------------------------------------------------

# Go's layout "2006-01-02T15:04:05.000000Z": how Jitsu writes every timestamp, and the
# only one its timestamp.ParseISOFormat reads.
JITSU_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def _jitsu_time(text: str) -> datetime:
    assert JITSU_TIME.fullmatch(text), f"not Jitsu's layout: {text!r}"
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _as_jitsu_reads(stored: bytes) -> dict[str, Any]:
    """A stored entry: string fields; `original`/`success` JSON text (Jitsu embeds them
    as json.RawMessage); `timestamp` in Jitsu's layout."""
    doc = orjson.loads(stored)
    assert all(isinstance(v, str) and v for v in doc.values()), doc
    for name in ("original", "success"):
        if name in doc:
            assert _strict_json(doc[name]), doc[name]
    _jitsu_time(doc["timestamp"])
    return doc


@SETTINGS
@given(
    st.lists(st.one_of(token_entries, destination_entries), max_size=10),
    st.lists(garbage_lines, max_size=5),
    st.floats(0, 253_402_300_799),
)
def test_every_ndjson_entry_we_store_is_read_by_jitsu(
    entries: list[Any], garbage: list[bytes], now: float
) -> None:
    body = b"\n".join([_line(e) for e in entries] + garbage)
    for event in iter_ndjson(body, 100, LineReport()):
        doc = _as_jitsu_reads(encode(event, now))
        if event.namespace == Namespace.DESTINATION and "original" in doc:
            assert isinstance(json.loads(doc["original"]), dict | str)


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(orjson.dumps, json_objects),
        st.builds(orjson.dumps, st.lists(json_values, max_size=4)),
    ),
    st.floats(0, 253_402_300_799),
)
def test_every_token_body_entry_we_store_is_read_by_jitsu(body: bytes, now: float) -> None:
    for event in parse_token_body(body, "key", 100):
        _as_jitsu_reads(encode(event, now))


@SETTINGS
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.text(alphabet="0123456789", max_size=12),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    st.booleans(),
)
def test_every_ingest_timestamp_is_stored_at_its_instant_in_jitsus_layout(
    local: datetime, fraction: str, offset_min: int, lower: bool
) -> None:
    """RFC 3339 in any zone and precision -> the same instant in UTC, to the microsecond
    (further digits dropped)."""
    local = local.replace(microsecond=0)
    sign, offset = ("-", -offset_min) if offset_min < 0 else ("+", offset_min)
    zone = ("z" if lower else "Z") if offset_min == 0 and lower else f"{sign}{offset // 60:02d}:"
    zone += "" if zone in ("z", "Z") else f"{offset % 60:02d}"
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}{'t' if lower else 'T'}"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        + (f".{fraction}" if fraction else "")
        + zone
    )
    micro = int(fraction[:6].ljust(6, "0"))
    instant = (local + timedelta(microseconds=micro) - timedelta(minutes=offset_min)).replace(
        tzinfo=UTC
    )
    line = {"namespace": "destination", "id": "d", "original": {}, "skip": "s", "timestamp": text}
    report = LineReport()
    [event] = iter_ndjson(_line(line), 100, report)
    assert _jitsu_time(_as_jitsu_reads(encode(event, 0.0))["timestamp"]) == instant, text


# -- limiter ---------------------------------------------------------------------------------


@SETTINGS
@given(
    st.integers(1, 50),
    st.integers(1, 120),
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=300),
)
def test_bucket_never_allows_more_than_capacity_plus_refills(
    capacity: int, window_s: int, gaps: list[float]
) -> None:
    limiters = RateLimiters(capacity, window_s)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        allowed += limiters.allow("k", now)
        assert allowed <= capacity + int(now / limiters.refill_interval_s)
    # the first `capacity` events of a fresh bucket are always allowed
    fresh = RateLimiters(capacity, window_s)
    assert all(fresh.allow("k", 0.0) for _ in range(capacity))
    assert not fresh.allow("k", 0.0)


@SETTINGS
@given(
    st.integers(1, 20),
    st.integers(1, 60),
    st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 10, allow_nan=False)), max_size=200),
)
def test_a_swept_bucket_allows_its_next_event_as_the_kept_one_does(
    capacity: int, window_s: int, steps: list[tuple[str, float]]
) -> None:
    """Sweeping forgets only buckets that would be full again.

    It is not decision-neutral over time (found by hypothesis): Jitsu's bucket refills
    only when empty, from its last refill, so a bucket used a little long ago can give
    `tokens + capacity` at once where a fresh one gives `capacity`. What holds: the first
    event after a sweep is allowed either way.
    """
    plain, swept = RateLimiters(capacity, window_s), RateLimiters(capacity, window_s)
    now = 0.0
    for key, gap in steps:
        now += gap
        swept.sweep(now)
        was_swept = key not in swept._buckets
        kept, fresh = plain.allow(key, now), swept.allow(key, now)
        if was_swept:
            assert kept and fresh
    assert len(swept) <= len(plain)


@SETTINGS
@given(st.integers(1, 30), st.floats(0.01, 100, allow_nan=False), st.floats(0, 1000))
def test_bucket_is_full_after_a_whole_window(capacity: int, window_s: float, later: float) -> None:
    bucket = Bucket(capacity, 0.0)
    interval = window_s / capacity
    for _ in range(capacity):
        assert bucket.allow(capacity, interval, 0.0)
    assert bucket.is_full(capacity, interval, window_s + interval + later)


@SETTINGS
@given(
    st.dictionaries(st.integers(0, 500), st.integers(0, 1000), max_size=100), st.integers(0, 500)
)
def test_last_minute_total_counts_exactly_the_last_sixty_seconds(
    slots: dict[int, int], now_s: int
) -> None:
    expected = sum(n for s, n in slots.items() if now_s - LIMITED_WINDOW_S < s <= now_s)
    assert last_minute_total(slots, now_s) == expected


# -- query parameters ------------------------------------------------------------------------

param_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "token", "destination", "error", "0", "-1", "100", "1e3", " 5", "٣"]),
    st.integers(-(10**20), 10**20).map(str),
)


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["namespace", "status", "limit", "ids", "other", "token"]),
        param_values,
        max_size=6,
    ),
    st.integers(1, 1000),
)
def test_query_parser_accepts_or_explains(params: dict[str, str], size: int) -> None:
    try:
        q = parse_query(params, size)
    except QueryError as e:
        assert str(e)
        assert len(str(e)) < 300  # the echoed value is cut
        return
    assert 0 <= q.limit <= size
    assert q.namespace in (Namespace.TOKEN, Namespace.DESTINATION)
    if q.ids is not None:
        assert all(i and i == i.strip() for i in q.ids)
        assert len(set(q.ids)) == len(q.ids)
    else:
        assert "ids" not in params


@SETTINGS
@given(st.integers(-(10**17), 10**17), st.integers(1, 1000))
def test_query_limit_integer_semantics(limit: int, size: int) -> None:
    params = {"limit": str(limit)}
    if limit < 0:
        try:
            parse_query(params, size)
        except QueryError:
            return
        raise AssertionError("negative limit accepted")
    assert parse_query(params, size).limit == min(limit, size)
