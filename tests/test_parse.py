"""Parsing of ingest bodies and the stored entry format."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from daemon.core.entry import ParsedEvent, decode, encode
from daemon.core.jsontext import is_json
from daemon.core.model import Namespace
from daemon.core.ndjson import iter_ndjson
from daemon.core.parse import LineReport, parse_token_body
from daemon.core.stamp import new_uid, rfc3339
from daemon.core.wire import MAX_REPORTED_ERRORS


def test_object_body_keeps_the_ingests_text() -> None:
    body = b'  {"b": 1,  "a": [1, 2]}\n'
    [event] = parse_token_body(body, "key", 100)
    assert event.original == '{"b": 1,  "a": [1, 2]}'
    assert event.token_id == "key" and event.namespace == Namespace.TOKEN
    assert not event.is_error


def test_array_body_is_one_event_per_element() -> None:
    events = parse_token_body(b'[{"a": 1}, {"b": 2}, 7, null]', "key", 100)
    assert [e.original for e in events[:2]] == ['{"a":1}', '{"b":2}']
    assert [e.malformed for e in events[2:]] == ["7", "null"]
    assert events[2].error == "array element 2 is a number, not an object"
    assert parse_token_body(b"[]", "key", 100) == []


def test_malformed_body_is_cut_and_says_why() -> None:
    [event] = parse_token_body(b"x" * 50, "key", 10)
    assert event.malformed == "x" * 10
    assert event.error is not None and event.error.startswith("invalid JSON")
    assert event.is_error


def test_a_body_that_is_not_utf8_says_which_byte() -> None:
    latin1 = '{"name": "café"}'.encode("latin-1")
    [event] = parse_token_body(latin1, "key", 100)
    assert event.error == (
        "invalid JSON: not UTF-8 text (byte 0xe9 at offset 13); JSON must be sent as "
        "UTF-8, not Latin-1 or another encoding"
    )
    report = LineReport()
    line = b'{"namespace": "token", "id": "k", "original": {"n": "\xe9"}}'
    assert list(iter_ndjson(b'{"a": 1}\n' + line, 100, report)) == []
    assert [(e.line, e.message) for e in report.errors][1] == (
        2,
        "invalid JSON: not UTF-8 text (byte 0xe9 at offset 53); JSON must be sent as "
        "UTF-8, not Latin-1 or another encoding",
    )


def test_invalid_utf8_is_replaced() -> None:
    [event] = parse_token_body(b'{"a": "\xff\xfe"}', "key", 100)
    assert event.malformed == '{"a": "\ufffd\ufffd"}'


def test_empty_scalar_and_ingest_error_bodies() -> None:
    [empty] = parse_token_body(b"  ", "key", 100)
    assert empty.error == "empty body"
    [scalar] = parse_token_body(b'"text"', "key", 100)
    assert scalar.error == "body is a string, not an object or an array of objects"
    [rejected] = parse_token_body(b'{"a": 1}', "key", 100, ingest_error="quota exceeded")
    assert (rejected.malformed, rejected.error) == ('{"a": 1}', "quota exceeded")


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    [event] = parse_token_body(b"[" * 100_000, "key", 20)
    assert event.malformed == "[" * 20
    assert event.is_error


def test_skip_header_marks_every_event() -> None:
    events = parse_token_body(b'[{"a":1},{"a":2}]', "key", 100, skip="bot")
    assert [e.skip for e in events] == ["bot", "bot"]


def test_ndjson_mixed_lines() -> None:
    lines = [
        {"namespace": "token", "id": "k", "original": {"a": 1}, "skip": "filtered"},
        {"namespace": "token", "id": "k", "malformed": "{oops", "error": "bad json"},
        {
            "namespace": "destination",
            "id": "d",
            "original": {"a": 1},
            "success": {"table": "t"},
            "timestamp": "2024-05-01T12:00:00Z",
            "token_id": "k",
        },
        {"namespace": "destination", "id": "d", "original": "raw text", "error": "boom"},
        {"namespace": "destination", "id": "d", "original": {"a": 1}, "skip": "rule"},
    ]
    body = "\n".join(json.dumps(x) for x in lines).encode() + b"\n\n"
    batch = LineReport()
    events = list(iter_ndjson(body, 100, batch))
    assert batch.invalid == 0
    token, malformed, success, error, skip = events
    assert token.skip == "filtered" and token.original == '{"a":1}'
    assert malformed.malformed == "{oops" and malformed.error == "bad json"
    assert success.success == '{"table":"t"}'
    assert success.timestamp == "2024-05-01T12:00:00.000000Z"  # Jitsu's layout
    assert (success.destination_id, success.token_id) == ("d", "k")
    assert error.original == '"raw text"' and error.is_error  # a JSON string, as stored
    assert skip.skip == "rule" and not skip.is_error


def test_text_original_of_a_destination_is_stored_as_json_text() -> None:
    """Jitsu answers a stored `original` as JSON text (json.RawMessage): a text original
    is stored as its JSON string encoding, whatever it says, and answered as that string."""
    texts = ["GET /collect?broken (not JSON)", '{"looks": "like JSON"}', "42", 'quote " \\ é\n']
    lines = [{"namespace": "destination", "id": "d", "original": t, "error": "e"} for t in texts]
    body = b"\n".join(orjson.dumps(x) for x in lines)
    events = list(iter_ndjson(body, 100, LineReport()))
    stored = [orjson.loads(encode(e, 0.0))["original"] for e in events]
    assert [json.loads(text) for text in stored] == texts
    assert [answered(encode(e, 0.0))["original"] for e in events] == texts


def test_ndjson_invalid_lines_are_numbered_and_do_not_stop_the_rest() -> None:
    body = b"\n".join(
        [
            b'{"namespace": "token", "id": "k", "original": {"a": 1}}',
            b"not json",
            b"[1]",
            b'{"namespace": "user", "id": "k", "original": {}}',
            b'{"namespace": "token", "id": "", "original": {}}',
            b'{"namespace": "token", "id": "k"}',
            b'{"namespace": "destination", "id": "d", "original": {}, "error": "e", "skip": "s"}',
            b'{"namespace": "destination", "id": "d", "original": {}, "success": []}',
            b'{"namespace": "token", "id": "k", "original": {}, "timestamp": "yesterday"}',
            b'{"namespace": "token", "id": "k", "original": {}, "skip": 5}',
            b'{"namespace": "token", "id": "k", "original": {"b": 2}}',
        ]
    )
    batch = LineReport()
    events = list(iter_ndjson(body, 100, batch))
    assert [e.original for e in events] == ['{"a":1}', '{"b":2}']
    assert batch.invalid == 9
    messages = {e.line: e.message for e in batch.errors}
    assert messages[2].startswith("invalid JSON")
    assert messages[3] == "must be a JSON object, got an array"
    assert messages[4] == '"namespace" must be "token" or "destination"'
    assert messages[5] == '"id" must be a non-empty string'
    assert messages[6] == 'a token entry needs exactly one of "original" or "malformed"'
    assert "exactly one of" in messages[7]
    assert messages[8] == '"success" must be a JSON object'
    assert messages[9].startswith('"timestamp" must be RFC 3339')
    assert messages[10] == '"skip" must be a string'


# Jitsu writes every timestamp in Go's layout 2006-01-02T15:04:05.000000Z, in UTC, and its
# timestamp.ParseISOFormat reads that layout only.
JITSU_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def jitsu_time(text: str) -> datetime:
    """The instant Jitsu reads from a stored timestamp (it reads no other layout)."""
    assert JITSU_TIME.fullmatch(text), f"not Jitsu's layout: {text!r}"
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def utc(*fields: int) -> datetime:
    """A UTC time from year, month, day[, hour, minute, second, microsecond]."""
    return datetime(*fields).replace(tzinfo=UTC)  # type: ignore[arg-type]


INGEST_TIMES = [  # RFC 3339 as an ingest may send it -> the instant, to the microsecond
    ("2024-05-01T14:00:00.5+02:00", utc(2024, 5, 1, 12, 0, 0, 500_000)),
    ("2024-05-01T12:00:00Z", utc(2024, 5, 1, 12)),
    ("2024-05-01T12:00:00.123456Z", utc(2024, 5, 1, 12, 0, 0, 123_456)),
    ("2024-05-01t23:30:00.123456789-01:30", utc(2024, 5, 2, 1, 0, 0, 123_456)),  # truncated
    ("2024-12-31T23:59:59.9999999-00:00", utc(2024, 12, 31, 23, 59, 59, 999_999)),
    ("2024-03-01T00:30:00+23:59", utc(2024, 2, 29, 0, 31)),
    ("0001-01-01T00:00:00.000001z", utc(1, 1, 1, 0, 0, 0, 1)),
]
NOT_RFC3339 = [
    "yesterday",
    "2024-05-01",
    "2024-05-01T12:00:00",  # no zone
    "2024-05-01 12:00:00Z",  # no T
    "2024-05-01T12:00Z",  # no seconds
    "2024-05-01T12:00:00+0200",
    "2024-05-01T12:00:00+02",
    "2024-05-01T12:00:00+24:00",
    "20240501T120000Z",
    "2024-W18-3T12:00:00Z",
    "2024-05-01T12:00:00.Z",
    "2024-05-01T24:00:00Z",
    "2024-02-30T12:00:00Z",
    "2024-05-01T12:00:60Z",  # a leap second: Go's time.Parse refuses it too
    "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
    "\uff12024-05-01T12:00:00Z",
    " 2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00Z\n",
]


def test_ndjson_timestamps_are_stored_in_jitsus_layout_in_utc() -> None:
    """The instant the ingest gave, written as Jitsu writes (and only reads) times."""
    lines: list[dict[str, Any]] = [
        {"namespace": ns, "id": "i", "original": {}, "skip": "s", "timestamp": text}
        for text, _ in INGEST_TIMES
        for ns in ("token", "destination")
    ]
    report = LineReport()
    events = list(iter_ndjson(b"\n".join(orjson.dumps(x) for x in lines), 100, report))
    assert report.invalid == 0
    expected = [instant for _, instant in INGEST_TIMES for _ in range(2)]
    assert [jitsu_time(e.timestamp or "") for e in events] == expected
    for event in events:
        assert orjson.loads(encode(event, 0.0))["timestamp"] == event.timestamp


def test_ndjson_timestamp_that_is_not_rfc3339_makes_the_line_invalid() -> None:
    lines = [{"namespace": "token", "id": "i", "original": {}, "timestamp": t} for t in NOT_RFC3339]
    report = LineReport()
    assert list(iter_ndjson(b"\n".join(orjson.dumps(x) for x in lines), 100, report)) == []
    assert report.invalid == len(NOT_RFC3339)
    assert all(e.message.startswith('"timestamp" must be RFC 3339') for e in report.errors)


def test_time_of_caching_is_in_jitsus_layout() -> None:
    for now in (0.0, 0.5, 1_700_000_000.25, 1_714_564_800.999999, 253_402_300_799.0):
        stamp = rfc3339(now)
        assert abs(jitsu_time(stamp) - datetime.fromtimestamp(now, UTC)) < timedelta(
            microseconds=1
        ), stamp


def test_ndjson_reports_at_most_ten_errors_but_counts_all() -> None:
    batch = LineReport()
    assert list(iter_ndjson(b"x\n" * 25, 100, batch)) == []
    assert batch.invalid == 25
    assert len(batch.errors) == MAX_REPORTED_ERRORS


def test_entry_round_trip_in_jitsus_format() -> None:
    event = ParsedEvent(
        Namespace.DESTINATION,
        "d",
        original='{"a":1}',
        success='{"t":"x"}',
        destination_id="d",
        token_id="k",
    )
    raw = encode(event, 1_700_000_000.25)
    stored = orjson.loads(raw)
    assert list(stored) == ["original", "success", "timestamp", "uid", "destination_id", "token_id"]
    assert stored["original"] == '{"a":1}'  # double-encoded, as Jitsu stores it
    assert stored["timestamp"] == "2023-11-14T22:13:20.250000Z"
    out = answered(raw)
    assert out["original"] == {"a": 1} and out["success"] == {"t": "x"}
    assert list(out) == ["original", "success", "timestamp", "uid", "destination_id", "token_id"]


def answered(raw: bytes) -> dict[str, Any]:
    """One entry as the query's JSON answer says it."""
    result: dict[str, Any] = json.loads(orjson.dumps(decode(raw)))
    return result


