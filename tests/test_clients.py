"""The three ingest clients (clients/python, clients/go, clients/node) against the real
daemon: each client's own test suite with its live test, delivery with counts that the
daemon's metrics and query API confirm, 413 splitting, the sidecar killed and restarted
mid-stream, close() flushing, raw bodies split as the raw endpoint splits them, and the
wire constants the clients hard-code checked against daemon/core/wire.py.

Each client is driven by its `drive` program (the same command line in the three
languages, printing one JSON line). A language is skipped only when its toolchain is
missing (`go`, `node`); CI installs both.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.config.render import defaults
from daemon.core import wire
from tests.support.scrape import metric_sum, settle
from tests.support.servers import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "clients"
LANGUAGES = ("python", "go", "node")
# No rate limit, no queue drops: every event the clients hand over is cached.
ROOMY = {
    "server": {"cache": {"events": {"size": 100_000}}},
    "sidecar": {"ingest": {"queue_size": 100_000}},
}


def _go_env(base: Path) -> dict[str, str]:
    """Go without network: no module proxy, caches in the test's own directory."""
    return {
        **os.environ,
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOCACHE": str(base / "gocache"),
        "GOPATH": str(base / "gopath"),
        "GOTOOLCHAIN": "local",
    }


@pytest.fixture(scope="session")
def go_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Go toolchain's environment and the built drive program (skip without Go)."""
    if shutil.which("go") is None:
        pytest.skip("Go is not installed (apt-get install golang-go)")
    base = tmp_path_factory.mktemp("go")
    env = _go_env(base)
    binary = base / "drive"
    subprocess.run(
        ["go", "build", "-o", str(binary), "./cmd/drive"],
        cwd=CLIENTS / "go",
        env=env,
        check=True,
        timeout=300,
    )
    return {"env": env, "drive": str(binary)}


@pytest.fixture(params=LANGUAGES)
def drive(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs the language's drive program."""
    language = request.param
    if language == "python":
        return [sys.executable, str(CLIENTS / "python" / "tools" / "drive.py")]
    if language == "go":
        return [request.getfixturevalue("go_build")["drive"]]
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs)")
    return ["node", str(CLIENTS / "node" / "tools" / "drive.js")]


def run_drive(argv: list[str], *args: str, timeout: float = 120) -> dict[str, Any]:
    out = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def account(stats: dict[str, Any]) -> int:
    """Events whose fate the client knows: each is in exactly one of these."""
    return int(stats["accepted"] + stats["rate_limited"] + stats["invalid"] + stats["dropped"])


def received(daemon: Any) -> float:
    return metric_sum(daemon.metrics(), "events_cache_received_total")


def status_count(daemon: Any, status: int) -> float:
    return metric_sum(
        daemon.metrics(),
        "events_cache_http_request_duration_seconds_count",
        'listener="ingest"',
        f'status="{status}"',
    )


# -- each client's own suite, its live test included -----------------------------------


def test_own_suite_with_its_live_test(drive: list[str], start_daemon: Any, request: Any) -> None:
    """pytest / go test / node --test in the client's directory, against a live daemon."""
    language = request.node.callspec.params["drive"]
    daemon = start_daemon()
    env = {
        **os.environ,
        "EVENTS_CACHE_TEST_SOCKET": daemon.socket_path,
        "EVENTS_CACHE_TEST_URL": f"http://127.0.0.1:{daemon.ingest_port}",
    }
    if language == "python":
        argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests"]
        done = "passed"
    elif language == "go":
        env = {**request.getfixturevalue("go_build")["env"], **env}
        argv = ["go", "test", "-count=1", "-v", "./..."]
        done = "--- PASS: TestLiveDelivery"
    else:
        tests = sorted(str(p.name) for p in (CLIENTS / "node" / "test").glob("*.test.js"))
        argv = ["node", "--test", *(f"test/{t}" for t in tests)]
        done = "# fail 0"
    out = subprocess.run(
        argv, cwd=CLIENTS / language, env=env, capture_output=True, text=True, timeout=300
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-5000:]
    assert done in text, text[-3000:]
    assert "SKIP" not in text and "skipped" not in text.replace("# skipped 0", ""), text[-3000:]


