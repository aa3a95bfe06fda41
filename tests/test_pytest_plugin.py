"""The Python client's pytest plugin (`events_cache` fixture) used as a user would: a small
sample suite, run by pytest in a subprocess against a real daemon whose ingest takes a
capture tag from a header. Its key's bucket is spent before the suite runs, so only the
tag gets the test's event cached; one sample test expects an event that never comes and
must fail with what the cache saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SAMPLE = """
import json
import os
import urllib.request

INGEST = os.environ["SAMPLE_INGEST_URL"]


def fire(token, event, headers):
    request = urllib.request.Request(
        f"{INGEST}/v1/token/{token}/events", data=json.dumps(event).encode(), method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def test_a_purchase_is_cached_on_a_busy_key(events_cache):
    fire("busy.key", {"event_type": "purchase", "revenue": 10}, events_cache.headers)
    [item] = events_cache.expect(ids="busy.key", timeout=20)
    assert item["event"]["original"] == {"event_type": "purchase", "revenue": 10}
    assert item["event"]["capture"] == events_cache.tag
    assert len(events_cache.events(ids="busy.key")) == 1
    assert events_cache.reset() == 1
    assert events_cache.events(ids="busy.key") == []


def test_each_test_has_its_own_tag(events_cache):
    fire("busy.key", {"event_type": "other test"}, events_cache.headers)
    [item] = events_cache.expect(ids="busy.key", timeout=20)
    assert item["event"]["original"] == {"event_type": "other test"}


def test_an_event_that_never_comes(events_cache):
    fire("busy.key", {"event_type": "untagged"}, {})  # limited: the bucket is spent
    events_cache.expect(ids="busy.key", timeout=1.5)
"""


def test_a_sample_suite_waits_for_its_tagged_events(start_daemon: Any, tmp_path: Path) -> None:
    config = {
        "server": {"cache": {"events": {"size": 3, "time_window_sec": 3600}}},
        "sidecar": {"capture": {"from": ["header:X-Events-Cache-Capture"]}},
    }
    daemon = start_daemon(config)
    for n in range(5):  # spend the key's bucket: untagged events are limited now
        daemon.post_token("busy.key", json.dumps({"n": n}))
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {
        **os.environ,
        "EVENTS_CACHE_API_URL": f"http://127.0.0.1:{daemon.api_port}",
        "EVENTS_CACHE_ADMIN_TOKEN": daemon.token,
        "SAMPLE_INGEST_URL": f"http://127.0.0.1:{daemon.ingest_port}",
    }
    # As a user runs it: the plugin comes by its entry point, nothing else loaded.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "test_sample.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert "1 failed, 2 passed" in out, out
    assert "FAILED test_sample.py::test_an_event_that_never_comes" in out
    assert "0 of 1 expected event(s) cached in 1.5 s" in out
    assert "rate limited in the last minute" in out
    remaining = daemon.query(namespace="token", ids="busy.key", limit=10)["events"]
    assert [e.get("capture") for e in remaining if "capture" in e] == [
        next(e["capture"] for e in remaining if "capture" in e)
    ]  # the first test's event was reset; the second's stays


def test_without_a_token_the_fixture_says_so(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text("def test_x(events_cache):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "EVENTS_CACHE_ADMIN_TOKEN"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sample.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "no admin token (EVENTS_CACHE_ADMIN_TOKEN" in run.stdout
