"""The three ingest clients (clients/python, clients/go, clients/node) against the real
daemon: each client's own test suite with its live test, delivery with counts that the
daemon's metrics and query API confirm, 413 splitting, the sidecar killed and restarted
mid-stream, close() flushing, raw bodies split as the raw endpoint splits them, and the
wire constants the clients hard-code checked against daemon/core/wire.py.

Then every behaviour of the clients' contract (clients/README.md), step by step against
a daemon configured to provoke it: batching, the client's and the daemon's size limits,
invalid lines, the daemon's rate limit and its own queue drops, rejections, the sidecar
away, restarted or hung, a full buffer, close(). The clients' own suites keep only what
needs no server (line building, configuration, calls that never raise).

Each client is driven by its `drive` program (the same command line in the three
languages): either a run of calls printing one JSON line, or (`--commands`) one JSON
command a line on stdin, each answered with the client's counters, so that a test can
change the daemon between two steps. Python's AsyncClient is driven as a flavour of its
own. A language is skipped only when its toolchain is missing (`go`, `node`); CI
installs both.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from daemon.config.render import defaults
from daemon.core import wire
from daemon.web.ingest import LIMIT_BYTES, LIMIT_EVENTS
from tests.support.daemon import DaemonClient, DaemonProcess, deep_update
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


def roomy(extra: Mapping[str, Any]) -> dict[str, Any]:
    """ROOMY with `extra` merged in."""
    return deep_update(copy.deepcopy(ROOMY), extra)


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


def drive_command(request: pytest.FixtureRequest, flavour: str) -> list[str]:
    """The command that runs a drive program: python, asyncio (Python's AsyncClient,
    --commands only), go or node."""
    if flavour == "python":
        return [sys.executable, str(CLIENTS / "python" / "tools" / "drive.py")]
    if flavour == "asyncio":
        return [sys.executable, str(CLIENTS / "python" / "tools" / "drive.py"), "--asyncio"]
    if flavour == "go":
        return [request.getfixturevalue("go_build")["drive"]]
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs)")
    return ["node", str(CLIENTS / "node" / "tools" / "drive.js")]


@pytest.fixture(params=LANGUAGES)
def drive(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs the language's drive program."""
    return drive_command(request, request.param)


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


