"""C1: what caching an event costs the pod, client and sidecar together, in parses.

The Python client (`clients/python`) in a process of its own (`bench/cost_client.py`)
is fed the ingest's raw bodies vouched for (`incoming(key, body, parsed=True)`, so that
it holds back the events the sidecar would rate limit and sends counts instead): ~1.45
KB Jitsu events over 1,000 API keys drawn Zipf(1.1), 5,000 events/s offered in 10 ms
ticks, into the daemon with its default limits (size 100 a minute per id) over the Unix
socket, on the run's Valkey. After a warm-up at the same rate (60 s; 2 s with --smoke)
come `rounds` windows of 10 s (2 s), and in each the CPU (user + system, from
`/proc/<pid>/stat`) of the client process (its sender thread included) and of the
daemon, per event handed to the client in it. The baseline is one `orjson.loads` of such
an event, in CPU time of this thread before and after the run (the median); the ratio,
parse over client + sidecar, is what an ingest pays for the cache in units of the parse
it does anyway (higher is better).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import orjson

from bench import events as ev
from bench.procs import Daemon
from bench.scenarios import Row, Settings
from tests.support.procstat import cpu_s
from tests.support.scrape import metric_sum
from tests.support.servers import RedisServer

RATE = 5000
KEYS = 1000
ZIPF = 1.1
TARGET = 0.5
_ALL = 'collection="all"'


def parse_times(samples: int = 200, loops: int = 500) -> list[float]:
    """µs of one `orjson.loads` of a ~1.45 KB event: this thread's CPU time over `loops`
    parses of each of `samples` events (CPU time, as the subject's figures)."""
    rng = random.Random(ev.SEED)
    ids = ev.token_ids(KEYS)
    bodies = [orjson.dumps(ev.make_event(rng, ids[n % KEYS])) for n in range(samples)]
    loads = orjson.loads
    clock = time.thread_time_ns
    times = []
    for body in bodies:
        t0 = clock()
        for _ in range(loops):
            loads(body)
        times.append((clock() - t0) / loops / 1000)
    return times


def _shares(after: dict[str, float], before: dict[str, float]) -> str:
    """What the sidecar made of what it received between two scrapes."""

    def grew(name: str, *labels: str) -> float:
        return metric_sum(after, name, *labels) - metric_sum(before, name, *labels)

    received = max(grew("events_cache_received_total"), 1)
    cached = grew("events_cache_cached_total", _ALL)
    limited = grew("events_cache_rate_limited_total", _ALL)
    at_source = grew("events_cache_limited_at_source_total")
    dropped = grew("events_cache_dropped_total")
    return (
        f"the sidecar received {received:,.0f} events in the windows: {cached / received:.1%} "
        f"cached, {limited / received:.1%} rate limited (of all: {at_source / received:.1%} "
        f"limited at the source: held back by the client, sent as counts), "
        f"{dropped / received:.1%} dropped"
    )


def _drive(
    daemon: Daemon, warmup: float, window: float, rounds: int
) -> tuple[list[tuple[float, float]], dict[str, float], dict[str, float], dict[str, Any]]:
    """Run the client; (client, daemon) CPU seconds at each mark, the daemon's /metrics
    at the first and the last mark, and the client's result line."""
    argv = [sys.executable, "-m", "bench.cost_client", "--socket", daemon.socket_path]
    argv += ["--rate", str(RATE), "--keys", str(KEYS), "--zipf", str(ZIPF)]
    argv += ["--warmup", str(warmup), "--window", str(window), "--windows", str(rounds)]
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None
        if client.stdout.readline().strip() != "ready":
            raise RuntimeError("bench.cost_client did not start")
        cpu: list[tuple[float, float]] = []
        first: dict[str, float] = {}
        for _ in range(rounds + 1):
            if client.stdout.readline().strip() != "mark":
                raise RuntimeError("bench.cost_client stopped early")
            cpu.append((cpu_s(client.pid), cpu_s(daemon.pid)))
            if not first:  # its own cost lands in the first window: a few ms
                first = daemon.metrics()
        last = daemon.metrics()
        out, _ = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(5)
    if client.returncode != 0:
        raise RuntimeError(f"bench.cost_client exited with {client.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return cpu, first, last, result


def c1(s: Settings, server: RedisServer, smoke: bool) -> list[Row]:
    """Client + sidecar CPU per event against one parse of it (target >= 0.5)."""
    warmup, window = (2.0, 2.0) if smoke else (60.0, 10.0)
    parses = parse_times()  # before and after the run: the median of both
    server.client().flushall()
    load_start = os.getloadavg()[0]
    daemon = Daemon(s.workdir / "daemon-C1", server.url, {})
    daemon.start()
    try:
        cpu, first, last, result = _drive(daemon, warmup, window, s.rounds)
    finally:
        daemon.stop()
    parses += parse_times()
    parse = statistics.median(parses)
    windows = result["windows"]
    spans = list(zip(itertools.pairwise(cpu), windows, strict=True))
    client_us = [(b[0] - a[0]) * 1e6 / max(w["offered"], 1) for (a, b), w in spans]
    daemon_us = [(b[1] - a[1]) * 1e6 / max(w["offered"], 1) for (a, b), w in spans]
    totals = [c + d for c, d in zip(client_us, daemon_us, strict=True)]
    ratios = [parse / t for t in totals]
    achieved = sum(w["offered"] for w in windows) / sum(w["seconds"] for w in windows)
    ratio = statistics.median(ratios)
    stats = result["stats"]
    behind = result["behind"]
    pace = f"achieved {achieved:,.0f} events/s of {RATE:,} offered"
    if achieved < 0.98 * RATE or behind > RATE * 0.05:
        pace += f": the client FELL BEHIND the offered rate ({behind:,} events behind at the end)"
    rounds_note = ", ".join(f"{c:.1f} + {d:.1f}" for c, d in zip(client_us, daemon_us, strict=True))
    return [
        Row(
            f"C1 client + sidecar, {RATE:,} events/s, {KEYS:,} ids: CPU per event",
            statistics.median(totals),
            parse,
            "us",
            f">= {TARGET}",
            ratio >= TARGET,
            ratio=ratio,
            spread=f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "",
            notes=[
                "ratio = one orjson.loads of a ~1.45 KB event (median of 400 x 500, thread "
                "CPU time in this process, before and after) / CPU (user + system, "
                "/proc/<pid>/stat) per event of the client process (bench/cost_client.py: "
                "Client.incoming(key, body, parsed=True), sender thread included) + the "
                f"daemon (default limits, Unix socket); {KEYS:,} ids Zipf({ZIPF}), {RATE:,} "
                f"events/s offered in 10 ms ticks, {warmup:g} s warm-up, then {s.rounds} x "
                f"{window:g} s",
                f"client {statistics.median(client_us):.1f} us + sidecar "
                f"{statistics.median(daemon_us):.1f} us per event (median; per window: "
                f"{rounds_note}); {pace}",
                _shares(last, first) + f"; client over the whole run: {stats['sent']:,} sent, "
                f"{stats['held_back']:,} held back, {stats['dropped']:,} dropped, "
                f"{stats['requests']:,} requests",
                f"load average {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at "
                "the end (2 shared cores: CPU per event is the figure to trust)",
            ],
        )
    ]
