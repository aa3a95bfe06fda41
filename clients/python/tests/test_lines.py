"""The NDJSON lines: raw bodies split as the sidecar's raw endpoint would split them."""

from __future__ import annotations

import json
import re
from typing import Any

from events_cache_client._core import destination_item, token_item
from events_cache_client._lines import LineBuilder

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NOW = 1714564800.25  # 2024-05-01T12:00:00.25Z


def token_lines(body: Any, skip: str | None = None, error: str | None = None) -> list[Any]:
    item = token_item("js.key", body, skip, error, NOW)
    return [json.loads(line) for line in LineBuilder(10_000).lines(item)]


def test_an_object_body_is_one_entry_with_its_own_text() -> None:
    body = b'{"event_type": "pageview",\n  "n": 1}\n'
    [line] = token_lines(body)
    assert line == {
        "namespace": "token",
        "id": "js.key",
        "original": {"event_type": "pageview", "n": 1},
        "timestamp": "2024-05-01T12:00:00.250000Z",
    }
    raw = LineBuilder(100).lines(token_item("k", body, None, None, NOW))[0]
    assert b'"original":{"event_type": "pageview",   "n": 1}' in raw  # not re-encoded


def test_an_array_body_is_one_entry_per_element() -> None:
    lines = token_lines(b'[{"a": 1}, 2, "x", {"b": [1, 2]}]')
    assert [line.get("original") for line in lines] == [{"a": 1}, None, None, {"b": [1, 2]}]
    assert lines[1]["malformed"] == "2"
    assert lines[1]["error"] == "array element 1 is a number, not an object"
    assert lines[2]["error"] == "array element 2 is a string, not an object"


def test_what_is_not_an_object_or_array_is_malformed() -> None:
    cases = {
        b"": "empty body",
        b"  \n": "empty body",
        b'"text"': "body is a string, not an object or an array of objects",
        b"null": "body is null, not an object or an array of objects",
        b"\xff{}": "invalid JSON: not valid UTF-8",
    }
    for body, error in cases.items():
        [line] = token_lines(body)
        assert line["error"] == error, body
        assert "original" not in line
    for body in (b"{broken", b'{"a": NaN}', b'{"a": 1e400}', b'{"a":1} {"b":2}'):
        [line] = token_lines(body)
        assert line["error"].startswith("invalid JSON: "), body
        assert line["malformed"] == body.decode()


def test_invalid_utf8_is_replaced_and_malformed_bodies_are_cut() -> None:
    [line] = token_lines(b"ab\xffcd")
    assert line["malformed"] == "ab\ufffdcd"
    item = token_item("k", b"x" * 20_000, None, None, NOW)
    [raw] = LineBuilder(100).lines(item)
    assert json.loads(raw)["malformed"] == "x" * 100


def test_skip_and_ingest_error() -> None:
    [line] = token_lines(b'{"a": 1}', skip="bot")
    assert line["skip"] == "bot" and line["original"] == {"a": 1}
    [line] = token_lines(b'{"a": 1}', error="bad api key")
    assert line == {
        "namespace": "token",
        "id": "js.key",
        "malformed": '{"a": 1}',
        "error": "bad api key",
        "timestamp": "2024-05-01T12:00:00.250000Z",
    }


def test_a_parsed_value_is_encoded_in_the_call() -> None:
    event = {"a": "é", "n": [1, 2]}
    item = token_item("k", event, None, None, NOW)
    event["a"] = "changed after the call"
    [line] = [json.loads(x) for x in LineBuilder(100).lines(item)]
    assert line["original"] == {"a": "é", "n": [1, 2]}
    # a parsed list is split like a raw array
    lines = [
        json.loads(x) for x in LineBuilder(100).lines(token_item("k", [{}, 1], None, None, NOW))
    ]
    assert lines[0]["original"] == {} and lines[1]["error"].startswith("array element 1")


def dest_line(original: Any, **outcome: Any) -> Any:
    item = destination_item(
        "pg",
        original,
        outcome.get("success"),
        outcome.get("error"),
        outcome.get("skip"),
        outcome.get("token_id"),
        NOW,
    )
    [raw] = LineBuilder(100).lines(item)
    return json.loads(raw)


