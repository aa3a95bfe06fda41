"""Capture end to end (issue 23, point 2): a test run's tagged events beat a spent rate
limit within the pod's budget, keep their tag, are found with `capture=` and reset by it;
the tag comes from an NDJSON line's own field or the `sidecar.capture.from` rules (a
header, a JSON path) on the ingest endpoints, the mirror and the tee proxy. The daemon
runs in this process with a real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from daemon.store.uncapture import FIRST_PAGE, MAX_PAGE, PAGE_BYTES, next_page
from tests.support.daemon import DaemonClient
from tests.support.servers import free_port, wait_for
from tests.support.standins import StandIn, exchange, http_request

pytestmark = pytest.mark.e2e

SIZE = 10
HEADER = "X-Events-Cache-Capture"
FROM = [f"header:{HEADER}", "json:ctx.test_id"]
CLOSE = [(b"Connection", b"close")]


def config(budget: int = 1000, rules: list[str] | None = None, **sidecar: Any) -> dict[str, Any]:
    """A small bucket that does not refill during a test, and the capture settings."""
    return {
        "server": {"cache": {"events": {"size": SIZE, "time_window_sec": 3600}}},
        "sidecar": {"capture": {"from": rules or [], "budget_per_minute": budget}, **sidecar},
    }


def new_id() -> str:
    return f"cap-{uuid.uuid4().hex[:12]}"


def line(id_: str, n: int, tag: str | None = None, **more: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"namespace": "token", "id": id_, "original": {"n": n}, **more}
    if tag is not None:
        doc["capture"] = tag
    return doc


def spend_bucket(daemon: DaemonClient, id_: str) -> None:
    """SIZE untagged events: the id's bucket is empty after them."""
    answer = daemon.post_ndjson([line(id_, n) for n in range(SIZE)]).json
    assert answer["accepted"] == SIZE


def cached(daemon: DaemonClient, id_: str, **params: Any) -> list[dict[str, Any]]:
    daemon.wait_drained()
    events: list[dict[str, Any]] = daemon.query(namespace="token", ids=id_, **params)["events"]
    return events


def captured(daemon: DaemonClient) -> float:
    return daemon.metric("events_cache_captured_total", cache_namespace="token")


def test_tagged_ndjson_lines_beat_a_spent_bucket_and_keep_their_tag(start_daemon: Any) -> None:
    daemon = start_daemon(config())
    id_, tag = new_id(), f"run-{uuid.uuid4().hex[:8]}"
    spend_bucket(daemon, id_)
    answer = daemon.post_ndjson(
        [line(id_, 100), *(line(id_, 200 + n, tag) for n in range(4)), line(id_, 101)]
    ).json
    assert (answer["accepted"], answer["rate_limited"]) == (4, 2)
    tagged = cached(daemon, id_, capture=tag)
    assert sorted(e["original"]["n"] for e in tagged) == [200, 201, 202, 203]
    assert all(e["capture"] == tag for e in tagged)
    everything = cached(daemon, id_, limit=100)
    assert {e["original"]["n"] for e in everything} >= {200, 201, 202, 203}
    assert not any(e["original"]["n"] in (100, 101) for e in everything)
    # Untagged entries answer in Jitsu's shape, with no capture field.
    assert all("capture" not in e for e in everything if e["original"]["n"] < SIZE)
    assert captured(daemon) == 4


def test_the_budget_bounds_what_is_cached_beyond_the_limits(start_daemon: Any) -> None:
    daemon = start_daemon(config(budget=3))
    id_, tag = new_id(), "budget-run"
    # Tagged events that the bucket lets through spend none of the budget.
    answer = daemon.post_ndjson([line(id_, n, tag) for n in range(SIZE)]).json
    assert answer["accepted"] == SIZE and captured(daemon) == 0
    limited_before = daemon.metric(
        "events_cache_rate_limited_total", cache_namespace="token", collection="all"
    )
    answer = daemon.post_ndjson([line(id_, 100 + n, tag) for n in range(5)]).json
    assert (answer["accepted"], answer["rate_limited"]) == (3, 2)
    assert captured(daemon) == 3
    limited = daemon.metric(
        "events_cache_rate_limited_total", cache_namespace="token", collection="all"
    )
    assert limited - limited_before == 2
    # The budget is the pod's: another id's tagged events find it spent too.
    other = new_id()
    spend_bucket(daemon, other)
    assert daemon.post_ndjson([line(other, 1, tag)]).json["rate_limited"] == 1
    assert len(cached(daemon, id_, capture=tag, limit=100)) == SIZE


def test_an_error_entry_beyond_both_limits_spends_the_budget_once(start_daemon: Any) -> None:
    daemon = start_daemon(config(budget=5))
    id_ = new_id()
    errors = [{**line(id_, n), "error": "boom"} for n in range(SIZE)]
    assert daemon.post_ndjson(errors).json["accepted"] == SIZE
    answer = daemon.post_ndjson([line(id_, 99, "err-run", error="boom again")]).json
    assert answer["accepted"] == 1 and captured(daemon) == 1
    [in_errors] = cached(daemon, id_, status="error", capture="err-run")
    assert in_errors["error"] == "boom again"