def ingest_requests(daemon: Any, status: int | None = None) -> float:
    """Requests the daemon's ingest listener answered (with `status`)."""
    where = [f'status="{status}"'] if status else []
    return metric_sum(
        daemon.metrics(),
        "events_cache_http_request_duration_seconds_count",
        'listener="ingest"',
        *where,
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
        done = ["passed"]
        # This checkout's client, whichever one the venv installed (a shared venv's
        # editable install may point at another checkout).
        source = str(CLIENTS / "python" / "src")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    elif language == "go":
        env = {**request.getfixturevalue("go_build")["env"], **env}
        argv = ["go", "test", "-count=1", "-v", "./..."]
        done = ["--- PASS: TestLiveDelivery", "--- PASS: TestLiveConcurrentCalls"]
    else:
        tests = sorted(str(p.name) for p in (CLIENTS / "node" / "test").glob("*.test.js"))
        argv = ["node", "--test", *(f"test/{t}" for t in tests)]
        done = ["# fail 0"]
    out = subprocess.run(
        argv, cwd=CLIENTS / language, env=env, capture_output=True, text=True, timeout=300
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-5000:]
    assert all(marker in text for marker in done), text[-3000:]
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
    """Both namespaces through the loopback URL instead of the socket."""
    daemon = start_daemon(ROOMY)
    url = f"http://127.0.0.1:{daemon.ingest_port}"
    result = run_drive(
        drive, "--url", url, "--events", "2000", "--kind", "mixed", "--buffer-events", "4000"
    )
    assert (result["stats"]["accepted"], result["stats"]["dropped"]) == (2000, 0)
    settle(daemon)
    assert received(daemon) == 2000
    token = daemon.query(namespace="token", limit=0)
    destination = daemon.query(namespace="destination", limit=0)
    assert (token["total_events"], destination["total_events"]) == (1000, 1000)


@pytest.mark.parametrize("drive", ["python", "go"], indirect=True)
def test_concurrent_calls(drive: list[str], start_daemon: Any) -> None:
    """Calls from 8 threads (Python) or goroutines (Go) at once: nothing lost or doubled."""
    daemon = start_daemon(ROOMY)
    result = run_drive(
        drive,
        "--socket",
        daemon.socket_path,
        "--events",
        "8000",
        "--ids",
        "8",
        "--body-bytes",
        "200",
        "--concurrency",
        "8",
        "--buffer-events",
        "100000",
    )
    stats = result["stats"]
    assert (stats["sent"], stats["accepted"], stats["dropped"]) == (8000, 8000, 0), stats
    settle(daemon)
    assert received(daemon) == 8000
    assert daemon.query(namespace="token", limit=0)["total_events"] == 8000


# -- batches and the daemon's max_request_bytes ----------------------------------------


def test_batches_fit_the_limit_and_a_413_splits_them(drive: list[str], start_daemon: Any) -> None:
    """With the client's limit at the daemon's, no request is refused; with the client's
    limit above it, the daemon's 413s are answered by splitting, and nothing is lost."""
    limit = 64 * 1024
    daemon = start_daemon({**ROOMY, "sidecar": {"ingest": {"max_request_bytes": limit}}})
    common = ["--socket", daemon.socket_path, "--events", "2000", "--buffer-events", "4000"]
    kept = run_drive(drive, *common, "--max-request-bytes", str(limit))
    assert (kept["stats"]["accepted"], kept["stats"]["too_large"]) == (2000, 0)
    assert ingest_requests(daemon, 413) == 0
    split = run_drive(drive, *common, "--max-request-bytes", str(1 << 20))
    stats = split["stats"]
    assert stats["too_large"] > 0, stats
    assert (stats["accepted"], stats["dropped"]) == (2000, 0), stats
    assert ingest_requests(daemon, 413) == stats["too_large"]
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


# -- step by step (--commands): every behaviour of the contract ------------------------

FLAVOURS = ("python", "asyncio", "go", "node")
BODY = json.dumps({"event_type": "pageview", "pad": "x" * 900})  # a line of about 1 KB
BIG = json.dumps({"big": "x" * 20_000})  # over any request a 10,000-byte daemon takes
IN_THE_CALLERS_THREAD = ("asyncio", "node")  # the sender only runs when the caller yields


class Driven:
    """A drive program in --commands mode: `driven(op, **fields)` sends one command and
    returns its answer; `stats()` and `wait(predicate)` read the client's counters."""

    def __init__(self, argv: list[str], stderr: Path) -> None:
        self.stderr_path = stderr
        with stderr.open("w") as err:
            self.process = subprocess.Popen(
                [*argv, "--commands"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self._answers: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._answers.put(line)
        self._answers.put("")  # the program has ended

    def __call__(self, op: str, answer_within: float = 30, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        try:
            line = self._answers.get(timeout=answer_within)
        except queue.Empty:
            raise AssertionError(f"{op}: no answer within {answer_within}s{self.tail()}") from None
        assert line, f"{op}: the drive program ended{self.tail()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self("stats")["stats"]
        return stats

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5) -> float:
        """Poll the counters until `predicate` holds; the seconds it took."""
        started = time.monotonic()
        wait_for(lambda: predicate(self.stats()), timeout=timeout, interval=0.005)
        return time.monotonic() - started

    def tail(self) -> str:
        return "\n" + self.stderr_path.read_text(errors="replace")[-3000:]

    def end(self) -> None:
        """Close stdin: the program exits (killed when it does not within 10 s)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(params=FLAVOURS)
def steps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Driven]]:
    """steps(*flags) starts the flavour's drive program in --commands mode with the
    client's flags (--socket or --url, limits...); ended at teardown."""
    yield from driven_steps(request, tmp_path)


def driven_steps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Driven]]:
    """The `steps` fixtures' body, for the flavour `request.param`."""
    argv = drive_command(request, request.param)
    started: list[Driven] = []

    def start(*flags: str) -> Driven:
        driven = Driven([*argv, *flags], tmp_path / f"drive-{len(started)}.stderr")
        started.append(driven)
        return driven

    yield start
    for driven in started:
        driven.end()


def flavour(request: pytest.FixtureRequest) -> str:
    name: str = request.node.callspec.params["steps"]
    return name


def agree(daemon: DaemonClient, stats: dict[str, Any]) -> None:
    """The client's counters and the daemon's metrics agree on every event this client
    sent (a daemon of the test's own): received, rate limited, dropped for a full queue,
    invalid, requests answered, 413s; the events held back (limits at the source) are
    received and rate limited too."""
    settle(daemon)
    m = daemon.metrics()
    held = stats.get("held_back", 0)
    daemon_side = {
        "received": metric_sum(m, "events_cache_received_total"),
        "rate_limited": metric_sum(m, "events_cache_rate_limited_total", 'collection="all"'),
        "held_back": metric_sum(m, "events_cache_limited_at_source_total"),
        "dropped_queue_full": metric_sum(m, "events_cache_dropped_total", 'reason="queue_full"'),
        "invalid": metric_sum(m, "events_cache_invalid_total"),
        "requests": ingest_requests(daemon),
        "too_large": ingest_requests(daemon, 413),
    }
    client_side = {
        "received": stats["accepted"] + stats["rate_limited"] + stats["dropped_queue_full"] + held,
        "rate_limited": stats["rate_limited"] + held,
        "held_back": held,
        **{k: stats[k] for k in daemon_side if k not in ("received", "rate_limited", "held_back")},
    }
    assert client_side == daemon_side, stats
    assert stats["sent"] == client_side["received"] - held + stats["invalid"], stats


def cached(daemon: DaemonClient, id_: str, namespace: str = "token") -> int:
    """The entries the query API holds for an id."""
    settle(daemon)
    total: int = daemon.query(namespace=namespace, ids=id_, limit=0)["total_events"]
    return total


def test_batches_go_within_the_flush_interval(
    steps: Callable[..., Driven], start_daemon: Any, request: pytest.FixtureRequest
) -> None:
    """300 events leave without flush() in batches of at most max_batch_events (10 here):
    the daemon refuses any body of 11 such lines (whatever each client's few bytes of
    line overhead, 60 to 120), and refuses none. One event alone leaves once the
    interval (100 ms) has passed, not after more events."""
    batch = 10
    limit = batch * (len(BODY) + 120) + batch - 1
    assert (batch + 1) * (len(BODY) + 60) + batch > limit
    daemon = start_daemon(roomy({"sidecar": {"ingest": {"max_request_bytes": limit}}}))
    client = steps("--socket", daemon.socket_path, "--batch-events", str(batch))
    burst = client("incoming", id="batch", body=BODY, count=300)["stats"]
    if flavour(request) in IN_THE_CALLERS_THREAD:  # nothing is built or sent inside a call
        assert (burst["buffered"], burst["requests"]) == (300, 0), burst
    client.wait(lambda s: s["accepted"] == 300)
    client("incoming", id="batch", body=BODY)
    assert client.wait(lambda s: s["accepted"] == 301) < 1.0
    done = client("close")
    stats = done["stats"]
    assert done["flushed"] is True
    assert (stats["sent"], stats["dropped"], stats["buffered"]) == (301, 0, 0), stats
    assert stats["too_large"] == 0 and stats["requests"] >= 31, stats
    agree(daemon, stats)
    assert ingest_requests(daemon, 202) == stats["requests"]
    assert cached(daemon, "batch") == 301


def test_a_413_splits_the_batch_and_lowers_the_clients_limit(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """The daemon refuses bodies over 10,000 bytes, the client's limit is 1 MiB: refused
    batches are split in halves until they pass, an event refused alone is dropped as
    oversized, and later batches are built under the refused size at once."""
    daemon = start_daemon(roomy({"sidecar": {"ingest": {"max_request_bytes": 10_000}}}))
    client = steps("--socket", daemon.socket_path)
    client("incoming", id="split", body=BODY, count=400)
    client("incoming", id="split", body=BIG)
    first = client("flush")
    stats = first["stats"]
    assert first["flushed"] is True
    assert (stats["accepted"], stats["dropped_oversized"], stats["dropped"]) == (400, 1, 1), stats
    assert stats["too_large"] >= 2, stats  # a batch split, and the big event refused alone
    assert any(
        e.startswith("event of ") and "exceeds sidecar.ingest.max_request_bytes" in e
        for e in stats["last_errors"]
    ), stats
    assert ingest_requests(daemon, 413) == stats["too_large"]
    assert stats["request_limit_bytes"] <= 10_000, stats  # lowered for good
    assert stats["request_limit_events"] == 500, stats  # a 413 for bytes leaves the count
    client("incoming", id="split", body=BODY, count=400)
    stats = client("close")["stats"]
    assert (stats["accepted"], stats["dropped"]) == (800, 1), stats
    assert stats["too_large"] == first["stats"]["too_large"], stats  # no 413 any more
    agree(daemon, stats)
    assert cached(daemon, "split") == 800


def test_a_413_for_events_splits_by_count_and_keeps_the_byte_limit(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """The daemon takes 5 events a request and 1 MiB, the client batches 500: a batch of
    23 is refused once ("limit": "events") and sent again in pieces of 5 (the bound the
    413's message names), all cached; the client's byte limit is where it was, and later
    batches go 5 at a time without another 413."""
    daemon = start_daemon(roomy({"sidecar": {"ingest": {"max_events_per_request": 5}}}))
    client = steps("--socket", daemon.socket_path, "--flush-ms", "60000")
    client("incoming", id="count", body=BODY, count=23)
    first = client("flush")
    stats = first["stats"]
    assert first["flushed"] is True
    assert (stats["accepted"], stats["dropped"], stats["buffered"]) == (23, 0, 0), stats
    assert (stats["too_large"], stats["requests"]) == (1, 6), stats  # 23, then 5+5+5+5+3
    assert (stats["request_limit_bytes"], stats["request_limit_events"]) == (1 << 20, 5), stats
    assert cached(daemon, "count") == 23
    client("incoming", id="count", body=BODY, count=23)
    stats = client("close")["stats"]
    assert (stats["accepted"], stats["dropped"]) == (46, 0), stats
    assert (stats["too_large"], stats["requests"]) == (1, 11), stats
    assert (stats["request_limit_bytes"], stats["request_limit_events"]) == (1 << 20, 5), stats
    agree(daemon, stats)
    assert (
        daemon.metric("events_cache_rejected_total", listener="ingest", reason="too_many_events")
        == 1
    )
    assert daemon.metric("events_cache_rejected_total", listener="ingest", reason="too_large") == 0
    assert cached(daemon, "count") == 46


def test_max_batch_events_bounds_the_lines_of_raw_arrays(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """A raw array body is sent as a line per element: with max_batch_events at the
    daemon's max_events_per_request (5), two arrays of 12 leave in requests of at most
    5 lines from the start, and none is refused."""
    daemon = start_daemon(roomy({"sidecar": {"ingest": {"max_events_per_request": 5}}}))
    client = steps("--socket", daemon.socket_path, "--batch-events", "5", "--flush-ms", "60000")
    client("incoming", id="array", body=json.dumps([{"n": n} for n in range(12)]), count=2)
    stats = client("close")["stats"]
    assert (stats["sent"], stats["accepted"], stats["dropped"]) == (24, 24, 0), stats
    assert (stats["too_large"], stats["requests"]) == (0, 5), stats  # 5+5+5+5+4
    assert stats["request_limit_events"] == 5, stats
    agree(daemon, stats)
    assert cached(daemon, "array") == 24


def test_vouched_bodies_are_cached_as_the_objects_they_hold(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """Raw bodies vouched for as JSON (parsed): a pretty-printed object (CRLF and LF
    newlines, indentation, whitespace around it) is cached once, its original the parsed
    object; an array is still split into an entry per element (one that is not an object
    a malformed entry)."""
    daemon = start_daemon(ROOMY)
    client = steps("--socket", daemon.socket_path)
    event = {"event_type": "pageview", "nested": {"a": [1, 2], "s": "x\ny"}, "n": None}
    pretty = json.dumps(event, indent=2).replace("\n", "\r\n", 2)
    client("incoming", id="vouched-object", body=f"\n  {pretty}\n\n", parsed=True)
    elements = [{"n": 0}, 2, {"n": 1}]
    client("incoming", id="vouched-array", body=json.dumps(elements, indent=2), parsed=True)
    stats = client("close")["stats"]
    assert (stats["sent"], stats["accepted"], stats["invalid"], stats["dropped"]) == (4, 4, 0, 0)
    agree(daemon, stats)
    [cached_object] = daemon.query(namespace="token", ids="vouched-object", limit=10)["events"]
    assert cached_object["original"] == event, cached_object
    entries = _entries(daemon, "vouched-array")
    assert [e.get("original") for e in entries] == [{"n": 0}, None, {"n": 1}], entries
    assert entries[1]["malformed"] == "2", entries


@pytest.mark.parametrize("steps", ["python", "asyncio", "go", "node"], indirect=True)
def test_a_broken_promise_costs_its_own_line_only(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """A body vouched for as JSON that is not (a raw newline in it) is sent unchecked, on
    one line: the daemon counts that line invalid and takes the others of the batch; the
    same body not vouched for is cached as malformed. (Python and its asyncio flavour
    still check a vouched body until their own change lands.)"""
    daemon = start_daemon(ROOMY)
    client = steps("--socket", daemon.socket_path, "--flush-ms", "60000")
    client("incoming", id="promise", body='{"ok": 1}', parsed=True)
    client("incoming", id="promise", body='{"broken": \n  "x"', parsed=True)
    client("incoming", id="promise", body='{"broken": \n  "x"')
    client("incoming", id="promise", body='{"ok": 2}', parsed=True)
    stats = client("close")["stats"]
    assert (stats["sent"], stats["accepted"], stats["invalid"], stats["dropped"]) == (4, 3, 1, 0)
    assert stats["requests"] == 1, stats
    [error] = stats["last_errors"]
    assert error.startswith("invalid line: "), error
    assert '"original":{"broken":    "x"' in error, error
    agree(daemon, stats)
    entries = _entries(daemon, "promise")
    assert [e.get("original") or e.get("malformed") for e in entries] == [
        {"ok": 1},
        '{"broken": \n  "x"',
        {"ok": 2},
    ], entries


def test_an_event_over_the_clients_own_limit_is_dropped_as_oversized(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """With max_request_bytes at 1,000 the client drops a 1 KB event itself: the daemon
    never sees it."""
    daemon = start_daemon(ROOMY)
    client = steps("--socket", daemon.socket_path, "--max-request-bytes", "1000")
    client("incoming", id="own-limit", body=BODY)
    client("incoming", id="own-limit", body="{}")
    stats = client("close")["stats"]
    assert (stats["accepted"], stats["dropped_oversized"], stats["dropped"]) == (1, 1, 1), stats
    assert re.match(
        r"event of \d+ bytes dropped: over max_?request_?bytes \(1000\)",
        stats["last_errors"][-1],
        re.IGNORECASE,
    ), stats
    agree(daemon, stats)
    assert ingest_requests(daemon, 413) == 0
    assert cached(daemon, "own-limit") == 1


def test_invalid_lines_are_counted_with_their_text(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """Lines the daemon rejects (an empty id, a lone surrogate, a destination entry with
    two outcomes) are counted as invalid, each with the daemon's message and the
    beginning of the line."""
    daemon = start_daemon(ROOMY)
    client = steps("--socket", daemon.socket_path)
    client("incoming", id="invalid", body="{}")
    client("incoming", id="", body='{"n": 2}')
    client("incoming", id="invalid", body='{"s": "\\ud800"}')
    client("processed", id="dest", original='{"n": 4}', success={"t": 1}, error="and an error")
    stats = client("close")["stats"]
    assert (stats["sent"], stats["accepted"], stats["invalid"], stats["dropped"]) == (
        4,
        1,
        3,
        0,
    ), stats
    errors = stats["last_errors"]
    assert len(errors) == 3, errors
    assert all(e.startswith("invalid line: ") for e in errors), errors
    empty_id = next(e for e in errors if '"id":""' in e)
    assert empty_id.startswith('invalid line: "id" must be a non-empty string: {'), errors
    assert any("\\ud800" in e for e in errors), errors
    two = next(e for e in errors if '"id":"dest"' in e)
    assert 'needs exactly one of "success", "error" or "skip"' in two, errors
    agree(daemon, stats)
    assert cached(daemon, "invalid") == 1


def test_the_daemons_rate_limit_is_counted(steps: Callable[..., Driven], start_daemon: Any) -> None:
    """server.cache.events.size 5 an hour: of 12 events of one id, 5 are cached and 7
    rate limited; the client's counts are the daemon's."""
    daemon = start_daemon(
        roomy({"server": {"cache": {"events": {"size": 5, "time_window_sec": 3600}}}})
    )
    client = steps("--socket", daemon.socket_path)
    client("incoming", id="limited", body="{}", count=12)
    stats = client("close")["stats"]
    assert (stats["sent"], stats["accepted"], stats["rate_limited"]) == (12, 5, 7), stats
    agree(daemon, stats)
    assert cached(daemon, "limited") == 5


def test_a_tagged_call_beats_the_daemons_rate_limit(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """capture= on a call (incoming and processed): of the 5 events an hour an id may
    cache, all are spent, yet the tagged events are cached, carrying their tag."""
    daemon = start_daemon(
        roomy({"server": {"cache": {"events": {"size": 5, "time_window_sec": 3600}}}})
    )
    client = steps("--socket", daemon.socket_path)
    client("incoming", id="busy", body="{}", count=5)
    client("incoming", id="busy", body='[{"a": 1}, {"a": 2}]', capture="run-7", count=1)
    client("incoming", id="busy", body="{}", count=2)
    success = {"ok": True}
    client("processed", id="pg-busy", original="{}", success=success, count=5)
    client("processed", id="pg-busy", original="{}", success=success, capture="run-7")
    stats = client("close")["stats"]
    assert (stats["accepted"], stats["rate_limited"]) == (13, 2), stats
    agree(daemon, stats)
    tagged = daemon.query(namespace="token", ids="busy", capture="run-7")["events"]
    assert [e["original"] for e in tagged] == [{"a": 2}, {"a": 1}]
    assert all(e["capture"] == "run-7" for e in tagged)
    [result_entry] = daemon.query(ids="pg-busy", capture="run-7")["events"]
    assert result_entry["success"] == {"ok": True}
    assert daemon.metric("events_cache_captured_total", cache_namespace="token") == 2
    assert daemon.metric("events_cache_captured_total", cache_namespace="destination") == 1


@pytest.mark.fault
def test_the_daemons_own_queue_drops_are_counted(
    steps: Callable[..., Driven], start_daemon: Any, spawn_redis: Any
) -> None:
    """A paused Redis and a queue of 10: the daemon takes what its queue holds and drops
    the rest, and its 202 says how many; the client counts them as dropped_queue_full,
    exactly as the daemon's metrics do."""
    redis = spawn_redis()
    daemon = start_daemon(
        roomy(
            {"sidecar": {"ingest": {"queue_size": 10}}, "server": {"cache": {"pool": {"size": 1}}}},
        ),
        url=redis.url,
    )
    client = steps("--socket", daemon.socket_path)
    redis.pause()
    try:
        client("incoming", id="queue", body="{}", count=200)
        stats = client("close")["stats"]
        assert stats["dropped_queue_full"] >= 180, stats  # 10 queued, a few taken by the writer
        assert stats["sent"] == stats["accepted"] + stats["dropped_queue_full"] == 200, stats
        m = daemon.metrics()
        assert metric_sum(m, "events_cache_received_total") == 200
        queue_full = metric_sum(m, "events_cache_dropped_total", 'reason="queue_full"')
        assert queue_full == stats["dropped_queue_full"]
    finally:
        redis.resume()
    agree(daemon, stats)


def test_other_answers_are_rejections(steps: Callable[..., Driven], start_daemon: Any) -> None:
    """server.cache.enabled false: the ingest answers 503, the batch is counted as
    rejected with the daemon's message."""
    daemon = start_daemon(roomy({"server": {"cache": {"enabled": False}}}))
    client = steps("--socket", daemon.socket_path)
    client("incoming", id="rejected", body="{}", count=3)
    stats = client("close")["stats"]
    assert (stats["sent"], stats["dropped_rejected"], stats["dropped"]) == (0, 3, 3), stats
    message = "sidecar answered 503: the events cache is disabled (server.cache.enabled)"
    assert stats["last_errors"] and set(stats["last_errors"]) == {message}, stats
    assert ingest_requests(daemon, 503) == ingest_requests(daemon) == stats["requests"] >= 1
    assert received(daemon) == 0


def test_the_sidecar_away_costs_nothing_and_delivery_resumes(
    steps: Callable[..., Driven], start_daemon: Any, tmp_path: Path
) -> None:
    """No daemon on the socket: 2,000 calls cost the application nothing and are counted
    as unavailable; once a daemon listens there, delivery resumes by itself."""
    socket = str(tmp_path / "later.sock")
    client = steps("--socket", socket, "--max-backoff", "0.2")
    burst = client("incoming", id="away", body=BODY, count=2000)
    assert burst["max_call_ns"] < 50e6, burst  # never waits on the network
    away = client("flush", timeout=5)
    stats = away["stats"]
    assert away["flushed"] is True
    assert (stats["dropped_unavailable"], stats["dropped"]) == (2000, 2000), stats
    assert stats["last_errors"][0].startswith(f"sidecar unavailable (unix:{socket}): "), stats
    daemon = start_daemon(roomy({"sidecar": {"ingest": {"socket": socket}}}))
    calls = 2000

    def resumed() -> bool:
        nonlocal calls
        calls += 1
        accepted: int = client("incoming", id="away", body="{}")["stats"]["accepted"]
        time.sleep(0.01)
        return accepted > 0

    wait_for(resumed, timeout=5, what="delivery resumes")
    stats = client("close")["stats"]
    assert stats["accepted"] > 0
    assert stats["accepted"] + stats["dropped_unavailable"] == calls, stats
    assert stats["dropped"] == stats["dropped_unavailable"], stats
    agree(daemon, stats)
    assert cached(daemon, "away") == stats["accepted"]


@pytest.mark.parametrize("transport", ["socket", "url"])
def test_a_restarted_sidecar_is_reached_on_a_fresh_connection(
    steps: Callable[..., Driven], start_daemon: Any, transport: str
) -> None:
    """The daemon restarted between two batches: the kept-alive connection is dead, the
    batch goes on a fresh one without a drop. Stopped for good: the batch is counted as
    unavailable, with where the sidecar was."""
    first = start_daemon(ROOMY)
    url = f"http://127.0.0.1:{first.ingest_port}"
    client = steps(*(["--socket", first.socket_path] if transport == "socket" else ["--url", url]))
    client("incoming", id="restart", body="{}")
    assert client("flush")["stats"]["accepted"] == 1
    first.stop()
    # The same address again, and only the one the client uses: the daemon's other
    # listener gets a fresh port, which another test cannot have taken meanwhile.
    address = "socket" if transport == "socket" else "listen"
    again = {address: first.socket_path if transport == "socket" else url.removeprefix("http://")}
    second = start_daemon(roomy({"sidecar": {"ingest": again}}))
    client("incoming", id="restart", body="{}")
    stats = client("flush")["stats"]
    assert (stats["accepted"], stats["dropped"]) == (2, 0), stats
    assert cached(second, "restart") == 2  # the same Redis
    assert received(second) == 1
    second.stop()
    client("incoming", id="restart", body="{}")
    stats = client("close")["stats"]
    assert (stats["accepted"], stats["dropped_unavailable"], stats["dropped"]) == (2, 1, 1), stats
    where = f"unix:{first.socket_path}" if transport == "socket" else url
    assert stats["last_errors"][-1].startswith(f"sidecar unavailable ({where}): "), stats


def test_a_full_buffer_drops_and_counts(steps: Callable[..., Driven], start_daemon: Any) -> None:
    """Bounded by events (10) and by bytes (4,500: four 1 KB events): the calls beyond
    are dropped and counted; what was buffered is delivered at close()."""
    daemon = start_daemon(ROOMY)
    by_count = steps("--socket", daemon.socket_path, "--buffer-events", "10", "--flush-ms", "60000")
    full = by_count("incoming", id="full", body="{}", count=25)["stats"]
    assert (full["dropped_buffer_full"], full["buffered"]) == (15, 10), full
    by_bytes = steps(
        "--socket", daemon.socket_path, "--buffer-bytes", "4500", "--flush-ms", "60000"
    )
    full = by_bytes("incoming", id="full-bytes", body=BODY, count=10)["stats"]
    assert (full["dropped_buffer_full"], full["buffered"]) == (6, 4), full
    counted = by_count("close")["stats"]
    sized = by_bytes("close")["stats"]
    assert (counted["accepted"], counted["dropped"]) == (10, 15), counted
    assert (sized["accepted"], sized["dropped"]) == (4, 6), sized
    assert (cached(daemon, "full"), cached(daemon, "full-bytes")) == (10, 4)


def test_close_flushes_and_later_calls_are_counted(
    steps: Callable[..., Driven], start_daemon: Any
) -> None:
    """With a 30 s interval nothing leaves before close(), which sends it all; calls
    after close() are counted as dropped_closed; close() twice is fine."""
    daemon = start_daemon(ROOMY)
    client = steps("--socket", daemon.socket_path, "--flush-ms", "30000")
    assert client("incoming", id="close", body="{}", count=50)["stats"]["accepted"] == 0
    done = client("close", timeout=5)
    assert done["flushed"] is True
    assert (done["stats"]["accepted"], done["stats"]["buffered"]) == (50, 0), done
    client("incoming", id="close", body="{}")
    client("processed", id="close", original="{}", success={})
    again = client("close")
    assert again["flushed"] is True
    stats = again["stats"]
    assert (stats["accepted"], stats["dropped_closed"], stats["dropped"]) == (50, 2, 2), stats
    agree(daemon, stats)
    assert cached(daemon, "close") == 50


@pytest.fixture(scope="module")
def hung_daemon(
    redis_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """A daemon process the tests of this module pause (SIGSTOP) and resume: its socket
    accepts connections and nothing answers."""
    daemon = DaemonProcess(tmp_path_factory.mktemp("hung"), redis_backend, ROOMY)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.kill()


def test_close_times_out_when_the_sidecar_hangs(
    steps: Callable[..., Driven], hung_daemon: DaemonProcess
) -> None:
    """The daemon is paused with a request in flight: close(0.3) gives up after 0.3 s
    (the client's request timeout is 1 s) and says so; later calls count as closed."""
    client = steps("--socket", hung_daemon.socket_path, "--timeout", "1")
    hung_daemon.signal(signal.SIGSTOP)
    try:
        client("incoming", id="hang", body="{}")
        done = client("close", timeout=0.3)
        client("incoming", id="hang", body="{}")
        after = client("stats")
    finally:
        hung_daemon.signal(signal.SIGCONT)
    assert done["flushed"] is False, done
    assert done["took_s"] < 1.0, done
    assert after["stats"]["dropped_closed"] >= 1, after


def test_node_never_keeps_the_process_alive_and_sends_at_a_natural_exit(
    start_daemon: Any,
) -> None:
    """A script that buffers one event (60 s interval) and returns: the process ends at
    once, and `beforeExit` has sent the event."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs)")
    daemon = start_daemon(ROOMY)
    index = json.dumps(str(CLIENTS / "node" / "index.js"))
    socket = json.dumps(daemon.socket_path)
    script = f"""
        const {{ Client }} = require({index});
        const c = new Client({{ socket: {socket}, flushIntervalMs: 60000 }});
        c.incoming('exit', '{{"n":1}}');"""
    started = time.monotonic()
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 5
    assert cached(daemon, "exit") == 1


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
    # the 413's "limit" values the clients tell apart
    assert f'LIMIT_BYTES, LIMIT_EVENTS = "{LIMIT_BYTES}", "{LIMIT_EVENTS}"' in sources["python"]
    assert f'limitBytes  = "{LIMIT_BYTES}"' in sources["go"]
    assert f'limitEvents = "{LIMIT_EVENTS}"' in sources["go"]
    assert f"LIMIT_BYTES = '{LIMIT_BYTES}'" in sources["node"]
    assert f"LIMIT_EVENTS = '{LIMIT_EVENTS}'" in sources["node"]
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