def test_destination_entries() -> None:
    assert dest_line({"a": 1}, success={"table": "t"}) == {
        "namespace": "destination",
        "id": "pg",
        "original": {"a": 1},
        "success": {"table": "t"},
        "timestamp": "2024-05-01T12:00:00.250000Z",
    }
    line = dest_line(b'{"a":\n 2}', error="refused", token_id="js.key")
    assert line["original"] == {"a": 2} and line["error"] == "refused"
    assert line["token_id"] == "js.key"
    assert dest_line("not json", skip="filtered")["original"] == "not json"
    assert dest_line(b"[1]", skip="x")["original"] == "[1]"
    assert dest_line({}, success=b'{"raw": true}')["success"] == {"raw": True}
    # several outcomes are sent as given: the sidecar reports the line as invalid
    line = dest_line({}, success={}, error="both")
    assert "success" in line and "error" in line


def test_timestamps_are_rfc3339_utc() -> None:
    builder = LineBuilder(100)
    for now in (0.0, NOW, 1999999999.999999):
        [raw] = builder.lines(token_item("k", {}, None, None, now))
        assert RFC3339.match(json.loads(raw)["timestamp"])
    [raw] = LineBuilder(100, timestamps=False).lines(token_item("k", {}, None, None, NOW))
    assert "timestamp" not in json.loads(raw)


def test_a_capture_tag_is_on_every_line_of_its_call_only() -> None:
    builder = LineBuilder(10_000)
    tagged = token_item("k", b'[{"a": 1}, 2]', None, None, NOW, capture='run "42"')
    lines = [json.loads(line) for line in builder.lines(tagged)]
    assert [line["capture"] for line in lines] == ['run "42"', 'run "42"']
    assert json.loads(builder.lines(token_item("k", {"v": 1}, None, None, NOW, "t"))[0]) == {
        "namespace": "token",
        "id": "k",
        "original": {"v": 1},
        "capture": "t",
        "timestamp": "2024-05-01T12:00:00.250000Z",
    }
    dest = destination_item("pg", {"n": 1}, None, "down", None, None, NOW, "run-1")
    assert json.loads(builder.lines(dest)[0])["capture"] == "run-1"
    assert "capture" not in json.loads(builder.lines(token_item("k", {}, None, None, NOW))[0])


def test_a_vouched_object_is_sent_as_it_came_without_parsing() -> None:
    """`parsed=True`: an object body's bytes go out as they are (one line); arrays are
    still split, and an error keeps the malformed path."""
    body = b'  {"event_type": "pageview",\r\n  "\xc3\xa9": [1, 2.50]}\n'
    for given in (body, bytearray(body), memoryview(body), body.decode()):
        item = token_item("js.key", given, "bot", None, NOW, "run-1", parsed=True)
        [raw] = LineBuilder(100).lines(item)
        assert b"\n" not in raw and b"\r" not in raw
        assert b'"original":  {"event_type": "pageview",    "\xc3\xa9": [1, 2.50]} ' in raw
        assert json.loads(raw) == {
            "namespace": "token",
            "id": "js.key",
            "original": {"event_type": "pageview", "é": [1, 2.5]},
            "skip": "bot",
            "capture": "run-1",
            "timestamp": "2024-05-01T12:00:00.250000Z",
        }
    split = LineBuilder(100).lines(
        token_item("k", b'[{"a":1},{"b":2}]', None, None, NOW, parsed=True)
    )
    assert [json.loads(line)["original"] for line in split] == [{"a": 1}, {"b": 2}]
    [bad] = LineBuilder(100).lines(token_item("k", b'{"a":1}', None, "refused", NOW, parsed=True))
    assert json.loads(bad)["error"] == "refused" and "malformed" in json.loads(bad)
    # a promise broken: sent unchecked (the sidecar counts the line invalid)
    [broken] = LineBuilder(100).lines(token_item("k", b"{not json", None, None, NOW, parsed=True))
    assert broken.startswith(b'{"namespace":"token","id":"k","original":{not json,')