def test_header_and_json_rules_tag_the_token_endpoints_events(start_daemon: Any) -> None:
    daemon = start_daemon(config(rules=FROM))
    id_ = new_id()
    spend_bucket(daemon, id_)
    # One object, the bucket spent: without a tag it is limited without being built...
    assert daemon.post_token(id_, json.dumps({"n": 1})).json["rate_limited"] == 1
    # ...with the header it is cached, and so is every element of an array.
    reply = daemon.post_token(id_, json.dumps({"n": 2}), headers={HEADER: "by-header"})
    assert reply.json["accepted"] == 1
    body = json.dumps([{"n": 3, "ctx": {"test_id": "by-json"}}, {"n": 4}])
    assert daemon.post_token(id_, body).json == {
        "accepted": 1,
        "rate_limited": 1,
        "dropped": 0,
        "invalid": 0,
        "errors": [],
    }
    one = json.dumps({"n": 5, "ctx": {"test_id": "by-json"}})
    assert daemon.post_token(id_, one).json["accepted"] == 1
    assert [e["original"]["n"] for e in cached(daemon, id_, capture="by-header")] == [2]
    assert [e["original"]["n"] for e in cached(daemon, id_, capture="by-json")] == [5, 3]
    # The header rule comes first; a tag that is not one (too long) is none.
    body = json.dumps({"n": 6, "ctx": {"test_id": "by-json"}})
    assert daemon.post_token(id_, body, headers={HEADER: "first"}).json["accepted"] == 1
    assert (
        daemon.post_token(id_, json.dumps({"n": 7}), headers={HEADER: "x" * 300}).json[
            "rate_limited"
        ]
        == 1
    )
    assert [e["original"]["n"] for e in cached(daemon, id_, capture="first")] == [6]
    assert captured(daemon) == 4


def test_ndjson_lines_take_the_header_unless_they_carry_their_own(start_daemon: Any) -> None:
    daemon = start_daemon(config(rules=FROM))
    id_ = new_id()
    spend_bucket(daemon, id_)
    lines = [line(id_, 1), line(id_, 2, "own"), line(id_, 3)]
    lines[2]["original"] = {"n": 3, "ctx": {"test_id": "j"}}  # the header comes first
    body = "\n".join(json.dumps(x) for x in lines).encode()
    assert daemon.ingest("/v1/events", body, headers={HEADER: "hdr"}).json["accepted"] == 3
    assert [e["original"]["n"] for e in cached(daemon, id_, capture="hdr")] == [3, 1]
    assert [e["original"]["n"] for e in cached(daemon, id_, capture="own")] == [2]
    # Without the header, the json rule finds the tag in the original.
    other = new_id()
    spend_bucket(daemon, other)
    doc = {"namespace": "token", "id": other, "original": {"n": 9, "ctx": {"test_id": "j"}}}
    assert daemon.post_ndjson([doc, line(other, 10)]).json["accepted"] == 1
    assert [e["original"]["n"] for e in cached(daemon, other, capture="j")] == [9]


def test_a_line_whose_capture_is_not_a_tag_is_invalid(start_daemon: Any) -> None:
    daemon = start_daemon(config())
    id_ = new_id()
    answer = daemon.post_ndjson(
        [line(id_, 1, ""), line(id_, 2, "ok"), {**line(id_, 3), "capture": 7}]
    ).json
    assert (answer["accepted"], answer["invalid"]) == (1, 2)
    assert [e["message"] for e in answer["errors"]] == [
        '"capture" must be a non-empty string',
        '"capture" must be a non-empty string',
    ]


def test_destination_results_carry_a_tag_too(start_daemon: Any) -> None:
    daemon = start_daemon(config())
    dest = new_id()
    results = [
        {"namespace": "destination", "id": dest, "original": {"n": n}, "success": {"ok": n}}
        for n in range(SIZE)
    ]
    daemon.post_ndjson(results)
    tagged = {**results[0], "original": {"n": 50}, "capture": "dest-run"}
    assert daemon.post_ndjson([tagged]).json["accepted"] == 1
    daemon.wait_drained()
    [event] = daemon.query(ids=dest, capture="dest-run")["events"]
    assert event["original"] == {"n": 50} and event["capture"] == "dest-run"
    assert daemon.metric("events_cache_captured_total", cache_namespace="destination") == 1


def test_capture_parameter_is_checked(start_daemon: Any) -> None:
    daemon = start_daemon(config())
    for bad, message in (
        (" lead", "capture must not start or end with whitespace"),
        ("x" * 300, "capture must be at most 256 bytes (UTF-8)"),
    ):
        reply = daemon.api("/api/v1/events/cache", {"namespace": "token", "capture": bad})
        assert (reply.status, reply.json["message"]) == (400, message)
        reply = daemon.api("/api/v1/events/cache", {"capture": bad, "ids": "a"}, method="DELETE")
        assert (reply.status, reply.json["message"]) == (400, message)
    reply = daemon.api("/api/v1/events/cache", {"capture": "t", "all": "true"}, method="DELETE")
    assert reply.status == 400 and "all=true" in reply.json["message"]
    many = ",".join(f"i{n}" for n in range(201))
    reply = daemon.api("/api/v1/events/cache", {"capture": "t", "ids": many}, method="DELETE")
    assert reply.status == 400 and "at most 200 ids" in reply.json["message"]


