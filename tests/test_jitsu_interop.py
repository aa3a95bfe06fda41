"""Sharing one Redis with Jitsu Classic: its rules, checked in both directions.

Jitsu's side is modelled on its Go code (the events cache and handler of the last
Classic release), not on ours:
- an entry is a JSON object of string fields (Go's meta.Event); `original` and
  `success` hold JSON text, which the handler embeds in its answer as json.RawMessage:
  valid JSON text is answered as it is stored, at any depth, and text that is not valid
  JSON fails the whole answer (`json: error calling MarshalJSON for type
  json.RawMessage`: a 500 for every query naming that id);
- every `timestamp` is written in UTC as Go's layout `2006-01-02T15:04:05.000000Z`,
  and read back with that layout only (`timestamp.ParseISOFormat`).
The daemon runs as a subprocess on real Redis; Jitsu's reads and writes are done here
with a plain client, as its code does them.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from tests.support.scrape import list_key, settle

pytestmark = pytest.mark.e2e

# Go's layout "2006-01-02T15:04:05.000000Z": six fractional digits, a literal Z.
JITSU_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


class GoMarshalError(Exception):
    """Go's encoder refused a json.RawMessage: Jitsu answers 500."""


def jitsu_time(text: str) -> datetime:
    """Jitsu's timestamp.ParseISOFormat: time.Parse with its layout, nothing else."""
    assert JITSU_TIME.fullmatch(text), f"not Jitsu's layout: {text!r}"
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def raw_message(text: str) -> Any:
    """A stored `original`/`success` as Go's encoder embeds a json.RawMessage: valid
    JSON text goes into the answer as it is (returned here parsed, to compare); any
    other text fails the whole answer."""

    def constant(name: str) -> None:
        raise GoMarshalError(f"invalid character in {name}")

    try:
        return json.loads(text, parse_constant=constant)
    except ValueError as e:
        raise GoMarshalError(f"error calling MarshalJSON for type json.RawMessage: {e}") from e


def jitsu_read(entry: bytes) -> dict[str, Any]:
    """One stored entry as Jitsu's handler answers it (meta.Event -> CachedEvent)."""
    doc = json.loads(entry)
    assert isinstance(doc, dict) and all(isinstance(v, str) for v in doc.values()), doc
    event: dict[str, Any] = {}
    for name in ("malformed", "original", "success", "error", "skip", "timestamp", "uid"):
        if doc.get(name):
            event[name] = raw_message(doc[name]) if name in ("original", "success") else doc[name]
    event["destination_id"] = doc.get("destination_id", "")
    event["token_id"] = doc.get("token_id", "")
    return event


def jitsu_answer(
    client: redis.Redis, namespace: str, ids: str, status: str = "", limit: int = 100
) -> dict[str, Any]:
    """Jitsu Classic's GET /api/v1/events/cache, read from the shared Redis."""
    events: list[dict[str, Any]] = []
    total = 0
    for id_ in ids.split(","):
        key = list_key(namespace, id_, error=status == "error")
        events += [jitsu_read(_raw(raw)) for raw in client.lrange(key, 0, limit - 1)]
        total += int(client.llen(key))
    return {"total_events": total, "response_events": len(events), "events": events}


