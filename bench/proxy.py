"""P6: the tee proxy in front of an upstream, against calling the upstream directly.

The upstream is `bench/bare.py` (aiohttp on uvloop answering 202 to one-event posts, the
stand-in for the ingest container). The daemon's proxy forwards to it over loopback TCP
and tees each body into the cache: 1,000 API keys in the path, the rule
`path:/v1/token/{token}/events`, every event cached (`size` 100 is not reached in a run).
`wrk -t1` loads the proxy, the upstream itself, and for reference the simplest aiohttp
proxy (`bench/bare_proxy.py`), in rotating rounds of the same run:

- added latency: 1 connection, one request at a time; p50 and p99 through the proxy
  minus the same percentile of calling the upstream directly, per round, median;
- CPU per request: 16 connections; CPU seconds of the daemon's process (the forward, the
  tee and its Redis writes) per request, against the upstream's own CPU per request.

No targets: the issue asks for the figures. The notes give the reference proxy's.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench import events as ev
from bench.procs import Bare, Daemon, ReadyProcess
from bench.scenarios import CONNECTIONS, Row, Settings, _wrk
from tests.support.procstat import cpu_s
from tests.support.servers import RedisServer, free_port

TOKEN_RULE = "path:/v1/token/{token}/events"
IDLE_RULE = "header:X-Bench-Absent"  # never found: the proxy forwards, the tee does nothing
Runs = dict[str, list[dict[str, Any]]]


class BareProxy(ReadyProcess):
    """The reference proxy as a process of its own."""

    what = "bare proxy"

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.port = free_port()
        self.upstream = f"http://127.0.0.1:{upstream_port}"

    def start(self) -> None:
        self._launch("bench.bare_proxy", "--port", str(self.port), "--upstream", self.upstream)


def _run(
    s: Settings, port: int, wrk_file: Path, connections: int, pids: dict[str, int]
) -> dict[str, Any]:
    """One wrk run against `port`; CPU per request of each process in `pids`."""
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    result = _wrk(s, port, str(wrk_file), s.seconds, connections)
    wall = time.perf_counter() - started
    requests = max(result["requests"], 1)
    for name, pid in pids.items():
        used = cpu_s(pid) - before[name]
        result[f"{name}_cpu_us"] = used / requests * 1e6
        result[f"{name}_busy"] = used / wall
    return result


def _daemon(
    s: Settings, server: RedisServer, name: str, upstream_port: int, rule: str
) -> tuple[Daemon, int]:
    """A daemon whose proxy forwards to `upstream_port`, and the proxy's port."""
    port = free_port()
    proxy = {
        "listen": f"127.0.0.1:{port}",
        "upstream": f"http://127.0.0.1:{upstream_port}",
        "token_from": [rule],
    }
    return Daemon(s.workdir / name, server.url, {"sidecar": {"proxy": proxy}}), port


def p6(s: Settings, server: RedisServer) -> list[Row]:
    """Added latency (p50, p99) and CPU per request of the tee proxy."""
    server.client().flushall()
    bare = Bare(s.workdir / "bare-P6")
    bare.start()
    reference = BareProxy(bare.port)
    daemon, port = _daemon(s, server, "daemon-P6", bare.port, TOKEN_RULE)
    # The same proxy whose rule finds no key: the forward alone, the tee idle.
    idle, idle_port = _daemon(s, server, "daemon-P6-idle", bare.port, IDLE_RULE)
    try:
        for process in (reference, daemon, idle):
            process.start()
        wrk_file = s.workdir / "p6.wrk"
        bodies = ev.token_bodies(1000, ev.token_ids(1000))
        wrk_file.write_bytes(
            b"".join(f"/v1/token/{t}/events\t".encode() + b + b"\n" for t, b in bodies)
        )
        subjects = {
            "proxy": (port, {"daemon": daemon.pid, "upstream": bare.pid}),
            "direct": (bare.port, {"upstream": bare.pid}),
            "reference": (reference.port, {"reference": reference.pid, "upstream": bare.pid}),
            "idle": (idle_port, {"idle": idle.pid, "upstream": bare.pid}),
        }
        runs = {c: _rotate(s, subjects, wrk_file, c) for c in (1, CONNECTIONS)}
        metrics = daemon.metrics()
    finally:
        for stop in (daemon.stop, idle.stop, reference.stop, bare.stop):
            stop()
    return [*_latency_rows(runs[1]), _cpu_row(runs[CONNECTIONS], metrics)]