# -- delivery and counts ---------------------------------------------------------------


def test_delivers_10000_events_with_agreeing_counts(drive: list[str], start_daemon: Any) -> None:
    """Both namespaces through one client: the client's counters, the daemon's metrics
    and the query API agree on every event."""
    daemon = start_daemon(ROOMY)
    result = run_drive(
        drive,
        "--socket",
        daemon.socket_path,
        "--events",
        "10000",
        "--ids",
        "10",
        "--kind",
        "mixed",
        "--buffer-events",
        "20000",
        "--buffer-bytes",
        str(64 << 20),
    )
    stats = result["stats"]
    assert result["flushed"] is True
    assert (stats["sent"], stats["accepted"], stats["dropped"], stats["invalid"]) == (
        10000,
        10000,
        0,
        0,
    ), stats
    assert stats["buffered"] == 0
    settle(daemon)
    assert received(daemon) == 10000
    assert daemon.metric("events_cache_invalid_total") == 0
    assert metric_sum(daemon.metrics(), "events_cache_cached_total", 'collection="all"') == 10000
    token = daemon.query(namespace="token", limit=0)
    destination = daemon.query(namespace="destination", limit=0)
    # mixed: processed(success), incoming(raw), incoming(value), processed(error) in turn
    assert (token["total_events"], destination["total_events"]) == (5000, 5000)
    errors = daemon.query(namespace="destination", status="error", limit=0)
    assert errors["total_events"] == 2500
    newest = daemon.query(namespace="destination", ids="drive-3", limit=1)["events"][0]
    assert newest["error"] == "destination refused the event"
    assert newest["original"]["event_type"] == "pageview"


def test_http_transport(drive: list[str], start_daemon: Any) -> None:
    daemon = start_daemon(ROOMY)
    url = f"http://127.0.0.1:{daemon.ingest_port}"
    result = run_drive(drive, "--url", url, "--events", "2000", "--buffer-events", "4000")
    assert (result["stats"]["accepted"], result["stats"]["dropped"]) == (2000, 0)
    settle(daemon)
    assert received(daemon) == 2000


# -- batches and the daemon's max_request_bytes ----------------------------------------


def test_batches_fit_the_limit_and_a_413_splits_them(drive: list[str], start_daemon: Any) -> None:
    """With the client's limit at the daemon's, no request is refused; with the client's
    limit above it, the daemon's 413s are answered by splitting, and nothing is lost."""
    limit = 64 * 1024
    daemon = start_daemon({**ROOMY, "sidecar": {"ingest": {"max_request_bytes": limit}}})
    common = ["--socket", daemon.socket_path, "--events", "2000", "--buffer-events", "4000"]
    kept = run_drive(drive, *common, "--max-request-bytes", str(limit))
    assert (kept["stats"]["accepted"], kept["stats"]["too_large"]) == (2000, 0)
    assert status_count(daemon, 413) == 0
    split = run_drive(drive, *common, "--max-request-bytes", str(1 << 20))
    stats = split["stats"]
    assert stats["too_large"] > 0, stats
    assert (stats["accepted"], stats["dropped"]) == (2000, 0), stats
    assert status_count(daemon, 413) == stats["too_large"]
    settle(daemon)
    assert received(daemon) == 4000


# -- the sidecar away ------------------------------------------------------------------


