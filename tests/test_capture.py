"""Capture tags on their own: the rules (`sidecar.capture.from`) and their messages, what
a tag may be, the finder, the budget in admission (a real queue and buckets, a clock that
stands still, then moves), the entry's field and the `capture=` parameters."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from daemon.config.load import ConfigError, load_config
from daemon.config.sidecar import CaptureSettings
from daemon.core.capture import CaptureFinder, check_capture, check_capture_rules
from daemon.core.entry import ParsedEvent, decode, encode
from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.core.model import Collection, Namespace
from daemon.metrics import Metrics
from daemon.pipeline.admission import Admission
from daemon.pipeline.queue import EventQueue
from daemon.query.params import QueryError, parse_query, parse_reset

TOKEN = Namespace.TOKEN


def test_rules_are_checked_with_messages_naming_each_fault() -> None:
    assert check_capture_rules(["header:X-Events-Cache-Capture", "json:a.b.c", "json:t"]) is None
    problem = check_capture_rules(["query:t", "json:a..b", "header:", "nothing"])
    assert problem is not None
    assert "rule 1 'query:t': a capture rule is header:NAME or json:dotted.path" in problem
    assert "rule 2 'json:a..b': the json path has an empty part" in problem
    assert "rule 3 'header:': the header rule needs a name after the colon" in problem
    assert "rule 4 'nothing': unknown kind" in problem


def test_the_config_key_is_from(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sidecar:\n  capture:\n    from: [json:test_id]\n    budget_per_minute: 7\n")
    config = load_config(str(path), env={})
    assert config.sidecar.capture == CaptureSettings(("json:test_id",), 7)
    path.write_text(
        "sidecar:\n  capture:\n    from: ['path:/x/{token}']\n    budget_per_minute: -1\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(str(path), env={})
    text = str(e.value)
    assert "sidecar.capture.from: rule 1 'path:/x/{token}': a capture rule is" in text
    assert "sidecar.capture.budget_per_minute: must be >= 0" in text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("run-42", None),
        ("a, b: c", None),
        ("é" * 128, None),
        ("", "must be a non-empty string"),
        (42, "must be a non-empty string"),
        ("é" * 129, "must be at most 256 bytes (UTF-8)"),
        ("a\u202eb", "must not hold control or format characters (Unicode Cc, Cf)"),
        (" a", "must not start or end with whitespace"),
        ("a\udcff", "must be valid UTF-8"),
    ],
)
def test_what_a_tag_may_be(value: object, problem: str | None) -> None:
    assert check_capture(value) == problem


def event(**fields: object) -> ParsedEvent:
    return ParsedEvent(TOKEN, "k", token_id="k", **fields)  # type: ignore[arg-type]


def test_the_finder_tries_the_rules_in_order_and_keeps_a_lines_own_tag() -> None:
    finder = CaptureFinder(["header:X-Test", "json:ctx.test.id", "json:test_id"])
    assert finder.headers == ("x-test",) and finder.reads_body
    tags = finder.request_tags({"x-test": "hdr"}.get)
    assert tags == {"x-test": "hdr"}
    e = event(value={"test_id": "json"})
    finder.tag(e, tags)
    assert e.capture == "hdr"
    nested, flat, bad = (
        event(original='{"ctx": {"test": {"id": "deep"}}, "test_id": "flat"}'),
        event(value={"test_id": "flat", "ctx": {"test": "not an object"}}),
        event(value={"test_id": 7}),
    )
    for e in (nested, flat, bad):
        finder.tag(e, {})
    assert (nested.capture, flat.capture, bad.capture) == ("deep", "flat", None)
    own = event(value={"test_id": "json"}, capture="own")
    finder.tag(own, tags)
    assert own.capture == "own"
    # A header value that cannot be a tag is none; the body is looked at without parsing.
    assert finder.request_tags({"x-test": " padded"}.get) == {}
    assert finder.may_tag(b'{"ctx": 1}', {}) and not finder.may_tag(b'{"n": 1}', {})
    assert finder.may_tag(b"{}", {"x-test": "hdr"})


def admission(budget: int, clock: list[float]) -> tuple[Admission, EventQueue, Metrics]:
    """One event per list and hour; a clock the test moves."""
    queue, metrics = EventQueue(1000, 1), Metrics("test")
    adm = Admission(
        queue, RateLimiters(1, 3600), LimitedCounter(), metrics, monotonic=lambda: clock[0]
    )
    adm.capturing(CaptureSettings((), budget))
    return adm, queue, metrics


def test_the_budget_is_spent_only_beyond_the_limits_and_refills() -> None:
    clock = [100.0]
    adm, queue, metrics = admission(2, clock)
    # The first tagged event fits its bucket: it spends nothing.
    assert adm.submit([event(original="{}", capture="t")]).accepted == 1
    assert metrics.captured[TOKEN].value == 0
    outcome = adm.submit([event(original="{}", capture="t") for _ in range(3)] + [event()])
    assert (outcome.accepted, outcome.rate_limited) == (2, 2)
    assert metrics.captured[TOKEN].value == 2
    assert metrics.rate_limited[TOKEN, Collection.ALL].value == 2
    clock[0] += 30.0  # half a minute: one of the budget's two is back
    outcome = adm.submit([event(original="{}", capture="t") for _ in range(2)])
    assert (outcome.accepted, outcome.rate_limited) == (1, 1)
    assert len(queue.take(0, 1000, 1 << 30)[0]) == 4


def test_an_error_beyond_both_limits_spends_once_and_goes_to_both_lists() -> None:
    adm, queue, metrics = admission(5, [100.0])
    adm.submit([event(original="{}", error="e")])  # both buckets spent
    outcome = adm.submit([event(original="{}", error="again", capture="t")])
    assert outcome.accepted == 1 and metrics.captured[TOKEN].value == 1
    assert [e.target for e in queue.take(0, 10, 1 << 30)[0]] == [3, 3]


def test_no_budget_is_no_bypass() -> None:
    adm, _, metrics = admission(0, [100.0])
    adm.submit([event(original="{}")])
    assert adm.submit([event(original="{}", capture="t")]).rate_limited == 1
    assert metrics.captured[TOKEN].value == 0


def test_the_entry_keeps_its_tag_and_answers_it_last() -> None:
    raw = encode(event(original='{"a":1}', capture="run-1"), 0.0)
    assert orjson.loads(raw)["capture"] == "run-1"
    assert list(decode(raw))[-1] == "capture"
    plain = encode(event(original='{"a":1}'), 0.0)
    assert b"capture" not in plain and "capture" not in decode(plain)


def test_capture_parameters() -> None:
    assert parse_query({"namespace": "token", "capture": "run-1"}, 100).capture == "run-1"
    assert parse_query({"capture": "run-1"}, 100).filtered
    assert not parse_query({}, 100).filtered
    with pytest.raises(QueryError, match="capture must not start or end with whitespace"):
        parse_query({"capture": "x "}, 100)
    reset = parse_reset({"capture": "t", "namespace": "token"})
    assert (reset.capture, reset.ids, reset.by_index, reset.everything) == ("t", (), True, False)
    reset = parse_reset({"capture": "t", "ids": "a,b"})
    assert (reset.ids, reset.by_index) == (("a", "b"), False)
    assert parse_reset({"capture": "t", "ids": ""}).ids == ()
    for params, message in (
        ({"capture": "t", "all": "true"}, "not with all=true"),
        ({"capture": "t", "ids": "a", "cursor": "x"}, "give it without ids"),
        ({"capture": "t", "ids": ",".join(f"i{n}" for n in range(201))}, "at most 200 ids"),
    ):
        with pytest.raises(QueryError, match=message):
            parse_reset(params)