def _rotate(
    s: Settings, subjects: dict[str, tuple[int, dict[str, int]]], wrk_file: Path, connections: int
) -> Runs:
    """Each subject once per round, the order rotated so that each sees the machine alike."""
    runs: Runs = {name: [] for name in subjects}
    names = list(subjects)
    for n in range(s.rounds):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            target, pids = subjects[name]
            runs[name].append(_run(s, target, wrk_file, connections, pids))
    return runs


def _med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _added(runs: Runs, name: str, key: str) -> list[float]:
    return [a[key] - b[key] for a, b in zip(runs[name], runs["direct"], strict=True)]


def _latency_rows(runs: Runs) -> list[Row]:
    rows = []
    for pct in ("p50", "p99"):
        key = f"{pct}_ms"
        added = _added(runs, "proxy", key)
        row = Row(
            f"P6 tee proxy, 1 connection: added latency {pct}",
            statistics.median(added),
            _med(runs["direct"], key),
            "ms",
            "-",
            None,
            spread=f"{min(added):.2f}-{max(added):.2f}" if len(added) > 1 else "",
        )
        row.notes.append(
            f"{pct} through the proxy {_med(runs['proxy'], key):.3f} ms, calling the upstream "
            f"directly {_med(runs['direct'], key):.3f} ms (baseline column); added by the proxy "
            f"with its tee idle {statistics.median(_added(runs, 'idle', key)):.3f} ms, by the "
            f"reference aiohttp proxy {statistics.median(_added(runs, 'reference', key)):.3f} ms;"
            " wrk -t1 -c1"
        )
        rows.append(row)
    return rows


P6_TARGET = 3.0  # the daemon's CPU per proxied, cached request / the upstream's per request


def _cpu_row(runs: Runs, metrics: dict[str, float]) -> Row:
    proxied, direct, reference = runs["proxy"], runs["direct"], runs["reference"]
    cpu, upstream = _med(proxied, "daemon_cpu_us"), _med(direct, "upstream_cpu_us")
    ratios = [
        a["daemon_cpu_us"] / b["upstream_cpu_us"] for a, b in zip(proxied, direct, strict=True)
    ]
    teed = metrics.get('events_cache_proxy_tee_total{outcome="teed"}', 0.0)
    cached = metrics.get('events_cache_cached_total{cache_namespace="token",collection="all"}', 0.0)
    ratio = statistics.median(ratios)
    row = Row(
        f"P6 tee proxy, {CONNECTIONS} connections: CPU per request",
        cpu,
        upstream,
        "us",
        f"<= {P6_TARGET}",
        ratio <= P6_TARGET,
        ratio=ratio,
        spread=f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "",
    )

    def rate(runs: list[dict[str, Any]]) -> str:
        return f"{_med(runs, 'rps'):,.0f} req/s, p50/p99 {_med(runs, 'p50_ms'):.2f}/" + (
            f"{_med(runs, 'p99_ms'):.2f} ms"
        )

    row.notes += [
        "the daemon's CPU per proxied request (forward, tee, its Redis writes) against the "
        "upstream's CPU per request called directly (baseline); ratio = daemon/upstream; "
        f"the same proxy with its tee idle (no key found) {_med(runs['idle'], 'idle_cpu_us'):.0f}"
        f" us, the reference aiohttp proxy {_med(reference, 'reference_cpu_us'):.0f} us; "
        f"wrk -t1 -c{CONNECTIONS}",
        f"through the proxy {rate(proxied)}; directly {rate(direct)}; through the reference "
        f"proxy {rate(reference)}; busy: daemon {_med(proxied, 'daemon_busy'):.0%}, upstream "
        f"behind it {_med(proxied, 'upstream_busy'):.0%}",
        f"{teed:,.0f} requests teed over the whole run, {cached:,.0f} events cached",
    ]
    return row
