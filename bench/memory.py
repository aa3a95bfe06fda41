"""B2: the daemon's peak memory with 1 MB events at full speed, Redis stopped and then back.

`python -m bench --only B2`, or alone: `python -m bench.memory [--pause 20] [--back 20]`
(prints the row as JSON).

The daemon runs with the default memory settings (`queue_size`, `queue_bytes`,
`pool.size`, `inflight_bytes`, `max_request_bytes`) against a Valkey of its own. Only
the rate limit is changed, to 10 events per id per second, so that over 40 ids nearly
every event is cacheable (the limit would otherwise refuse them, and a refused event
costs no memory) while Valkey holds at most 40 x 10 of them between trims. A closed-loop
generator (`tests.support.load`, 4 connections on the Unix socket) posts one-event
bodies of ~1,000,000 bytes as fast as the daemon answers. Valkey is paused (SIGSTOP:
connections stay open, nothing answers, the writers' pipelines hang) for `--pause`
seconds, then resumed for `--back` seconds of the same load, then the queue drains.
The figure is the kernel's high-water mark of the daemon's RSS (VmHWM), which no
sampling interval can miss; the notes give it at the end of each phase.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import Daemon, valkey_server
from bench.scenarios import Row, Settings
from tests.support.load import http_request, write_requests
from tests.support.procstat import rss_mb
from tests.support.scrape import metric_sum
from tests.support.servers import wait_for

IDS = 40
EVENT_BYTES = 1_000_000
CONNECTIONS = 4
TARGET_MIB = 200
LIMITS = {"server": {"cache": {"events": {"size": 10, "time_window_sec": 1}}}}


def hwm_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _requests(path: Path) -> None:
    """One ~1 MB event per request, for each id in turn."""
    out = []
    for n in range(IDS):
        head = json.dumps({"event_id": f"b2-{n}", "payload": ""})[:-2]
        body = (head + "x" * (EVENT_BYTES - len(head) - 2) + '"}').encode()
        out.append(http_request("POST", f"/v1/token/b2-{n}/events", body))
    write_requests(str(path), out)


def _watch(daemon: Daemon, seconds: float, seen: dict[str, float]) -> None:
    """Scrape the queue's gauges for `seconds`, keeping their maxima."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        m = daemon.metrics()
        for name in ("events_cache_queue_bytes", "events_cache_queue_depth"):
            seen[name] = max(seen.get(name, 0.0), m.get(name, 0.0))
        time.sleep(0.25)


def b2(s: Settings, pause_s: float, back_s: float) -> list[Row]:
    """Peak RSS with Redis paused then resumed under 1 MB events at full speed."""
    server = valkey_server(s.workdir / "redis-B2")
    server.start()
    daemon = Daemon(s.workdir / "daemon-B2", server.url, LIMITS)
    req_file = s.workdir / "b2.req"
    _requests(req_file)
    spec = {
        "target": {"unix": daemon.socket_path},
        "requests": str(req_file),
        "seconds": pause_s + back_s,
        "connections": CONNECTIONS,
    }
    spec_path = s.workdir / "closed-loop-b2.json"
    spec_path.write_text(json.dumps(spec))
    seen: dict[str, float] = {}
    try:
        daemon.start()
        idle = rss_mb(daemon.pid)
        server.pause()
        gen = subprocess.Popen(
            [sys.executable, "-m", "tests.support.load", str(spec_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        _watch(daemon, pause_s, seen)
        paused_peak = hwm_mib(daemon.pid)
        server.resume()
        out, _ = gen.communicate(timeout=back_s + 120)
        wait_for(lambda: daemon.metric("events_cache_queue_depth") == 0, timeout=120)
        peak = hwm_mib(daemon.pid)
        after = rss_mb(daemon.pid)
        m = daemon.metrics()
    finally:
        daemon.stop()
        server.kill()
    result = json.loads(out.strip().splitlines()[-1])
    counted = {
        reason: metric_sum(m, "events_cache_dropped_total", f'reason="{reason}"')
        for reason in ("queue_full", "redis_error", "shutdown")
    }
    cached = metric_sum(m, "events_cache_cached_total", 'collection="all"')
    limited = metric_sum(m, "events_cache_rate_limited_total", 'collection="all"')
    notes = [
        f"idle {idle:.1f} MiB; peak while paused {paused_peak:.1f} MiB; after draining "
        f"{after:.1f} MiB; {pause_s:.0f} s paused then {back_s:.0f} s back",
        f"{result['requests']:,} events of {EVENT_BYTES:,} bytes offered "
        f"({result['requests'] / (pause_s + back_s):.0f}/s, {CONNECTIONS} connections); "
        f"cached {cached:,.0f}, rate limited {limited:,.0f}, dropped "
        + ", ".join(f"{k} {v:,.0f}" for k, v in counted.items()),
        f"queue at most {seen.get('events_cache_queue_bytes', 0) / 2**20:.1f} MiB "
        f"({seen.get('events_cache_queue_depth', 0):.0f} entries) in the scrapes",
    ]
    return [
        Row(
            "B2 peak RSS, 1 MB events, Redis paused then back",
            peak,
            None,
            "MB",
            f"<= {TARGET_MIB} MiB",
            peak <= TARGET_MIB,
            notes=notes,
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pause", type=float, default=20.0, help="seconds with Redis paused")
    parser.add_argument("--back", type=float, default=20.0, help="seconds of load after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(1.0, 1, 0, (0, 0, 0), 0.0, Path(tmp))
        rows = b2(s, args.pause, args.back)
    print(json.dumps([dataclasses.asdict(r) for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
