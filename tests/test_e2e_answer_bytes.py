"""The stuffed key, as the review attacked it: big events under one key, then the query.

An answer's `events` array stays within `sidecar.api.max_response_bytes` and says it was
cut; its events are whole and newest first; `before` pages on to the end; the daemon reads
the lists in round trips bounded by the bound, so its peak memory (VmHWM, read from
/proc of the subprocess daemon) does not grow by the size an unbounded answer would have.
An event longer than the bound on its own is answered cut, and whole by `uid=`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.daemon import DaemonClient
from tests.support.scrape import list_key, settle

pytestmark = pytest.mark.e2e

CACHE = "/api/v1/events/cache"
MB = 1_000_000
ROOMY = {"server": {"cache": {"events": {"size": 100, "time_window_sec": 3600}}}}


def bound(max_bytes: int) -> dict[str, Any]:
    return {**ROOMY, "sidecar": {"api": {"max_response_bytes": max_bytes}}}


def stuff(daemon: DaemonClient, key: str, count: int, pad: int = MB) -> None:
    """`count` events of `pad` bytes each under one key, through the ingest, oldest first."""
    for seq in range(count):
        reply = daemon.post_token(key, json.dumps({"seq": seq, "pad": "x" * pad}))
        assert reply.status == 202, reply.raw[:200]
    settle(daemon, timeout=60)


def events_array(raw: bytes) -> bytes:
    """The answer's `events` array as sent (it is the answer's last field)."""
    return raw[raw.index(b'"events":') + len(b'"events":') : -1]


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


def seqs(reply: Any) -> list[int]:
    return [event["original"]["seq"] for event in reply.json["events"]]


def test_a_stuffed_key_is_answered_within_a_small_bound_and_little_memory(
    start_daemon_process: Any,
) -> None:
    """40 events of 1 MB; a bound of 1 MiB holds one. Unbounded, the answer would be 40 MB
    and the daemon would hold it (and every entry read) at once."""
    daemon = start_daemon_process(bound(1 << 20))
    stuff(daemon, "stuffed", 40)
    before = vm_hwm_mib(daemon.pid)
    reply = daemon.api(CACHE, {"namespace": "token", "ids": "stuffed"})
    grown = vm_hwm_mib(daemon.pid) - before
    assert reply.status == 200 and reply.headers.get("X-Events-Cache-Truncated") == "true"
    assert len(events_array(reply.raw)) <= 1 << 20
    assert reply.json["response_events"] == 1 and reply.json["total_events"] == 40
    assert seqs(reply) == [39] and len(reply.json["events"][0]["original"]["pad"]) == MB
    assert grown < 20, f"peak memory grew {grown:.1f} MiB answering a 1 MiB answer"


def test_a_stuffed_key_under_the_default_bound_pages_to_the_end(
    start_daemon_process: Any,
) -> None:
    """40 events of 1 MB under the default 16 MiB: 16 a page, whole, newest first, and
    `before` pages on until an answer that is not cut."""
    daemon = start_daemon_process(ROOMY)
    stuff(daemon, "stuffed", 40)
    seen: list[int] = []
    params: dict[str, Any] = {"namespace": "token", "ids": "stuffed"}
    for expected, cut in ((16, True), (16, True), (8, False)):
        reply = daemon.api(CACHE, params)
        assert reply.status == 200 and len(events_array(reply.raw)) <= 16 * 1024 * 1024
        assert (reply.headers.get("X-Events-Cache-Truncated") == "true") == cut
        assert reply.json["response_events"] == expected
        assert all(len(e["original"]["pad"]) == MB for e in reply.json["events"])
        seen += seqs(reply)
        params["before"] = reply.json["events"][-1]["uid"]
    assert seen == list(range(39, -1, -1))


def test_an_answer_exactly_at_the_bound_and_one_byte_over(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """Four events of about 50 KB: with the bound at the array's exact length all four
    come back and the answer is not cut; one byte less and the fourth is left out."""
    first = start_daemon(ROOMY)
    stuff(first, "k", 4, pad=50_000)
    whole = first.api(CACHE, {"namespace": "token", "ids": "k"})
    exact = len(events_array(whole.raw))
    assert whole.json["response_events"] == 4 and exact > 131072
    at = start_daemon(bound(exact)).api(CACHE, {"namespace": "token", "ids": "k"})
    assert at.raw == whole.raw and "X-Events-Cache-Truncated" not in at.headers
    over = start_daemon(bound(exact - 1)).api(CACHE, {"namespace": "token", "ids": "k"})
    assert over.headers.get("X-Events-Cache-Truncated") == "true"
    assert over.json["events"] == whole.json["events"][:3]
    assert len(events_array(over.raw)) <= exact - 1
    assert redis_client.llen(list_key("token", "k")) == 4


def test_an_event_longer_than_the_bound_is_cut_and_whole_by_uid(start_daemon: Any) -> None:
    daemon = start_daemon(bound(131072))
    stuff(daemon, "k", 1, pad=300_000)
    stuff(daemon, "k", 1, pad=10)
    page = daemon.api(CACHE, {"namespace": "token", "ids": "k"})
    assert "X-Events-Cache-Truncated" not in page.headers and len(page.raw) < 131072
    small, big = page.json["events"]
    assert "cut" not in small and small["original"] == {"seq": 0, "pad": "x" * 10}
    assert set(big["cut"]) == {"original"} and big["cut"]["original"] > 300_000
    assert isinstance(big["original"], str) and big["original"].startswith('{"seq": 0, "pad": "xxx')
    assert len(json.dumps(big["original"])) <= 8192
    alone = daemon.api(CACHE, {"namespace": "token", "ids": "k", "uid": big["uid"]})
    assert alone.status == 200 and "X-Events-Cache-Truncated" not in alone.headers
    assert alone.json["response_events"] == 1 and "cut" not in alone.json["events"][0]
    assert alone.json["events"][0]["original"] == {"seq": 0, "pad": "x" * 300_000}
    assert alone.json["total_events"] == 2
    missing = daemon.api(CACHE, {"namespace": "token", "ids": "k", "uid": "no-such-uid"})
    assert missing.status == 200 and missing.json["events"] == []
    for params, message in (
        ({"uid": "u" * 65}, "uid must be at most 64 characters"),
        ({"uid": big["uid"], "before": big["uid"]}, "give either uid (one entry) or before"),
    ):
        refused = daemon.api(CACHE, {"namespace": "token", "ids": "k", **params})
        assert refused.status == 400 and refused.json["message"].startswith(message)


def test_the_summary_shows_a_huge_newest_error_shortened(start_daemon: Any) -> None:
    """The summary carries each id's newest error message: a stuffed one is shortened to
    1,024 characters (and "…"), so a page of ids stays small."""
    daemon = start_daemon(ROOMY)
    line = {"namespace": "destination", "id": "d", "original": {"n": 1}, "error": "E" * 500_000}
    assert daemon.post_ndjson([line, {**line, "id": "short", "error": "E" * 1024}]).status == 202
    settle(daemon)
    reply = daemon.api("/api/v1/events/ids", {"namespace": "destination"})
    assert reply.status == 200 and len(reply.raw) < 4096
    errors = {row["id"]: row["last_error"] for row in reply.json["ids"]}
    assert errors == {"d": "E" * 1024 + "…", "short": "E" * 1024}
    whole = daemon.query(namespace="destination", ids="d", status="error")
    assert whole["events"][0]["error"] == "E" * 500_000
