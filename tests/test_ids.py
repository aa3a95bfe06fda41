"""The id rule (daemon/core/ids.py): one meaning per id, at every entrance, and ids
stored before it still readable and resettable whole."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
import urllib.parse
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from daemon.core.ids import ASTRAL_CC_CF, ID_PATTERN, check_id
from daemon.core.wire import MAX_ID_BYTES
from tests.support.daemon import InProcessDaemon, StartDaemon
from tests.support.scrape import list_key as key
from tests.support.scrape import settle

CACHE = "/api/v1/events/cache"


@pytest.mark.parametrize(
    "id_",
    [
        "js.abc123",
        "a b",  # inside, spaces are fine
        "ключ-ü-✓-🙂",
        "x:errors",
        "error:x",
        "k" * MAX_ID_BYTES,
        "é" * (MAX_ID_BYTES // 2),  # 2 bytes each: exactly the bound
    ],
)
def test_ids_the_rule_takes(id_: str) -> None:
    assert check_id(id_) is None


@pytest.mark.parametrize(
    ("id_", "words"),
    [
        ("", "non-empty"),
        (7, "non-empty string"),
        ("k" * (MAX_ID_BYTES + 1), "at most 1024 bytes"),
        ("é" * (MAX_ID_BYTES // 2 + 1), "at most 1024 bytes"),
        ("🙂" * 257, "at most 1024 bytes"),  # 4 bytes each
        ("alice,bob", "comma"),
        ("victim:error", "':error'"),
        (" spaced", "whitespace"),
        ("spaced ", "whitespace"),
        ("\tx", "control or format"),
        ("invoice\u202egpj.exe", "control or format"),
        ("ad\u200bmin", "control or format"),
        ("a\x00b", "control or format"),
        ("a\x7fb", "control or format"),
    ],
)
def test_ids_the_rule_refuses_and_why(id_: Any, words: str) -> None:
    problem = check_id(id_)
    assert problem is not None and words in problem, problem


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> InProcessDaemon:
    return start_daemon()


@pytest.mark.e2e
def test_every_entrance_refuses_what_the_rule_refuses(daemon: InProcessDaemon) -> None:
    for bad, words in (("alice,bob", "comma"), ("victim:error", ":error"), (" x", "whitespace")):
        reply = daemon.post_token(bad, "{}")
        assert reply.status == 400 and words in reply.json["message"], reply.raw
        line = {"namespace": "token", "id": bad, "original": {"n": 1}}
        answer = daemon.post_ndjson([line, {**line, "id": "good"}]).json
        assert (answer["accepted"], answer["invalid"]) == (1, 1)
        assert words in answer["errors"][0]["message"]
    # In `ids` a comma separates and ends are stripped; what is left must meet the rule.
    reply = daemon.api(CACHE, {"namespace": "token", "ids": "good,victim:error"})
    assert reply.status == 400 and "id=" in reply.json["message"], reply.raw
    assert daemon.metric("events_cache_rejected_total", listener="ingest", reason="bad_id") == 3


@pytest.mark.e2e
def test_an_id_stored_before_the_rule_is_read_and_reset_whole(
    daemon: InProcessDaemon, redis_client: redis.Redis
) -> None:
    """`alice,bob` written by an older sidecar: `ids=` would split it (and reset alice and
    bob), `id=` takes it whole; alice's own list is untouched."""
    for id_ in ("alice,bob", "alice"):
        redis_client.lpush(
            key("token", id_), json.dumps({"original": json.dumps({"who": id_}), "uid": id_})
        )
    answer = daemon.api(CACHE, {"namespace": "token", "id": "alice,bob"}).json
    assert [
        json.loads(e["original"]) if isinstance(e["original"], str) else e["original"]
        for e in answer["events"]
    ] == [{"who": "alice,bob"}]
    reply = daemon.api(CACHE, {"namespace": "token", "id": "alice,bob"}, method="DELETE")
    assert reply.status == 200, reply.raw
    assert not redis_client.exists(key("token", "alice,bob"))
    assert redis_client.exists(key("token", "alice"))
    settle(daemon)


def astral_invisible(text: str) -> bool:
    """Holds a Cc or Cf code point past U+FFFF, which ID_PATTERN leaves to check_id."""
    return any(lo <= ord(c) <= hi for c in text for lo, hi in ASTRAL_CC_CF)


def test_the_patterns_code_points_are_unicodes_cc_and_cf() -> None:
    """ID_PATTERN's and ASTRAL_CC_CF's Cc and Cf code points are Python's Unicode's."""
    pattern = re.compile(ID_PATTERN)
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or char == ",":
            continue  # surrogates are not text; the comma is refused on its own
        invisible = unicodedata.category(char) in ("Cc", "Cf")
        spelled = not pattern.fullmatch(f"a{char}b") or astral_invisible(char)
        assert spelled is invisible, hex(cp)


@given(st.text(min_size=1, max_size=40))
def test_the_pattern_says_what_check_id_says(text: str) -> None:
    if text.endswith(":error") or astral_invisible(text):
        return  # rules the document states in words only
    # fullmatch: Python's `$` also matches before a final newline, ECMA's does not.
    assert bool(re.fullmatch(ID_PATTERN, text)) is (check_id(text) is None)


@pytest.mark.e2e
def test_the_longest_id_the_ingest_takes_can_be_read_and_reset(daemon: InProcessDaemon) -> None:
    """1,024 bytes of 4-byte characters: 3 KiB percent-encoded; three of them in one
    request line (ids=, and id= twice) are past aiohttp's 8,190-byte default."""
    id_ = "🙂" * (MAX_ID_BYTES // 4)
    assert daemon.post_token(id_, '{"n": 1}').status == 202
    settle(daemon)
    encoded = urllib.parse.quote(id_, safe="")
    target = f"{CACHE}?namespace=token&ids={encoded}&id={encoded}&id={encoded}"
    reply = daemon.api(target)
    assert reply.status == 200 and reply.json["total_events"] == 1, reply.raw[:200]
    reply = daemon.api(CACHE, {"namespace": "token", "id": id_}, method="DELETE")
    assert reply.status == 200, reply.raw[:200]