def jitsu_write(client: redis.Redis, key: str, original: str, **fields: str) -> dict[str, str]:
    """LPUSH an entry as Jitsu writes one: Go's json.Marshal of meta.Event, compact."""
    doc = {"original": original, **fields}
    doc.setdefault("timestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    doc.setdefault("uid", str(uuid.uuid4()))
    client.lpush(key, json.dumps(doc, separators=(",", ":")))
    return doc


def nested(depth: int) -> str:
    """Compact JSON text nested `depth` levels deep (Go's encoding/json takes 10,000)."""
    return '{"a":[' * (depth // 2) + "1" + "]}" * (depth // 2)


# -- entries Jitsu wrote, answered by us ------------------------------------------------------


def test_deep_originals_written_by_jitsu_are_answered_as_jitsu_answers(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """Beyond what orjson writes (254 levels) and reads (1024), the stored JSON text
    is answered as stored, an object, as Jitsu's RawMessage answers it."""
    daemon = start_daemon()
    for depth in (300, 1500):
        text = nested(depth)
        jitsu_write(redis_client, list_key("destination", f"deep{depth}"), text, success=text)

    reply = daemon.api("/api/v1/events/cache", {"ids": "deep300"})
    assert reply.status == 200
    [ours] = reply.json["events"]
    [theirs] = jitsu_answer(redis_client, "destination", "deep300")["events"]
    assert ours == theirs and ours["original"] == json.loads(nested(300))

    # 1500 levels: more than Python's json parses; the bytes say it.
    reply = daemon.api("/api/v1/events/cache", {"ids": "deep1500"})
    assert reply.status == 200
    deep = nested(1500).encode()
    assert b'"events":[{"original":%s,"success":%s,"timestamp":' % (deep, deep) in reply.raw


def test_text_that_is_not_json_does_not_break_our_answer(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """Another writer's text `original` (as this sidecar stored it before issue 13):
    Jitsu's answer fails on it; ours answers it as a string and every other event."""
    daemon = start_daemon()
    key = list_key("destination", "mixed")
    jitsu_write(redis_client, key, json.dumps({"seq": 1}))
    jitsu_write(redis_client, key, "GET /collect?broken (not JSON)", error="boom")
    with pytest.raises(GoMarshalError):
        jitsu_answer(redis_client, "destination", "mixed")
    answer = daemon.query(ids="mixed")
    assert [e["original"] for e in answer["events"]] == [
        "GET /collect?broken (not JSON)",
        {"seq": 1},
    ]


# -- entries we wrote, read by Jitsu ----------------------------------------------------------


def test_every_timestamp_we_store_is_jitsus_layout_in_utc(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """The ingest's time (any RFC 3339 zone and precision) is stored at the same instant
    in Jitsu's layout; our own time of caching too. A time that is not RFC 3339 makes
    its line invalid, as before."""
    daemon = start_daemon()
    given = {
        "2024-05-01T14:00:00.5+02:00": datetime(2024, 5, 1, 12, 0, 0, 500_000, UTC),
        "2024-05-01T12:00:00Z": datetime(2024, 5, 1, 12, tzinfo=UTC),
        "2024-05-01t20:15:30.123456789-03:30": datetime(2024, 5, 1, 23, 45, 30, 123_456, UTC),
    }
    lines: list[Any] = [
        {
            "namespace": "destination",
            "id": "times",
            "original": {"n": n},
            "skip": "s",
            "timestamp": t,
        }
        for n, t in enumerate(given)
    ]
    lines += [
        {"namespace": "token", "id": "times", "original": {}, "timestamp": "2024-05-01T12:00:00"},
        {"namespace": "token", "id": "times", "original": {}, "timestamp": "2024-05-01 12:00Z"},
    ]
    reply = daemon.post_ndjson(lines)
    assert (reply.json["accepted"], reply.json["invalid"]) == (3, 2)
    assert [e["line"] for e in reply.json["errors"]] == [4, 5]
    daemon.post_token("times", b'{"n": 9}')
    settle(daemon)

    jitsu = jitsu_answer(redis_client, "destination", "times")
    assert [jitsu_time(e["timestamp"]) for e in jitsu["events"]] == list(given.values())[::-1]
    [token_event] = jitsu_answer(redis_client, "token", "times")["events"]
    caching = jitsu_time(token_event["timestamp"])
    assert abs(caching - datetime.now(UTC)).total_seconds() < 60
    # Our answer carries the stored text, which Jitsu parses.
    ours = daemon.query(ids="times")["events"]
    assert [e["timestamp"] for e in ours] == [e["timestamp"] for e in jitsu["events"]]


def _raw(value: bytes | str) -> bytes:
    """redis-py types LRANGE items as bytes or text; without decode_responses, bytes."""
    assert isinstance(value, bytes)
    return value


def every_stored_entry(client: redis.Redis) -> list[bytes]:
    """Every entry of every events list in the Redis (not the sidecar's own keys)."""
    lists = [k for k in client.scan_iter("events_cache:*#*") if client.type(k) == b"list"]
    return [_raw(raw) for k in sorted(lists) for raw in client.lrange(k, 0, -1)]


def test_text_original_is_stored_as_json_text_jitsu_answers(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """A destination's text `original` (a request Jitsu could not parse) is stored as
    its JSON string encoding: Jitsu's answer for the destination works, and both answer
    the text as a string."""
    daemon = start_daemon()
    texts = ["GET /collect?broken (not JSON)", '{"a": 1}', "<script>&"]
    lines = [
        {"namespace": "destination", "id": "text", "original": texts[0], "error": "bad request"},
        {"namespace": "destination", "id": "text", "original": texts[1], "skip": "filtered"},
        {"namespace": "destination", "id": "text", "original": texts[2], "success": {"ok": 1}},
    ]
    assert daemon.post_ndjson(lines).json["accepted"] == 3
    settle(daemon)

    jitsu = jitsu_answer(redis_client, "destination", "text")
    assert [e["original"] for e in jitsu["events"]] == texts[::-1]
    ours = daemon.query(ids="text")
    assert [e["original"] for e in ours["events"]] == texts[::-1]
    assert ours["events"] == jitsu["events"]
    errors = jitsu_answer(redis_client, "destination", "text", status="error")
    assert [e["original"] for e in errors["events"]] == [texts[0]]


def test_jitsu_answers_every_entry_we_store(start_daemon: Any, redis_client: redis.Redis) -> None:
    """Whatever comes in, on any endpoint: every `original`/`success` we store is valid
    JSON text and every `timestamp` Jitsu's layout, so no Jitsu answer fails."""
    daemon = start_daemon()
    daemon.post_token("k", b'  {"event_type": "pageview", "u": "\\u00e9\xc3\xa9"}\n')
    daemon.post_token("k", b'[{"n": 1}, 2, "three", null]')
    daemon.post_token("k", b'{"a": 1} {"b": 2}')  # a trailing value: malformed here
    daemon.post_token("k", b"\xff\xfe not utf-8")
    daemon.post_token("k", b'{"a": 1}', headers={"X-Events-Cache-Skip": "bot"})
    daemon.post_token("k", b'{"a": 2}', headers={"X-Events-Cache-Error": "quota"})
    daemon.post_token("k", ('{"deep": ' + nested(600) + "}").encode())
    lines: list[Any] = [
        {"namespace": "token", "id": "k", "original": {"big": 2**63 - 1, "f": 1.5e300}},
        {"namespace": "token", "id": "k", "malformed": "{oops", "error": "bad json"},
        {"namespace": "destination", "id": "d", "original": {"x": [1]}, "success": {"r": []}},
        {"namespace": "destination", "id": "d", "original": "plain text", "error": "e"},
        {"namespace": "destination", "id": "d", "original": "", "skip": "s"},  # invalid
        {
            "namespace": "destination",
            "id": "d",
            "original": "null",
            "skip": "s",
            "timestamp": "2024-05-01T14:00:00+02:00",
        },
    ]
    reply = daemon.post_ndjson(lines)
    assert (reply.json["accepted"], reply.json["invalid"]) == (5, 1)
    settle(daemon)

    entries = every_stored_entry(redis_client)
    assert len(entries) == 23  # k: 12 events + 7 errors; d: 3 events + 1 error
    for raw in entries:
        event = jitsu_read(raw)  # raises as Go's encoder would
        jitsu_time(event["timestamp"])
    d = jitsu_answer(redis_client, "destination", "d")["events"]
    assert [e["original"] for e in d] == ["null", "plain text", {"x": [1]}]


def test_where_we_answer_differently_from_jitsu(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """The differences docs/redis.md lists for the query and the raw token body."""
    daemon = start_daemon({"server": {"cache": {"events": {"size": 3}}}})
    for n in range(5):  # a list only Jitsu writes, longer than our size
        jitsu_write(redis_client, list_key("destination", "j"), json.dumps({"n": n}))
    daemon.post_token("k", b'{"a": 1} {"b": 2}')
    settle(daemon)

    # ids: stripped, empty pieces dropped, each answered once (Jitsu: twice, and "").
    answer = daemon.query(ids=" j,,j ")
    assert (answer["total_events"], answer["response_events"]) == (5, 3)
    assert jitsu_answer(redis_client, "destination", "j,j")["total_events"] == 10
    # limit: capped at size; 0 is counts only (Jitsu: LRANGE 0 -1, every entry).
    assert daemon.query(ids="j", limit=100)["response_events"] == 3
    assert daemon.query(ids="j", limit=0)["events"] == []
    # ids absent: the sidecars' id index, which has no Jitsu-only id.
    assert [e["token_id"] for e in daemon.query(namespace="token")["events"]] == ["k"]
    assert daemon.query()["events"] == []
    # A trailing value after the object: malformed here (Jitsu's decoder keeps {"a": 1}).
    [event] = daemon.query(namespace="token", ids="k")["events"]
    assert event["malformed"] == '{"a": 1} {"b": 2}' and "original" not in event
