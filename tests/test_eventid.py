"""The `sidecar.journey.event_id_from` rules: where an event's own id is found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from daemon.config import ConfigError, load_config
from daemon.config.sidecar import JourneySettings
from daemon.core.eventid import (
    MAX_EVENT_ID,
    EventIdFinder,
    EventIdRuleError,
    as_event_id,
    check_event_id_rules,
    parse_event_id_rule,
)

DEFAULT = EventIdFinder(JourneySettings().event_id_from)


def record(**fields: object) -> str:
    rows = [{"field": k, "type": "text", "value": v} for k, v in fields.items()]
    return json.dumps({"destination_id": "pg", "table": "events", "record": rows})


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ({"eventn_ctx": {"event_id": "nested"}, "event_id": "top"}, "nested"),
        ({"eventn_ctx_event_id": "flat", "event_id": "top"}, "flat"),
        ({"event_id": "top", "message_id": "m"}, "top"),
        ({"message_id": "m", "messageId": "M"}, "m"),
        ({"messageId": "M"}, "M"),
        ({"message_id": 42}, "42"),
        ({"eventn_ctx": {"event_id": ""}, "event_id": "next"}, "next"),  # empty: next rule
        ({"eventn_ctx": "not an object", "event_id": "next"}, "next"),
        ({"event_id": True}, None),
        ({"event_id": {"a": 1}}, None),
        ({"event_id": "x" * (MAX_EVENT_ID + 1)}, None),
        ({"event_id": "a\0b"}, None),
        ({}, None),
        ("a text original", None),
        (None, None),
    ],
)
def test_default_rules_in_order(original: object, expected: str | None) -> None:
    assert DEFAULT.find(original, None) == expected
    text = None if original is None else json.dumps(original)
    assert DEFAULT.find_in_texts(text, None) == expected


def test_a_record_rule_reads_a_destinations_success_record() -> None:
    assert DEFAULT.find({"x": 1}, record(eventn_ctx_event_id="rec")) == "rec"
    assert DEFAULT.find({"event_id": "orig"}, record(eventn_ctx_event_id="rec")) == "orig"
    assert DEFAULT.find({}, record(other="rec")) is None
    assert DEFAULT.find({}, json.dumps({"url": "http://x", "body": "{}"})) is None  # HTTP
    assert DEFAULT.find({}, "not json") is None
    assert DEFAULT.find({}, json.dumps({"record": "not a list"})) is None


def test_a_stored_entry() -> None:
    entry = {"original": json.dumps({"event_id": "e"}), "uid": "u"}
    assert DEFAULT.find_in_entry(entry) == "e"
    assert DEFAULT.find_in_entry({"malformed": "{", "error": "bad"}) is None
    assert DEFAULT.find_in_entry({"original": "{not json"}) is None
    flat = {"original": "{}", "success": record(eventn_ctx_event_id="r")}
    assert DEFAULT.find_in_entry(flat) == "r"


def test_rules_are_checked() -> None:
    assert check_event_id_rules(JourneySettings().event_id_from) is None
    assert parse_event_id_rule(" json : a.b ").path == ("a", "b")
    assert str(parse_event_id_rule("record:f")) == "record:f"
    problem = check_event_id_rules(["json:a..b", "header:x", "record:", "json:ok"])
    assert problem is not None
    assert "rule 1" in problem and "rule 2" in problem and "rule 3" in problem
    assert "rule 4" not in problem
    with pytest.raises(EventIdRuleError, match="unknown kind"):
        parse_event_id_rule("event_id")
    assert not EventIdFinder([]).on


def test_as_event_id() -> None:
    assert as_event_id("a") == "a"
    assert as_event_id(7) == "7"
    assert as_event_id(False) is None
    assert as_event_id(1.5) is None
    assert as_event_id("") is None


def test_the_configuration_refuses_a_bad_rule_and_a_bad_retention(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    journey = {"event_id_from": ["json:ok", "header:x"], "retention_minutes": 0}
    path.write_text(yaml.safe_dump({"sidecar": {"journey": journey}}))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    locations = {p.location for p in caught.value.problems}
    assert locations == {"sidecar.journey.event_id_from", "sidecar.journey.retention_minutes"}
    assert "rule 2" in str(caught.value)
    path.write_text(yaml.safe_dump({"sidecar": {"journey": {"event_id_from": ["json:a.b"]}}}))
    assert load_config(str(path), env={}).sidecar.journey.event_id_from == ("json:a.b",)
