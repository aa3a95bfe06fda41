"""`events-cache demo`: the generator on its own (pure, seeded), and the command feeding a
real daemon through the Python ingest client, with the counts of both sides agreeing."""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import demo
from daemon.cli.demo_data import DESTINATIONS
from daemon.cli.demo_events import Incoming, Processed, Traffic

ROOT = Path(__file__).resolve().parent.parent


def generate(n: int, ids: int = 4, error_ratio: float = 0.1, seed: int = 1) -> Traffic:
    traffic = Traffic(ids, error_ratio, random.Random(seed))
    traffic.items = [item for _ in range(n) for item in traffic.request(1_790_000_000.0)]  # type: ignore[attr-defined]
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
        t = generate(3000, error_ratio=ratio).tally
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
    daemon = start_daemon({"server": {"cache": {"events": {"size": 5000}}}})
    result = run_demo(
        "--socket", daemon.socket_path, "--rate", "60", "--ids", "3", "--error-ratio", "0.2",
        "--duration", "3", "--seed", "7", "--report-every", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("events-cache demo: about 60 events/s for 3 API keys")
    assert len([line for line in lines if "| sidecar: sent " in line]) >= 2
    summary = next(line for line in lines if line.startswith("sidecar: "))
    sent = int(summary.split()[1])
    assert f"accepted {sent}," in summary and "dropped 0" in summary  # nothing limited
    daemon.wait_drained()
    received = sum(  # both namespaces, whatever the label's name
        value
        for name, value in daemon.metrics().items()
        if name.startswith("events_cache_received_total{")
    )
    assert received == sent
    traffic = Traffic(3, 0.2, random.Random(7))
    token_ids = {
        i["id"] for i in daemon.api("/api/v1/events/ids", {"namespace": "token"}).json["ids"]
    }
    assert token_ids == {k.id for k in traffic.keys}
    dest = daemon.api("/api/v1/events/ids", {"namespace": "destination"}).json["ids"]
    assert {i["id"] for i in dest} <= {d.id for d in DESTINATIONS}
    assert any(i["error_events"] for i in dest)
    errors = daemon.query(namespace="token", status="error", limit=1000)["events"]
    assert any("malformed" in e for e in errors)
    assert daemon.metric("events_cache_malformed_total") > 0


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
    assert "pip install ./clients/python" in capsys.readouterr().err
