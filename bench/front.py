"""P1cpu, P1bcpu and P1fast: the ingest listener's CPU per request against bare servers.

P1's load (one-event posts for one token, `size` 100: after the first 100 every event is
rate limited, a busy pod's steady state), `wrk -t1` over loopback TCP with 16
connections, against the daemon's ingest port and a baseline server in alternating
rounds of the same run. The figure is server CPU per request (user + system from
`/proc/<pid>/stat` over a round, over the requests wrk completed in it), baseline over
ours so that higher is better. Unlike P1's request rate, which wrk caps when both share
the 2 cores, it shows what each request costs the server:

- P1cpu: `bench/bare.py`, an empty aiohttp handler on uvloop (reads the body, answers 202);
- P1bcpu: the same baseline, with P1b's load (1,000 tokens, `size` 1,000,000: every event
  cached, the write path's figure; Redis's own CPU is not counted);
- P1fast: `bench/bare_fast.py`, a raw httptools protocol that never looks at the body.
"""

from __future__ import annotations

import functools
import statistics
from typing import Any

from bench.procs import Bare, BareFast, Daemon
from bench.scenarios import (
    CONNECTIONS,
    Row,
    Settings,
    _alternate,
    _check_202,
    _closed_loop,
    _measure_p1,
    p1_files,
)
from tests.support.scrape import delta, metric_sum
from tests.support.servers import RedisServer

LIMITED = {"server": {"cache": {"events": {"size": 100}}}}
CACHED = {"server": {"cache": {"events": {"size": 1_000_000}}}}
_LIMITED_ALL, _ALL = "events_cache_rate_limited_total", 'collection="all"'
WARM_UP_REQUESTS = 300  # past the 100 events cached: every later one is rate limited


def p1cpu(s: Settings, server: RedisServer) -> list[Row]:
    """CPU per request, the empty aiohttp handler's over ours (target 2.0)."""
    return [
        _cpu_row(
            s,
            server,
            "P1cpu",
            Bare(s.workdir / "bare-P1cpu"),
            2.0,
            "baseline bench/bare.py: aiohttp, uvloop, reads the body, answers 202",
        )
    ]


def p1bcpu(s: Settings, server: RedisServer) -> list[Row]:
    """CPU per request with every event cached, the empty aiohttp handler's over ours
    (target 1.0): the write path's cost per cached event."""
    return [
        _cpu_row(
            s,
            server,
            "P1bcpu",
            Bare(s.workdir / "bare-P1bcpu"),
            1.0,
            "baseline bench/bare.py: aiohttp, uvloop, reads the body, answers 202",
            ids=1000,
        )
    ]


def p1fast(s: Settings, server: RedisServer) -> list[Row]:
    """CPU per request, the raw httptools protocol's over ours (target 0.5)."""
    return [
        _cpu_row(
            s,
            server,
            "P1fast",
            BareFast(s.workdir / "bare-P1fast"),
            0.5,
            "baseline bench/bare_fast.py: an httptools asyncio protocol, uvloop, answers 202 "
            "without looking at the body",
        )
    ]


def _warm_up(s: Settings, port: int, req_file: str) -> None:
    """A few hundred requests first: the daemon's token is then past its 100 cached events."""
    _closed_loop(s, {"port": port}, req_file, 30, connections=1, max_requests=WARM_UP_REQUESTS)


def _cpu_row(
    s: Settings,
    server: RedisServer,
    name: str,
    bare: Bare,
    minimum: float,
    what: str,
    ids: int = 1,
) -> Row:
    """One id with `size` 100 (every event limited after the warm-up), or `ids` ids with
    a size no load reaches (every event cached)."""
    server.client().flushall()
    files = p1_files(s, name, ids)
    daemon = Daemon(s.workdir / f"daemon-{name}", server.url, LIMITED if ids == 1 else CACHED)
    daemon.start()
    try:
        bare.start()
        try:
            _warm_up(s, daemon.ingest_port, files[0])
            _warm_up(s, bare.port, files[0])
            before = daemon.metrics()
            subjects, baselines = _alternate(
                s.rounds,
                functools.partial(
                    _measure_p1,
                    s,
                    "tcp",
                    files,
                    daemon.pid,
                    daemon.socket_path,
                    daemon.ingest_port,
                ),
                functools.partial(_measure_p1, s, "tcp", files, bare.pid, "", bare.port),
            )
            after = daemon.metrics()
        finally:
            bare.stop()
    finally:
        daemon.stop()
    for r in subjects + baselines:
        _check_202(r, name)
    received = delta(after, before, "events_cache_received_total")
    limited = metric_sum(after, _LIMITED_ALL, _ALL) - metric_sum(before, _LIMITED_ALL, _ALL)

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(x[key] for x in runs)

    ratios = [b["cpu_us"] / a["cpu_us"] for a, b in zip(subjects, baselines, strict=True)]
    rates = [a["rps"] / b["rps"] for a, b in zip(subjects, baselines, strict=True)]
    ratio = statistics.median(ratios)
    cached = metric_sum(after, "events_cache_cached_total", _ALL) - metric_sum(
        before, "events_cache_cached_total", _ALL
    )
    load = "1 id, limited" if ids == 1 else f"{ids} ids, cached"
    return Row(
        f"{name} {load}, tcp: CPU per request",
        med(subjects, "cpu_us"),
        med(baselines, "cpu_us"),
        "us",
        f">= {minimum}",
        ratio >= minimum,
        ratio=ratio,
        spread=f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "",
        notes=[
            f"ratio = baseline/ours, server CPU (user + system, /proc/<pid>/stat) per "
            f"request; {what}; wrk -t1, {CONNECTIONS} connections, {s.rounds} x "
            f"{s.seconds:g} s each; {limited / max(received, 1):.1%} of the events rate "
            f"limited, {cached / max(received, 1):.1%} cached (the figure's subject)",
            f"rate: ours {med(subjects, 'rps'):,.0f} req/s, baseline "
            f"{med(baselines, 'rps'):,.0f} req/s (ours/baseline "
            f"{statistics.median(rates):.2f}); p50/p99 {med(subjects, 'p50_ms'):.2f}/"
            f"{med(subjects, 'p99_ms'):.2f} ms (baseline {med(baselines, 'p50_ms'):.2f}/"
            f"{med(baselines, 'p99_ms'):.2f}); server busy: ours {med(subjects, 'busy'):.0%}, "
            f"baseline {med(baselines, 'busy'):.0%}",
        ],
    )
