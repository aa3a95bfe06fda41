"""`events-cache ids | events | tail` against live daemons, as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.support.daemon import ADMIN_TOKEN
from tests.support.scrape import settle
from tests.support.servers import free_port

pytestmark = pytest.mark.e2e


def cli(*args: str, token: str = ADMIN_TOKEN, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    if token:
        env["EVENTS_CACHE_ADMIN_TOKEN"] = token
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
    assert missing.returncode == 1 and "set EVENTS_CACHE_ADMIN_TOKEN" in missing.stderr
    bad_time = cli("events", "--url", url(daemon), "--since", "yesterday")
    assert bad_time.returncode == 1 and "--since must be RFC 3339" in bad_time.stderr
    for result in (gone, refused, missing, bad_time):
        assert "Traceback" not in result.stderr


def test_redis_down_is_reported_as_such(start_daemon: Any, spawn_redis: Any) -> None:
    server = spawn_redis()
    daemon = start_daemon(url=server.url)
    server.kill()
    result = cli("ids", "--url", url(daemon))
    assert result.returncode == 1 and "503" in result.stderr and "Redis" in result.stderr
