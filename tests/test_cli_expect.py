"""`events-cache expect` as a test suite runs it: a subprocess, judged by its exit status
(0 matched, 1 timed out with a summary, 2 any other error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.support.daemon import ADMIN_TOKEN
from tests.support.scrape import settle
from tests.support.servers import free_port, wait_for

pytestmark = pytest.mark.e2e


def expect(*args: str, token: str = ADMIN_TOKEN) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    if token:
        env["EVENTS_CACHE_ADMIN_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "expect", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_exit_0_prints_what_matched_on_another_pod(start_daemon: Any) -> None:
    first, second = start_daemon(), start_daemon()
    url = f"http://127.0.0.1:{first.api_port}"
    waiting = expect("--url", url, "--ids", "ci-run", "--timeout", "30s", "--output", "ndjson")
    wait_for(lambda: first.metric("events_cache_waits") == 1, what="the wait open")
    second.post_token("ci-run", json.dumps({"event_type": "signup"}))
    status, out, err = finish(waiting)
    assert status == 0, err
    (line,) = out.splitlines()
    item = json.loads(line)
    assert (item["id"], item["event"]["original"]["event_type"]) == ("ci-run", "signup")


def test_exit_1_on_timeout_says_what_the_cache_holds_and_what_was_limited(
    start_daemon: Any,
) -> None:
    daemon = start_daemon({"server": {"cache": {"events": {"size": 2, "time_window_sec": 3600}}}})
    for n in range(5):  # 2 cached, 3 rate limited
        daemon.post_token("busy", json.dumps({"n": n}))
    settle(daemon)
    wait_for(lambda: daemon.query(namespace="token", ids="busy", limit=0)["last_minute_limited"])
    url = f"http://127.0.0.1:{daemon.api_port}"
    status, out, err = finish(expect("--url", url, "--ids", "busy", "--timeout", "1s"))
    assert status == 1, err
    assert json.loads(out) == {"matched": False, "events": []}
    assert "timed out after 1s: 0 of 1 matched" in err
    assert "holds 2 event(s) of ids busy" in err
    assert "3 were rate limited in the last minute" in err


def test_exit_2_on_any_other_error(start_daemon: Any) -> None:
    daemon = start_daemon({"sidecar": {"api": {"max_waits": 0}}})
    url = f"http://127.0.0.1:{daemon.api_port}"
    refused_token = finish(expect("--url", url, "--timeout", "1s", token="wrong"))
    assert refused_token[0] == 2 and "refused the admin token" in refused_token[2]
    full = finish(expect("--url", url, "--timeout", "1s"))
    assert full[0] == 2 and "max_waits" in full[2]
    bad_count = finish(expect("--url", url, "--count", "0"))
    assert bad_count[0] == 2 and "count" in bad_count[2]
    nobody = finish(expect("--url", f"http://127.0.0.1:{free_port()}", "--timeout", "1s"))
    assert nobody[0] == 2 and "cannot reach" in nobody[2]
    assert finish(expect("--url", "ftp://x", "--timeout", "1s"))[0] == 2
    assert finish(expect("--url", url, "--timeout", "soon"))[0] == 2
    assert finish(expect("--url", url, "--timeout", "10m"))[0] == 2
    assert finish(expect("--url", url, "--count", "many"))[0] == 2  # argparse's own
