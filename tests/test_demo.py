"""`events-cache demo`: the generator on its own (pure, seeded), its traffic through the
daemon's own rate limiter, and the command feeding a real daemon through the Python
ingest client, with the counts of both sides agreeing."""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import demo
from daemon.cli.demo_data import (
    BOT_AGENT,
    BOT_SKIP,
    BUSY_KEY,
    DESTINATION_SKIPS,
    DESTINATIONS,
    Destination,
    destinations,
    flatten,
)
from daemon.cli.demo_events import DEFAULT_RATE, Incoming, Item, Processed, Traffic
from daemon.cli.demo_faults import failure
from daemon.core.limiter import RateLimiters
from tests.support.servers import seconds_until

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_790_000_000.0
LIMIT, WINDOW_S = 100, 60  # the cache's defaults: size and time_window_sec
DAY_S = 86400


def generate(
    n: int, ids: int = 4, error_ratio: float = 0.1, seed: int = 1, rate: float = DEFAULT_RATE
) -> Traffic:
    traffic = Traffic(ids, error_ratio, random.Random(seed), rate)
    traffic.items = [item for _ in range(n) for item in traffic.request(NOW)]  # type: ignore[attr-defined]
    return traffic


def parses(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# ------------------------------------------------------------------- the generator


def test_same_seed_same_traffic_and_the_same_keys_whatever_the_seed() -> None:
    a, b, c = generate(200, seed=3), generate(200, seed=3), generate(200, seed=4)
    assert a.items == b.items  # type: ignore[attr-defined]
    assert a.items != c.items  # type: ignore[attr-defined]
    assert [k.id for k in a.keys] == [k.id for k in c.keys]  # repeated demos: the same ids


def test_incoming_events_look_like_jitsu_sdk_events() -> None:
    traffic = generate(500, error_ratio=0)
    bodies = [i for i in traffic.items if isinstance(i, Incoming)]  # type: ignore[attr-defined]
    assert len(bodies) == 500
    types = set()
    for item in bodies:
        doc = parses(item.body)
        events = doc if isinstance(doc, list) else [doc]
        for event in events:
            assert event["api_key"] == item.token_id
            types.add(event["event_type"])
            if item.token_id.startswith("js."):
                ctx = event["eventn_ctx"]
                assert ctx["url"].startswith(f"https://{ctx['doc_host']}/")
                assert ctx["user_agent"].startswith("Mozilla/5.0")
                assert ctx["utc_time"].endswith("Z") and "anonymous_id" in ctx["user"]
                assert "ga" in ctx["ids"]
            else:
                assert item.token_id.startswith("s2s.") and event["src"] == "api"
    assert {"pageview", "click", "identify", "purchase"} <= types
    assert any(isinstance(parses(i.body), list) for i in bodies)  # server keys batch


def test_destination_results_have_the_facts_sheets_shapes() -> None:
    traffic = generate(400)
    results = [i for i in traffic.items if isinstance(i, Processed)]  # type: ignore[attr-defined]
    kinds = {d.id: d.kind for d in DESTINATIONS}
    seen = set()
    for r in results:
        assert sum(x is not None for x in (r.success, r.error, r.skip)) == 1
        assert r.original["_timestamp"] and r.original["source_ip"]
        assert r.token_id == r.original["api_key"]
        if r.success is None:
            continue
        seen.add(kinds[r.destination_id])
        assert r.success["destination_id"] == r.destination_id
        if kinds[r.destination_id] == "database":
            assert set(r.success) == {"destination_id", "table", "record"}
            for column in r.success["record"]:
                assert set(column) == {"field", "type", "value"}
            assert "eventn_ctx_url" in {c["field"] for c in r.success["record"]} or (
                r.token_id.startswith("s2s.")
            )
        else:
            assert set(r.success) == {"destination_id", "url", "method", "headers", "body"}
            assert r.success["method"] == "POST" and json.loads(r.success["body"])
    assert seen == {"database", "http"}


def test_error_ratio_sets_the_share_of_failures() -> None:
    for ratio in (0.0, 0.1, 0.4):
        t = generate(3000, error_ratio=ratio, rate=2).tally  # mostly quiet keys: results
        bad = (t.malformed + t.rejected) / t.requests
        assert abs(bad - ratio / 2) < 0.02, (ratio, bad)
        failed = t.result_errors / (t.results - t.result_skips)
        assert abs(failed - ratio) < 0.03, (ratio, failed)
        assert t.result_skips > 0 and t.skipped > 0  # skips whatever the ratio
        if ratio == 0:
            assert t.malformed == t.rejected == t.result_errors == 0


def test_bad_bodies_are_malformed_or_rejected() -> None:
    traffic = generate(2000, error_ratio=0.5)
    items = traffic.items  # type: ignore[attr-defined]
    bodies = [i for i in items if isinstance(i, Incoming) and not i.skip]
    rejected = [i for i in bodies if i.error]
    not_json = [i for i in bodies if not i.error and not isinstance(parses(i.body), dict | list)]
    assert len(rejected) == traffic.tally.rejected and len(not_json) == traffic.tally.malformed
    assert all(isinstance(parses(i.body), dict | list) for i in rejected)
    assert any(i.body.startswith(b"\xff\xfe") for i in not_json)


def test_ids_counts_keys_and_destinations() -> None:
    traffic = Traffic(9, 0.1, random.Random(0))
    assert len(traffic.keys) == 9
    dests = {d.id for k in traffic.keys for d in k.destinations}
    assert len(dests) == 9 and "pg_main_2" in dests
    with pytest.raises(ValueError):
        Traffic(0, 0.1, random.Random(0))
    with pytest.raises(ValueError):
        Traffic(1, 1.5, random.Random(0))


def entries(item: Item) -> tuple[tuple[str, str], int]:
    """The list an item goes to, and how many entries it makes there (an array body
    makes one per element)."""
    if isinstance(item, Processed):
        return ("destination", item.destination_id), 1
    doc = parses(item.body)
    return ("token", item.token_id), len(doc) if isinstance(doc, list) and doc else 1


def through_the_limiter(
    ids: int, rate: float, seconds: float, seed: int
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """The demo's traffic at `rate`, paced as `send` paces it, through the daemon's own
    limiter with the cache's defaults: entries and limited entries per (namespace, id)."""
    traffic = Traffic(ids, 0.1, random.Random(seed), rate)
    limiters = RateLimiters(LIMIT, WINDOW_S)
    total: Counter[tuple[str, str]] = Counter()
    limited: Counter[tuple[str, str]] = Counter()
    while traffic.tally.events < rate * seconds:
        now = traffic.tally.events / rate
        for item in traffic.request(NOW + now):
            key, n = entries(item)
            for _ in range(n):
                total[key] += 1
                limited[key] += not limiters.allow(key, now)
    return total, limited


@pytest.mark.parametrize(("ids", "seed"), [(4, 1), (4, 2), (2, 3), (9, 4)])
def test_at_the_default_rate_only_the_busy_key_reaches_the_limit(ids: int, seed: int) -> None:
    minutes = 5
    total, limited = through_the_limiter(ids, DEFAULT_RATE, minutes * 60, seed)
    busy = ("token", BUSY_KEY)
    assert {key for key, n in limited.items() if n} == {busy}
    assert limited[busy] / total[busy] > 0.8  # the limit clearly at work on it
    quiet = {key: n / minutes for key, n in total.items() if key != busy}
    assert len(quiet) == 2 * ids - 1  # every other key and every destination is there
    assert max(quiet.values()) < 0.85 * LIMIT, quiet  # with room to spare, not by luck
    assert min(quiet.values()) > 3, quiet  # and each busy enough to watch


def test_the_busy_key_feeds_no_destination_and_the_others_a_few() -> None:
    traffic = Traffic(4, 0.1, random.Random(0))
    busy, *others = traffic.keys
    assert busy.id == BUSY_KEY and busy.destinations == ()
    assert all(2 <= len(k.destinations) <= 3 for k in others)
    assert traffic.rates[0] > 10 * max(traffic.rates[1:])
    assert sum(traffic.rates) == pytest.approx(DEFAULT_RATE)
    assert [k.id for k in Traffic(1, 0.1, random.Random(0)).keys] != [BUSY_KEY]
    slow = Traffic(4, 0.1, random.Random(0), rate=2)  # too slow for a busy key: all under
    assert sum(slow.rates) == pytest.approx(2) and max(slow.rates) * 60 < LIMIT


def test_every_message_fits_the_event_it_is_attached_to() -> None:
    traffic = generate(4000, ids=6, error_ratio=0.5, rate=2)  # half of it from quiet keys
    tables = {d.id: d.table for d in destinations(6)}
    seen: Counter[str] = Counter()
    for item in traffic.items:  # type: ignore[attr-defined]
        if isinstance(item, Incoming):
            doc = parses(item.body)
            events = doc if isinstance(doc, list) else [doc]
            if isinstance(doc, dict | list):
                seen.update(ingest_message_fits(item, events))
        elif item.error:
            seen.update(destination_error_fits(item.error, item.original, tables))
    kinds = {"no event_type", "future", "origin", "bot", "bigint", "duplicate", "text number"}
    kinds |= {"schema"}
    assert kinds <= set(seen), seen  # each kind of message was checked, not vacuously


def test_a_destination_error_needs_what_it_names() -> None:
    """Which errors each event can draw: the choice, not only its text."""
    rng = random.Random(5)
    pg, orders = DESTINATIONS[0], DESTINATIONS[5]
    assert (pg.id, orders.id) == ("pg_main", "mysql_orders")
    refund: dict[str, Any] = {"event_type": "refund", "order_id": "ord_12345", "revenue": -12.5}
    purchase = {**refund, "event_type": "purchase", "revenue": 25.0}
    pageview: dict[str, Any] = {"event_type": "pageview", "eventn_ctx": {"url": "https://x/"}}
    cases: dict[str, tuple[Destination, dict[str, Any]]] = {
        "refund": (orders, refund),
        "purchase": (orders, purchase),
        "pageview": (pg, pageview),
        "pg refund": (pg, refund),
    }
    drawn = {
        name: {failure(dest, event, rng) for _ in range(200)}
        for name, (dest, event) in cases.items()
    }
    assert "Error 1264 (22003): Out of range value for column 'revenue' at row 1" in drawn["refund"]
    assert "Error 1062 (23000): Duplicate entry 'ord_12345' for key 'PRIMARY'" in drawn["refund"]
    assert not any("Out of range" in e for e in drawn["purchase"])
    assert not any("bigint" in e for e in drawn["pageview"])
    # the replica's address varies, the message does not: 3 addresses, 1 duplicate key
    assert len(drawn["pageview"]) == 4 and any("connection refused" in e for e in drawn["pageview"])
    assert 'pq: invalid input syntax for type bigint: "-12.5"' in drawn["pg refund"]
    text_price: dict[str, Any] = {"event_type": "add_to_cart", "product": {"price": "6.90"}}
    assert {failure(pg, text_price, rng) for _ in range(200)} >= {
        'pq: column "product_price" is of type numeric but expression is of type text'
    }
    bq = DESTINATIONS[3]
    assert not any("Field" in failure(bq, pageview, rng) for _ in range(100))
    assert any("Field revenue has changed type from INTEGER to FLOAT" in e
               for e in (failure(bq, refund, rng) for _ in range(100)))  # fmt: skip


def test_errors_repeat_with_varying_values() -> None:
    """What the error signatures group: the same message, different values."""
    traffic = generate(4000, ids=6, error_ratio=0.5, rate=2)
    errors = {i.error for i in traffic.items if isinstance(i, Processed) and i.error}  # type: ignore[attr-defined]
    refused = {e for e in errors if e.endswith(":5432: connect: connection refused")}
    columns = {m[1] for e in errors if (m := re.match(r'pq: column "(\w+)" is of type', e))}
    memory = {e for e in errors if e.startswith("code: 241, message: Memory limit")}
    assert len(refused) > 1 and len(columns) > 1 and len(memory) > 1, errors


def test_destinations_skip_what_they_do_not_take() -> None:
    crm, amplitude, orders = DESTINATIONS[2], DESTINATIONS[4], DESTINATIONS[5]
    assert crm.skip("pageview") == orders.skip("pageview") == DESTINATION_SKIPS[0]
    assert crm.skip("signup") is None and orders.skip("refund") is None
    assert (
        amplitude.skip("scroll_depth") == "event_type scroll_depth is not sent to this destination"
    )
    assert amplitude.skip("pageview") is None


def ingest_message_fits(item: Incoming, events: list[Any]) -> list[str]:
    """Check an incoming body against its error or skip; the kinds of message seen."""
    agents = {e.get("eventn_ctx", {}).get("user_agent") for e in events}
    assert (item.skip == BOT_SKIP) == (agents == {BOT_AGENT}), item
    typed = {"event_type" in e for e in events}
    assert typed == {item.error != "event has no event_type"}, item
    if item.skip == BOT_SKIP:
        return ["bot"]
    if item.error == "event has no event_type":
        return ["no event_type"]
    if item.error and (
        m := re.fullmatch(r"event utc_time (\S+) is (\d) days in the future", item.error)
    ):
        times = {e.get("eventn_ctx", e)["utc_time"] for e in events}
        ahead = datetime.fromisoformat(m[1]).timestamp() - NOW
        assert times == {m[1]} and int(m[2]) * DAY_S <= ahead < (int(m[2]) + 1) * DAY_S, item
        return ["future"]
    if item.error and (
        m := re.fullmatch(r"origin (https://\S+) is not allowed for this API key", item.error)
    ):
        assert item.token_id.startswith("js.")  # a server key has no origin to refuse
        assert all(e["eventn_ctx"]["url"].startswith(m[1] + "/") for e in events)
        return ["origin"]
    assert item.error is None, item.error
    return []


def destination_error_fits(
    error: str, original: dict[str, Any], tables: dict[str, str]
) -> list[str]:
    """Check a destination's error against the event; the kinds of message seen."""
    if m := re.search(r'invalid input syntax for type bigint: "(.+)"', error):
        assert m[1] == json.dumps(original["revenue"])
        return ["bigint"]
    if m := re.search(r"Duplicate entry '(.+)' for key", error):
        assert m[1] == original["order_id"]
        return ["duplicate"]
    if "Out of range value for column 'revenue'" in error:
        assert original["revenue"] < 0
        return ["out of range"]
    if m := re.search(r"Table default\.(\w+) doesn't exist", error):
        assert m[1] in tables.values()
    if m := re.fullmatch(
        r'pq: column "(\w+)" is of type (\w+) but expression is of type text', error
    ):
        row = flatten(original)
        assert isinstance(row[m[1]], str) and float(row[m[1]]) >= 0, (error, row[m[1]])
        return ["text number"]
    if m := re.search(r"Field (\w+) has changed type from INTEGER to FLOAT", error):
        value = flatten(original)[m[1]]
        assert isinstance(value, float) and not value.is_integer(), (error, value)
        return ["schema"]
    return []


# ----------------------------------------------------------------- the command


def run_demo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.e2e
def test_demo_feeds_a_daemon_and_the_counts_agree(start_daemon: Any) -> None:
    """With the cache's default limit: the busy key is limited, nothing else is."""
    daemon = start_daemon()
    result = run_demo(
        "--socket", daemon.socket_path, "--rate", "60", "--ids", "3", "--error-ratio", "0.2",
        "--duration", "3", "--seed", "7", "--report-every", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("events-cache demo: about 60 events/s for 3 API keys")
    assert lines[1].startswith(f"events-cache demo: {BUSY_KEY} gets about 3520 events a minute")
    assert len([line for line in lines if "| sidecar: sent " in line]) >= 2
    summary = next(line for line in lines if line.startswith("sidecar: "))
    m = re.fullmatch(r"sidecar: (\d+) entries sent, accepted (\d+), rate limited (\d+), "
                     r"invalid 0, dropped 0", summary)  # fmt: skip
    assert m, summary
    sent, accepted, rate_limited = map(int, m.groups())
    assert accepted + rate_limited == sent and rate_limited > 0
    daemon.wait_drained()
    received = sum(  # both namespaces, whatever the label's name
        value
        for name, value in daemon.metrics().items()
        if name.startswith("events_cache_received_total{")
    )
    assert received == sent
    # what the generator made of its first 150 events: the demo sent at least those
    expected = Traffic(3, 0.2, random.Random(7), 60)
    first: list[Item] = []
    while expected.tally.events < 150:
        first += expected.request(NOW)
    dest_ids = {i.destination_id for i in first if isinstance(i, Processed)}

    def summaries(namespace: str) -> dict[str, dict[str, Any]]:
        rows = daemon.api("/api/v1/events/ids", {"namespace": namespace}).json["ids"]
        return {row["id"]: row for row in rows}

    seconds_until(lambda: summaries("token")[BUSY_KEY]["last_minute_limited"], 10)
    token, dest = summaries("token"), summaries("destination")
    assert {i.token_id for i in first if isinstance(i, Incoming)} <= set(token)
    assert set(token) <= {k.id for k in expected.keys} and BUSY_KEY in token
    assert dest_ids <= set(dest) <= {d.id for d in DESTINATIONS}
    limited = {id_ for id_, row in (token | dest).items() if row["last_minute_limited"]}
    assert limited == {BUSY_KEY}
    assert any(row["error_events"] for row in dest.values())
    errors = daemon.query(namespace="token", status="error", limit=1000)["events"]
    assert any("malformed" in e for e in errors)
    assert daemon.metric("events_cache_malformed_total") > 0


def demo_event_id(original: dict[str, Any]) -> str:
    """The id of a demo event, as a destination's entry carries it."""
    ctx = original.get("eventn_ctx")
    found = ctx["event_id"] if isinstance(ctx, dict) else original["eventn_ctx_event_id"]
    assert isinstance(found, str) and found
    return found


@pytest.mark.e2e
def test_a_demo_events_journey_joins_the_key_and_its_destinations(start_daemon: Any) -> None:
    """Every destination entry the demo sent names an event the API key received: its
    journey shows the key's entry and that destination's outcome; some show several
    destinations, each with what it made of the event."""
    daemon = start_daemon()
    result = run_demo(
        "--socket", daemon.socket_path, "--rate", "6", "--ids", "4", "--error-ratio", "0.3",
        "--duration", "5", "--seed", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    daemon.wait_drained()
    dest_ids = [
        row["id"]
        for row in daemon.api("/api/v1/events/ids", {"namespace": "destination"}).json["ids"]
    ]
    journeys: dict[str, dict[str, Any]] = {}
    for dest_id in dest_ids:
        for entry in daemon.query(namespace="destination", ids=dest_id, limit=100)["events"]:
            event_id = demo_event_id(entry["original"])
            if event_id not in journeys:
                reply = daemon.api("/api/v1/events/journey", {"event_id": event_id})
                assert reply.status == 200, (event_id, reply.raw)
                journeys[event_id] = reply.json
            journey = journeys[event_id]
            assert [e["token_id"] for e in journey["received"]] == [entry["token_id"]]
            assert journey["received"][0]["original"]["api_key"] == entry["token_id"]
            status = (
                "error" if entry.get("error") else "success" if entry.get("success") else "skip"
            )
            assert {"destination_id": dest_id, "status": status} in [
                {k: d[k] for k in ("destination_id", "status")} for d in journey["destinations"]
            ]
    assert len(journeys) >= 4, journeys.keys()
    statuses = [{d["status"] for d in j["destinations"]} for j in journeys.values()]
    assert any(len(s) >= 2 for s in statuses), statuses  # several destinations, differing
    assert set().union(*statuses) == {"success", "error", "skip"}, statuses


@pytest.mark.e2e
def test_demo_over_tcp_stops_on_sigterm_with_its_summary(start_daemon: Any) -> None:
    daemon = start_daemon()
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "demo", "--url", f"http://127.0.0.1:{daemon.ingest_port}",
         "--report-every", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().startswith("events-cache demo: about 20 events/s")
    assert f"{BUSY_KEY} gets about 1096 events a minute" in process.stdout.readline()
    assert "| sidecar: sent " in process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "events-cache demo:" in out and "\nsidecar: " in out and "Traceback" not in err


def test_a_missing_sidecar_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing.sock")
    result = run_demo("--socket", missing)
    assert result.returncode == 1
    assert f"no sidecar at unix:{missing}: No such file or directory" in result.stderr
    assert "make run" in result.stderr and "Traceback" not in result.stderr
    started = time.monotonic()
    result = run_demo("--url", "http://127.0.0.1:9", "--wait", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no sidecar at http://127.0.0.1:9: Connection refused" in result.stderr
    assert "waiting up to 1 s" in result.stdout and time.monotonic() - started >= 1


def test_bad_arguments_are_refused_by_the_parser() -> None:
    for args in (["--error-ratio", "2"], ["--rate", "0"], ["--ids", "x"]):
        result = run_demo(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, args
    result = run_demo("--socket", "a", "--url", "http://127.0.0.1:1")
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_without_the_client_the_demo_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "events_cache_client", None)
    args = argparse.Namespace(socket="/nowhere.sock", url=None)
    assert demo.demo_command(args) == 1
    err = capsys.readouterr().err
    assert "demo extra" in err and "pip install '.[demo]' ./clients/python" in err
