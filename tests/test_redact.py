"""server.cache.events.redact: configured JSON paths masked before anything is cached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.config import ConfigError, load_config
from daemon.core.redact import (
    REDACTED_VALUE,
    Redactor,
    RedactPathError,
    Unredactable,
    parse_path,
    unredactable,
)


def test_paths_are_masked_and_the_rest_kept() -> None:
    r = Redactor(["eventn_ctx.user.email", "ip", "items.*.card", "missing.path"])
    text = json.dumps(
        {
            "eventn_ctx": {"user": {"email": "a@b.c", "id": 7}},
            "ip": "10.0.0.1",
            "items": [{"card": "4111", "sku": "x"}, {"sku": "y"}],
            "event_type": "pageview",
        }
    )
    doc = orjson.loads(r.redact_text(text))
    assert doc["eventn_ctx"]["user"] == {"email": REDACTED_VALUE, "id": 7}
    assert doc["ip"] == REDACTED_VALUE
    assert doc["items"] == [{"card": REDACTED_VALUE, "sku": "x"}, {"sku": "y"}]
    assert doc["event_type"] == "pageview"


def test_text_is_untouched_when_nothing_matches_or_it_is_not_json() -> None:
    r = Redactor(["user.email"])
    text = '{"user": {"name": "x"},   "a": 1}'
    assert r.redact_text(text) is text  # not even re-encoded
    assert r.redact_text("not json") == "not json"
    assert r.redact_text('"a string"') == '"a string"'
    assert not Redactor([])


@pytest.mark.parametrize("bad", ["", ".", "a..b", "a.", " "])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(RedactPathError):
        parse_path(bad)


def test_config_key_validated_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  cache:\n    events:\n      redact: [user.email, 'a..b', 3]\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(path), env={})
    assert [p.location for p in e.value.problems] == ["server.cache.events.redact"] * 2
    path.write_text("server:\n  cache:\n    events:\n      redact: [user.email]\n")
    assert load_config(str(path), env={}).events.redact == ("user.email",)
    assert load_config(None, env={}).events.redact == ()


@pytest.mark.e2e
def test_redacted_before_it_reaches_redis(start_daemon: Any, redis_client: Any) -> None:
    daemon = start_daemon(
        {"server": {"cache": {"events": {"redact": ["eventn_ctx.user.email", "ip"]}}}}
    )
    event = {"eventn_ctx": {"user": {"email": "a@b.c", "anonymous_id": "u1"}}, "ip": "1.2.3.4"}
    assert daemon.post_token("key-1", json.dumps(event)).status == 202
    line = {"namespace": "destination", "id": "d1", "original": event, "error": "x"}
    assert daemon.post_ndjson([line]).status == 202
    daemon.wait_drained()
    stored = b"".join(redis_client.lrange("events_cache:token#key-1", 0, -1))
    stored += b"".join(redis_client.lrange("events_cache:destination#d1", 0, -1))
    assert b"a@b.c" not in stored and b"1.2.3.4" not in stored
    got = daemon.query(namespace="token", ids="key-1")["events"][0]["original"]
    assert got == {
        "eventn_ctx": {"user": {"email": REDACTED_VALUE, "anonymous_id": "u1"}},
        "ip": REDACTED_VALUE,
    }


def test_an_original_that_cannot_be_written_back_is_replaced_not_failed() -> None:
    """orjson reads 1,024 levels but writes 254: a matched original deeper than that
    cannot be written back redacted, and must not be stored as it came either."""
    deep = '{"email": "a@b.c", "n": ' + '{"n": ' * 300 + "1" + "}" * 300 + "}"
    with pytest.raises(Unredactable):
        Redactor(["email"]).redact_text(deep)
    assert Redactor(["nowhere"]).redact_text(deep) == deep  # nothing matched: as it came
    note = json.loads(unredactable(deep, "why"))
    assert note == {"redaction_failed": "why", "original_bytes": len(deep)}


@pytest.mark.e2e
def test_a_deep_body_with_redaction_is_taken_counted_and_never_stored_as_sent(
    start_daemon: Any, redis_client: Any
) -> None:
    """Taken (202) and received; its original stored as a note saying why, counted in
    events_cache_unredactable_total."""
    daemon = start_daemon({"server": {"cache": {"events": {"redact": ["email"]}}}})
    deep = '{"email": "a@b.c", "n": ' + '{"n": ' * 300 + "1" + "}" * 300 + "}"
    reply = daemon.post_token("deep-key", deep)
    assert reply.status == 202 and reply.json["accepted"] == 1, reply.raw
    daemon.wait_drained()
    assert b"a@b.c" not in b"".join(redis_client.lrange("events_cache:token#deep-key", 0, -1))
    [event] = daemon.query(namespace="token", ids="deep-key")["events"]
    assert event["original"]["redaction_failed"].startswith("nested too deeply")
    assert event["original"]["original_bytes"] == len(deep)
    assert daemon.metric("events_cache_unredactable_total") == 1
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == 1


@pytest.mark.e2e
def test_with_redaction_nothing_unredacted_reaches_redis(
    start_daemon: Any, redis_client: Any
) -> None:
    """A malformed body (not JSON: no path can be found in it), one sent with
    X-Events-Cache-Error, and a destination's result: none is stored as it came."""
    daemon = start_daemon({"server": {"cache": {"events": {"redact": ["email"]}}}})
    assert daemon.post_token("bad", '{"email": "a@b.c", cut short').status == 202
    error = {"X-Events-Cache-Error": "refused by the ingest"}
    assert daemon.post_token("bad", '{"email": "d@e.f"}', headers=error).status == 202
    line = {
        "namespace": "destination",
        "id": "pg",
        "original": {"email": "g@h.i"},
        "success": {"email": "g@h.i", "table": "events"},
    }
    assert daemon.post_ndjson([line]).json["accepted"] == 1
    daemon.wait_drained()
    stored = b"".join(
        b"".join(redis_client.lrange(key, 0, -1))
        for key in redis_client.scan_iter("events_cache:*#*")
    )
    for email in (b"a@b.c", b"d@e.f", b"g@h.i"):
        assert email not in stored
    malformed = daemon.query(namespace="token", ids="bad")["events"]
    assert all("redaction_failed" in e["malformed"] for e in malformed)
    [result] = daemon.query(namespace="destination", ids="pg")["events"]
    assert result["success"] == {"email": REDACTED_VALUE, "table": "events"}
    assert daemon.metric("events_cache_unredactable_total") == 2
