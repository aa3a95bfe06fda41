"""`events-cache ids | events | tail | journey | activity` against live daemons, as a person
runs them."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from daemon.cli import deepjson
from tests.support.daemon import ADMIN_TOKEN
from tests.support.scrape import settle
from tests.support.servers import free_port, wait_for

pytestmark = pytest.mark.e2e


def cli(
    *args: str, token: str = ADMIN_TOKEN, env_file: str = "", **kw: Any
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    if token:
        env["EVENTS_CACHE_ADMIN_TOKEN"] = token
    if env_file:
        env["EVENTS_CACHE_ADMIN_TOKEN_FILE"] = env_file
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args], capture_output=True, text=True, env=env, **kw
    )


@pytest.fixture
def daemon(start_daemon: Any) -> Any:
    d = start_daemon({"server": {"cache": {"events": {"time_window_sec": 3600}}}})
    d.post_token("shop", json.dumps({"event_type": "pageview"}))
    d.post_token("shop", "not json {")
    d.post_token("blog", json.dumps({"event_type": "click"}))
    d.post_ndjson(
        [
            {
                "namespace": "destination",
                "id": "pg",
                "original": {"event_type": "x"},
                "error": "no table",
            },
            {
                "namespace": "destination",
                "id": "pg",
                "original": {"event_type": "y"},
                "success": {},
            },
        ]
    )
    settle(d)
    return d


def url(daemon: Any) -> str:
    return f"http://127.0.0.1:{daemon.api_port}"


def test_ids_as_a_table_and_as_json(daemon: Any) -> None:
    table = cli("ids", "--url", url(daemon), "--output", "table")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "ID",
        "EVENTS",
        "ERRORS",
        "LIMITED/MIN",
        "LAST",
        "EVENT",
        "LAST",
        "ERROR",
    ]
    assert [row.split()[0] for row in rows] == ["blog", "shop"]
    assert rows[1].split()[1:3] == ["2", "1"] and "invalid JSON" in rows[1]
    piped = cli("ids", "--url", url(daemon))  # not a terminal: JSON
    assert [r["id"] for r in json.loads(piped.stdout)["ids"]] == ["blog", "shop"]


def test_events_with_filters_as_a_table_json_and_ndjson(daemon: Any) -> None:
    table = cli("events", "--url", url(daemon), "--output", "table", "--ids", "shop")
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["TIME", "ID", "STATUS"]
    assert [row.split()[1:3] for row in rows] == [["shop", "malformed"], ["shop", "success"]]
    assert rows[1].split()[-1] == "pageview"
    assert "2 shown of 2 cached" in table.stderr
    errors = cli("events", "--url", url(daemon), "--namespace", "destination", "--status", "error")
    assert [e["error"] for e in json.loads(errors.stdout)["events"]] == ["no table"]
    found = cli(
        "events", "--url", url(daemon), "--output", "ndjson", "--q", "CLICK", "--since", "5m"
    )
    assert [json.loads(line)["token_id"] for line in found.stdout.splitlines()] == ["blog"]
    none = cli("events", "--url", url(daemon), "--output", "ndjson", "--until", "1h")
    assert none.returncode == 0 and none.stdout == ""


def test_tail_follows_events_from_another_daemon(daemon: Any, start_daemon: Any) -> None:
    other = start_daemon()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    env["EVENTS_CACHE_ADMIN_TOKEN"] = ADMIN_TOKEN
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daemon",
            "tail",
            "--url",
            url(daemon),
            "--output",
            "table",
            "--ids",
            "live",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as tail:
        try:
            assert tail.stdout is not None
            assert tail.stdout.readline().split()[:3] == ["TIME", "ID", "STATUS"]
            deadline = time.monotonic() + 10
            line = ""
            while time.monotonic() < deadline and "signup" not in line:
                other.post_token("live", json.dumps({"event_type": "signup"}))
                line = _readline(tail, 0.5)
            assert line.split()[1:4] == ["live", "success", "signup"], line
        finally:
            tail.terminate()


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if selector.select(timeout):
            return process.stdout.readline()
    return ""


def test_clear_errors_for_a_wrong_url_a_wrong_token_and_no_token(daemon: Any) -> None:
    gone = cli("ids", "--url", f"http://127.0.0.1:{free_port()}")
    assert gone.returncode == 1 and "cannot reach the events-cache API" in gone.stderr
    refused = cli("events", "--url", url(daemon), token="wrong")
    assert refused.returncode == 1 and "refused the admin token" in refused.stderr
    missing = cli("tail", "--url", url(daemon), token="")
    assert (
        missing.returncode == 1
        and "no admin token: set EVENTS_CACHE_ADMIN_TOKEN, or pass --token-file" in missing.stderr
    )
    bad_time = cli("events", "--url", url(daemon), "--since", "yesterday")
    assert bad_time.returncode == 1 and "--since must be RFC 3339" in bad_time.stderr
    for result in (gone, refused, missing, bad_time):
        assert "Traceback" not in result.stderr


def test_the_token_from_a_file(daemon: Any, tmp_path: Any) -> None:
    """--token-file, or EVENTS_CACHE_ADMIN_TOKEN_FILE (the daemon's own variable), as
    `make run` keeps its token; --help says where the token comes from."""
    path = tmp_path / "admin-token"
    path.write_text(ADMIN_TOKEN + "\n")
    by_option = cli("ids", "--url", url(daemon), "--token-file", str(path), token="")
    assert by_option.returncode == 0, by_option.stderr
    assert [r["id"] for r in json.loads(by_option.stdout)["ids"]] == ["blog", "shop"]
    by_env = cli("ids", "--url", url(daemon), token="", env_file=str(path))
    assert by_env.returncode == 0, by_env.stderr
    # The file wins over the variable, as in the daemon.
    both = cli("ids", "--url", url(daemon), token="wrong", env_file=str(path))
    assert both.returncode == 0, both.stderr
    unreadable = cli("ids", "--url", url(daemon), "--token-file", str(tmp_path / "none"))
    assert unreadable.returncode == 1
    assert f"cannot read the admin token from {tmp_path / 'none'}" in unreadable.stderr
    (tmp_path / "empty").write_text("\n")
    empty = cli("ids", "--url", url(daemon), "--token-file", str(tmp_path / "empty"))
    assert empty.returncode == 1 and "holds no admin token" in empty.stderr
    for command in ("ids", "events", "tail"):
        usage = cli(command, "--help").stdout
        assert "--token-file PATH" in usage and "EVENTS_CACHE_ADMIN_TOKEN_FILE" in usage
        assert ".run/admin-token" in usage


def test_the_limit_is_per_id_and_the_footer_says_so(daemon: Any) -> None:
    table = cli("events", "--url", url(daemon), "--output", "table", "--limit", "1")
    assert table.returncode == 0, table.stderr
    assert len(table.stdout.splitlines()) == 3  # the header, one event of each id
    assert "2 shown of 3 cached, from 2 ids, at most 1 per id (--limit)" in table.stderr


def test_the_cli_pointed_at_the_ingest_listener_says_so(daemon: Any) -> None:
    wrong = cli("ids", "--url", f"http://127.0.0.1:{daemon.ingest_port}")
    assert wrong.returncode == 1
    assert "ingest listener" in wrong.stderr and "sidecar.api.listen" in wrong.stderr


def test_redis_down_is_reported_as_such(start_daemon: Any, spawn_redis: Any) -> None:
    server = spawn_redis()
    daemon = start_daemon(url=server.url)
    server.kill()
    result = cli("ids", "--url", url(daemon))
    assert result.returncode == 1 and "503" in result.stderr and "Redis" in result.stderr


@pytest.mark.parametrize("depth", [300, 1023])
def test_the_cli_prints_an_event_at_any_depth_the_daemon_stores(daemon: Any, depth: int) -> None:
    """300 levels: past what orjson writes (254); 1,023 (the most the ingest reads): inside
    the answer, past what orjson reads (1,024)."""
    body = '{"event_type": "deep", "n": ' + '{"n": ' * (depth - 2) + "1" + "}" * (depth - 2) + "}"
    assert daemon.post_token("deep", body).status == 202
    settle(daemon)
    for output in ("json", "ndjson", "table"):
        shown = cli("events", "--url", url(daemon), "--ids", "deep", "--output", output)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr[-500:]
        assert "deep" in shown.stdout
    doc = deepjson.loads(cli("events", "--url", url(daemon), "--ids", "deep").stdout)
    nested, levels = doc["events"][0]["original"], 1
    while isinstance(nested, dict) and "n" in nested:
        nested, levels = nested["n"], levels + 1
    assert levels == depth


def _tail(url_: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    env["EVENTS_CACHE_ADMIN_TOKEN"] = ADMIN_TOKEN
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "tail", "--url", url_, "--output", "ndjson", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _lines(tail: subprocess.Popen[str]) -> queue.Queue[str]:
    """What the tail prints, line by line, read in a thread (a backfill comes in one
    chunk: select() on the pipe would not see the lines already buffered)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert tail.stdout is not None
        for line in tail.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _shown(lines: queue.Queue[str], count: int) -> list[Any]:
    """The next `count` events the tail prints (each within 10 s)."""
    return [json.loads(lines.get(timeout=10))["event"] for _ in range(count)]


def test_tail_last_and_since_print_cached_events_oldest_first_then_follow(daemon: Any) -> None:
    with _tail(url(daemon), "--last", "2") as tail:
        try:
            lines = _lines(tail)
            shown = _shown(lines, 2)
            assert [e.get("malformed") or e["original"] for e in shown] == [
                "not json {",
                {"event_type": "click"},
            ]
            daemon.post_token("shop", json.dumps({"event_type": "buy"}))
            assert _shown(lines, 1)[0]["original"] == {"event_type": "buy"}
        finally:
            tail.terminate()
    with _tail(url(daemon), "--since", "10m", "--ids", "shop") as tail:
        try:
            shown = _shown(_lines(tail), 3)
            assert [e.get("malformed") or e["original"]["event_type"] for e in shown] == [
                "pageview",
                "not json {",
                "buy",
            ]
        finally:
            tail.terminate()


def test_tail_reconnects_after_its_daemon_restarts_and_misses_nothing(
    start_daemon: Any, start_daemon_process: Any
) -> None:
    """The daemon it follows stops while another pod caches events; once it is back,
    the tail resumes from the last event it printed (Last-Event-ID): each event once."""
    other = start_daemon()
    followed = start_daemon_process()
    with _tail(f"http://127.0.0.1:{followed.api_port}", "--ids", "r") as tail:
        try:
            lines = _lines(tail)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and lines.empty():
                followed.post_token("r", json.dumps({"n": -1}))  # until it is live
                time.sleep(0.2)
            followed.post_token("r", json.dumps({"n": 0}))
            while _shown(lines, 1)[0]["original"]["n"] != 0:
                pass
            assert followed.stop() == 0
            for n in (1, 2, 3):
                other.post_token("r", json.dumps({"n": n}))
            settle(other)
            followed.start()
            assert [e["original"]["n"] for e in _shown(lines, 3)] == [1, 2, 3]
            followed.post_token("r", json.dumps({"n": 4}))
            assert [e["original"]["n"] for e in _shown(lines, 1)] == [4]
        finally:
            tail.terminate()
        assert tail.stderr is not None
        assert "reconnecting" in tail.stderr.read()


def test_journey_as_a_table_json_and_ndjson_and_an_unknown_id(start_daemon: Any) -> None:
    first, second = start_daemon(), start_daemon()
    event = {"event_type": "purchase", "eventn_ctx": {"event_id": "buy-1"}}
    first.post_token("shop", json.dumps(event))
    second.post_ndjson(
        [
            {"namespace": "destination", "id": "pg", "original": event, "success": {}},
            {"namespace": "destination", "id": "bq", "original": event, "error": "no table"},
        ]
    )
    settle(first)
    settle(second)
    table = cli("journey", "buy-1", "--url", url(first), "--output", "table")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["TIME", "ID", "STATUS"]
    assert [row.split()[1:3] for row in rows] == [
        ["shop", "received"],
        ["bq", "error"],
        ["pg", "success"],
    ]
    assert "received 1 time(s) by the API key, 2 destination outcome(s)" in table.stderr
    piped = json.loads(cli("journey", "buy-1", "--url", url(second)).stdout)  # not a terminal
    assert piped["event_id"] == "buy-1"
    assert [(d["destination_id"], d["status"]) for d in piped["destinations"]] == [
        ("bq", "error"),
        ("pg", "success"),
    ]
    lines = cli("journey", "buy-1", "--url", url(first), "--output", "ndjson").stdout
    kinds = [json.loads(line)["namespace"] for line in lines.splitlines()]
    assert kinds == ["token", "destination", "destination"]
    unknown = cli("journey", "nope", "--url", url(first))
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "answered 404: no cached entry carries event id 'nope'" in unknown.stderr
    assert "is --url the API listener" not in unknown.stderr


def test_activity_as_a_table_with_sparklines_json_and_ndjson(daemon: Any) -> None:
    """shop: a pageview and a malformed body (cached in both lists); blog: a click."""
    expected = {"shop": [2, 2, 1, 0], "blog": [1, 1, 0, 0]}

    def counted() -> dict[str, Any] | None:
        shown = cli("activity", "--url", url(daemon), "--minutes", "5")  # piped: JSON
        doc: dict[str, Any] = json.loads(shown.stdout)
        kinds = ("received", "cached", "errors", "rate_limited")
        sums = {row["id"]: [sum(row[k]) for k in kinds] for row in doc["ids"]}
        return doc if sums == expected else None

    doc = wait_for(counted, timeout=20)
    assert len(doc["minutes"]) == 5 and doc["namespace"] == "token"
    table = cli("activity", "--url", url(daemon), "--ids", "shop", "--output", "table")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:5] == ["ID", "RECEIVED", "CACHED", "ERRORS", "LIMITED"]
    *cells, spark = row.split()
    assert cells == ["shop", "2", "2", "1", "0"]
    assert len(spark) == 60 and set(spark) <= set("▁▂▃▄▅▆▇█") and "█" in spark[-2:]
    assert "(1 id(s), " in table.stderr
    lines = cli(
        "activity", "--url", url(daemon), "--output", "ndjson", "--namespace", "destination"
    )
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [(r["id"], sum(r["errors"]), len(r["minutes"])) for r in rows] == [("pg", 1, 60)]
    bad = cli("activity", "--url", url(daemon), "--minutes", "61")
    assert bad.returncode == 1 and "400" in bad.stderr and "minutes" in bad.stderr, bad.stderr