def test_reset_by_capture_removes_just_the_tagged_entries(start_daemon: Any) -> None:
    daemon = start_daemon(config())
    a, b = new_id(), new_id()
    daemon.post_ndjson(
        [
            line(a, 1),
            line(a, 2, "gone"),
            line(a, 3, "kept"),
            {**line(a, 4, "gone"), "error": "e"},
            line(b, 5, "gone"),
            line(b, 6),
        ]
    )
    daemon.wait_drained()
    params = {"namespace": "token", "capture": "gone", "ids": a}
    reply = daemon.api("/api/v1/events/cache", params, method="DELETE")
    assert reply.status == 200
    assert reply.json == {"deleted_events": 2, "scanned_ids": 1, "next_cursor": None}
    assert sorted(e["original"]["n"] for e in cached(daemon, a)) == [1, 3]
    assert cached(daemon, a, status="error") == []
    assert [e["original"]["n"] for e in cached(daemon, b)] == [6, 5]
    # Without ids: the most recently active ids of the index, a page of them.
    reply = daemon.api(
        "/api/v1/events/cache", {"namespace": "token", "capture": "gone"}, method="DELETE"
    )
    assert reply.status == 200 and reply.json["deleted_events"] == 1
    assert reply.json["scanned_ids"] >= 2
    assert [e["original"]["n"] for e in cached(daemon, b)] == [6]
    assert [e["original"]["n"] for e in cached(daemon, a, capture="kept")] == [3]


def test_reset_by_capture_reads_long_lists_of_large_entries_in_pages(start_daemon: Any) -> None:
    """80 entries of about 300 KB: the first page is FIRST_PAGE entries, the later ones
    what PAGE_BYTES holds (13); every tagged entry on every page goes, none other."""
    roomy = {"server": {"cache": {"events": {"size": 100, "time_window_sec": 3600}}}}
    daemon = start_daemon(roomy)
    id_, pad = new_id(), "x" * 300_000
    for n in range(80):  # one a request: within max_request_bytes
        reply = daemon.post_ndjson([line(id_, n, "big" if n % 3 == 0 else None, pad=pad)])
        assert reply.status == 202 and reply.json["accepted"] == 1, reply.raw
    daemon.wait_drained()
    assert next_page(300_000) < FIRST_PAGE < 80  # several pages, of both kinds
    params = {"namespace": "token", "capture": "big", "ids": id_}
    reply = daemon.api("/api/v1/events/cache", params, method="DELETE")
    assert reply.status == 200 and reply.json["deleted_events"] == 27, reply.raw
    left = [e["original"]["n"] for e in cached(daemon, id_, limit=100)]
    assert sorted(left) == [n for n in range(80) if n % 3]


def test_a_page_holds_what_its_bytes_allow() -> None:
    assert next_page(0) == MAX_PAGE and next_page(1) == MAX_PAGE
    assert next_page(PAGE_BYTES // 13) == 13
    assert next_page(PAGE_BYTES * 2) == 1  # one entry larger than a page: one at a time


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


def test_the_mirror_and_the_proxy_take_the_tag(start_daemon: Any, stand_in: StandIn) -> None:
    mirror_port, proxy_port = free_port(), free_port()
    rules = ["header:X-Auth-Token"]
    daemon = start_daemon(
        config(
            rules=FROM,
            mirror={"listen": f"127.0.0.1:{mirror_port}", "token_from": rules},
            proxy={
                "listen": f"127.0.0.1:{proxy_port}",
                "upstream": f"http://127.0.0.1:{stand_in.port}",
                "token_from": rules,
            },
        )
    )
    id_ = new_id()
    spend_bucket(daemon, id_)
    key = [(b"X-Auth-Token", id_.encode())]
    sent = [
        (mirror_port, [(HEADER.encode(), b"mirror-run")], {"n": 101}),
        (mirror_port, [], {"n": 102, "ctx": {"test_id": "mirror-run"}}),
        (mirror_port, [], {"n": 103}),
        (proxy_port, [(HEADER.encode(), b"proxy-run")], {"n": 104}),
        (proxy_port, [], {"n": 105}),
    ]
    for port, headers, doc in sent:
        request = http_request("POST", "/e", [*key, *headers, *CLOSE], json.dumps(doc).encode())
        assert exchange(port, request).status in (200, 202)
    assert len(stand_in.received) == 2  # the proxy forwarded both, tagged or not

    def done() -> bool:
        return captured(daemon) == 3

    wait_for(done)
    assert sorted(e["original"]["n"] for e in cached(daemon, id_, capture="mirror-run")) == [
        101,
        102,
    ]
    assert [e["original"]["n"] for e in cached(daemon, id_, capture="proxy-run")] == [104]
    assert not {103, 105} & {e["original"]["n"] for e in cached(daemon, id_, limit=100)}