def test_decode_fills_ids_and_survives_garbage() -> None:
    out = answered(b'{"original": "{\\"a\\": 1}", "timestamp": "t", "uid": "u"}')
    assert out == {
        "original": {"a": 1},
        "timestamp": "t",
        "uid": "u",
        "destination_id": "",
        "token_id": "",
    }
    broken = answered(b"\x00not json")
    assert broken["error"].startswith("cached entry is not JSON")
    assert answered(b"[1]")["error"] == "cached entry is not a JSON object"
    assert answered(b'{"original": "not json text"}')["original"] == "not json text"


def test_uid_is_a_version_7_uuid_and_timestamps_are_utc() -> None:
    import uuid

    uid = new_uid()
    assert uuid.UUID(uid).version == 7 and str(uuid.UUID(uid)) == uid
    assert rfc3339(0.5) == "1970-01-01T00:00:00.500000Z"


def nested(depth: int) -> str:
    """Compact JSON text nested `depth` levels deep, as Go's json.Marshal writes it."""
    return '{"a":[' * (depth // 2) + "1" + "]}" * (depth // 2)


@pytest.mark.parametrize("depth", [254, 256, 1024, 1026, 10_000])
def test_stored_json_is_answered_as_stored_at_any_depth(depth: int) -> None:
    """Jitsu embeds a stored `original`/`success` as json.RawMessage: valid JSON text is
    answered as it is stored, however deep (beyond what orjson reads or writes)."""
    text = nested(depth)
    raw = orjson.dumps({"original": text, "success": text, "timestamp": "t", "uid": "u"})
    stored = text.encode()
    expected = b'{"original":%s,"success":%s,"timestamp":"t","uid":"u",' % (stored, stored)
    assert orjson.dumps(decode(raw)) == expected + b'"destination_id":"","token_id":""}'


def test_stored_json_that_orjson_cannot_read_is_still_answered_as_stored() -> None:
    """Go's RawMessage checks the grammar only: a number beyond double range, a lone
    surrogate escape are valid JSON text, answered verbatim."""
    for text in ('{"n":1e400}', '{"s":"\\ud800"}', ' {"spaced": [1, 2]} '):
        raw = orjson.dumps({"original": text})
        assert orjson.dumps(decode(raw)).startswith(b'{"original":%s,' % text.encode())


def test_stored_text_that_is_not_json_is_answered_as_a_string() -> None:
    """Another writer's corruption never breaks the answer: it comes back as text."""
    for text in (
        "GET /collect?broken (not JSON)",
        '{"a": 1',
        '{"a":1}{"b":2}',
        "[1,]",
        "NaN",
        "[" * 2000,
        nested(2000)[:-1],
    ):
        out = answered(orjson.dumps({"original": text, "success": text}))
        assert (out["original"], out["success"]) == (text, text)


VALID_JSON = [
    "{}",
    "[]",
    "0",
    "-0.5e+3",
    "1E400",
    "true",
    "null",
    ' "a\\u00e9\\n\\/" ',
    '{"a":[1,{"b":null}],"c":true,"a":false}',
    "\t[ 1 ,\n2 ]\r\n",
    '"\x7f é \u2028"',
]
INVALID_JSON = [
    "",
    " ",
    "[1,]",
    '{"a":1,}',
    "01",
    "1.",
    ".5",
    "+1",
    "-",
    "[1 2]",
    '{"a" 1}',
    "{1:2}",
    '["a":1]',
    "{,}",
    "tru",
    "True",
    "[",
    "]",
    "{}}",
    '""""',
    '"\\a"',
    '"\\u12"',
    '"\x01"',
    "NaN",
    "Infinity",
    "[1]x",
    '{"a":1}{}',
    '"abc',
    "\ufeff{}",
    "\x0c[]",
    "'a'",
]


def test_is_json_follows_the_grammar() -> None:
    assert [t for t in VALID_JSON if not is_json(t)] == []
    assert [t for t in INVALID_JSON if is_json(t)] == []
    deep = nested(100_000)
    assert is_json(deep) and not is_json(deep[:-1]) and not is_json(deep + "]")