@pytest.mark.fault
def test_sidecar_killed_and_restarted_mid_stream(
    drive: list[str], start_daemon: Any, start_daemon_process: Any
) -> None:
    """SIGKILL the daemon while a client sends 2,000 events/s, start another on the same
    socket: no call blocks, the events meanwhile are counted as dropped, and delivery
    resumes on its own."""
    first = start_daemon_process(ROOMY)
    rate, events = 2000, 12000  # 6 s
    proc = subprocess.Popen(
        [
            *drive,
            "--socket",
            first.socket_path,
            "--events",
            str(events),
            "--rate",
            str(rate),
            "--ids",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: received(first) > 1000, timeout=15)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(5)
        time.sleep(1.0)  # away for a second: calls go on meanwhile
        second = start_daemon(
            {
                **ROOMY,
                "sidecar": {
                    "ingest": {
                        "socket": first.socket_path,
                        "listen": f"127.0.0.1:{first.ingest_port}",
                        "queue_size": 100_000,
                    }
                },
            }
        )
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    stats = result["stats"]
    assert stats["dropped_unavailable"] > 0, stats
    assert stats["dropped_buffer_full"] == 0, stats
    assert result["max_call_ns"] < 250e6, result  # never blocked on the dead sidecar
    assert account(stats) == events, stats
    assert any("sidecar unavailable" in e for e in stats["last_errors"]), stats
    settle(second)
    assert 0 < received(second) <= stats["accepted"]  # delivery resumed on its own


def test_sidecar_absent_from_the_start(drive: list[str], tmp_path: Path) -> None:
    """No sidecar at all: the application runs, every event is counted as unavailable."""
    result = run_drive(
        drive, "--socket", str(tmp_path / "missing.sock"), "--events", "3000", "--rate", "20000"
    )
    stats = result["stats"]
    assert stats["dropped_unavailable"] == 3000, stats
    assert result["max_call_ns"] < 250e6
    assert result["close_s"] < 3


# -- shutdown --------------------------------------------------------------------------


def test_close_flushes(drive: list[str], start_daemon: Any) -> None:
    """Nothing is sent before close() (a long interval, no count trigger): close() sends
    it all before it returns."""
    daemon = start_daemon(ROOMY)
    result = run_drive(
        drive,
        "--socket",
        daemon.socket_path,
        "--events",
        "3000",
        "--flush-ms",
        "600000",
        "--batch-events",
        "100000",
        "--buffer-events",
        "100000",
    )
    assert result["flushed"] is True
    assert (result["stats"]["accepted"], result["stats"]["buffered"]) == (3000, 0)
    settle(daemon)
    assert received(daemon) == 3000


# -- raw bodies: split as the sidecar's raw endpoint splits them -----------------------

BODIES: list[tuple[bytes, dict[str, str]]] = [
    (b'{"event_type": "pageview",\n  "n": 1, "u": "\xc3\xa9\xe6\x97\xa5"}\n', {}),
    (b'[{"a": 1}, 2, "x", null, {"b": [1, {"c": true}]}, [3]]', {}),
    (b"{broken", {}),
    (b"ab\xffcd", {}),
    (b"", {}),
    (b"   ", {}),
    (b'"just a string"', {}),
    (b"null", {}),
    (b"42", {}),
    (b'{"a": NaN}', {}),
    (b'{"a": 1} {"b": 2}', {}),
    (b'{"bot": true}', {"skip": "bot filtered"}),
    (b'{"key": "wrong"}', {"error": "unknown api key"}),
    (b'[{"a": 1}, {"a": 2}]', {"skip": "sampled out"}),
]


def _entries(daemon: Any, id_: str) -> list[dict[str, Any]]:
    """An id's entries, oldest first, without what differs between two posts."""
    events = daemon.query(namespace="token", ids=id_, limit=100)["events"]
    out = []
    for e in reversed(events):
        entry = {k: v for k, v in e.items() if k not in ("timestamp", "uid", "token_id")}
        if str(entry.get("error", "")).startswith("invalid JSON"):
            entry["error"] = "invalid JSON"  # each parser words it in its own way
        out.append(entry)
    return out


def test_raw_bodies_are_split_like_the_raw_endpoint(
    drive: list[str], start_daemon: Any, tmp_path: Path
) -> None:
    daemon = start_daemon(ROOMY)
    lines = []
    for n, (body, marks) in enumerate(BODIES):
        headers = {}
        if "skip" in marks:
            headers[wire.SKIP_HEADER] = marks["skip"]
        if "error" in marks:
            headers[wire.ERROR_HEADER] = marks["error"]
        reply = daemon.post_token(f"raw-{n}", body, headers=headers)
        assert reply.status == 202, reply.raw
        lines.append(
            json.dumps({"id": f"client-{n}", "body": base64.b64encode(body).decode(), **marks})
        )
    bodies = tmp_path / "bodies.ndjson"
    bodies.write_text("\n".join(lines) + "\n")
    result = run_drive(drive, "--socket", daemon.socket_path, "--bodies", str(bodies))
    assert result["stats"]["invalid"] == 0, result["stats"]
    settle(daemon)
    for n, (body, _) in enumerate(BODIES):
        assert _entries(daemon, f"client-{n}") == _entries(daemon, f"raw-{n}"), body


# -- the constants the clients hard-code -----------------------------------------------


def test_clients_agree_with_the_wire_constants_and_defaults() -> None:
    """Path, content type, default socket and limits in each client's source are those of
    daemon/core/wire.py and of the daemon's configuration defaults."""
    config = defaults()
    ingest = config["sidecar"]["ingest"]
    max_request = ingest["max_request_bytes"]
    max_malformed = config["server"]["cache"]["events"]["max_malformed_event_size_bytes"]
    sources = {
        "python": "".join(
            p.read_text() for p in (CLIENTS / "python/src/events_cache_client").glob("*.py")
        ),
        "go": "".join(p.read_text() for p in (CLIENTS / "go").glob("*.go")),
        "node": (CLIENTS / "node/index.js").read_text()
        + (CLIENTS / "node/lib/lines.js").read_text(),
    }
    for language, text in sources.items():
        assert f'"{wire.NDJSON_EVENTS_PATH}"' in text or f"'{wire.NDJSON_EVENTS_PATH}'" in text
        assert wire.NDJSON in text, language
        assert ingest["socket"] in text, language
        assert "EVENTS_CACHE_SOCKET" in text and "EVENTS_CACHE_URL" in text, language
    from events_cache_client import Settings
    from events_cache_client._settings import DEFAULT_SOCKET, EVENTS_PATH, NDJSON

    s = Settings()
    assert (s.max_request_bytes, s.max_malformed_bytes) == (max_request, max_malformed)
    assert (EVENTS_PATH, NDJSON, DEFAULT_SOCKET) == (
        wire.NDJSON_EVENTS_PATH,
        wire.NDJSON,
        ingest["socket"],
    )
    go = sources["go"]
    assert re.search(r"setInt\(&c\.MaxRequestBytes, 1<<20\)", go) and max_request == 1 << 20
    assert f"setInt(&c.MaxMalformedBytes, {max_malformed})" in go
    node = sources["node"]
    assert f"maxRequestBytes: options.maxRequestBytes || {max_request}" in node
    assert f"maxMalformedBytes: options.maxMalformedBytes || {max_malformed}" in node
    # the chart's URL is the daemon's default TCP listener
    assert ingest["listen"] == "127.0.0.1:8001"


@pytest.mark.timeout(300)
def test_bench_clients_smoke() -> None:
    """`python -m bench.clients --smoke` prints a row per client (no timing asserted)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.clients", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    tools = {"python": sys.executable, "go": shutil.which("go"), "node": shutil.which("node")}
    for language in LANGUAGES:
        shown = rf"^\| {language} +\| .* ns \|" if tools[language] else rf"^\| {language} .*not"
        assert re.search(shown, out.stdout, re.M), out.stdout
