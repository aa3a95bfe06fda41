"""`python -m bench.clients [--smoke] [--rounds N]`: the ingest clients' own costs.

For each client (clients/python, clients/go, clients/node), through its drive program
against a live daemon on the run's own Valkey, over the Unix socket:

- the cost of one call, the sender idle: 100,000 calls in chunks of 10,000 timed as a
  whole, each chunk flushed (untimed) before the next: `incoming(token, raw bytes)`
  (the ingest's own request body, the cheap path) and `incoming(token, parsed dict)`
  (encoded in the call);
- events per second through the client into the daemon: 100,000 raw events handed over
  as fast as the language allows (the buffer large enough to hold them all), timed from
  the first call until close() returns, i.e. until the daemon answered 202 for all;
  with the calling loop's time per event meanwhile (Node: including the sender's work,
  which shares the thread; Python: sharing the GIL) and the daemon's CPU (one core =
  100 %: when it is near 100 %, the daemon is the limit, not the client).

Events are ~1.4 KB of JSON spread over 10 API keys; the daemon has its default
configuration (size 100: after the first events per key, the rest are rate limited, so
the daemon's Redis writes stay out of the figure). Each figure is the median of
`--rounds` runs (3 by default); the machine is shared, so the load average is printed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.procs import Daemon, valkey_server
from tests.support.procstat import cpu_s

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "clients"


def _go_drive(workdir: Path) -> list[str] | None:
    if shutil.which("go") is None:
        return None
    binary = workdir / "drive-go"
    env = {
        **os.environ,
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOCACHE": str(workdir / "gocache"),
        "GOPATH": str(workdir / "gopath"),
    }
    subprocess.run(
        ["go", "build", "-o", str(binary), "./cmd/drive"], cwd=CLIENTS / "go", env=env, check=True
    )
    return [str(binary)]


def drivers(workdir: Path) -> dict[str, list[str] | None]:
    """The drive command of each language, None when its toolchain is missing."""
    return {
        "python": [sys.executable, str(CLIENTS / "python" / "tools" / "drive.py")],
        "go": _go_drive(workdir),
        "node": (
            ["node", str(CLIENTS / "node" / "tools" / "drive.js")] if shutil.which("node") else None
        ),
    }


def _run(argv: list[str]) -> dict[str, Any]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{argv[:2]} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(daemon: Daemon, drive: list[str], events: int, rounds: int) -> dict[str, Any]:
    """Median call costs and throughput of one client over `rounds` runs."""
    base = [*drive, "--socket", daemon.socket_path, "--events", str(events), "--ids", "10"]
    raw_ns, value_ns, rates, busy_ns, daemon_busy = [], [], [], [], []
    for _ in range(rounds):
        raw_ns.append(_run([*base, "--kind", "raw", "--idle-sender"])["ns_per_call"])
        value_ns.append(_run([*base, "--kind", "value", "--idle-sender"])["ns_per_call"])
        cpu_before = cpu_s(daemon.pid)
        flat = _run(
            [
                *base,
                "--kind",
                "raw",
                "--buffer-events",
                str(events),
                "--buffer-bytes",
                str(events * 4096),
                "--close-timeout",
                "120",
            ]
        )
        stats = flat["stats"]
        if stats["sent"] != events or stats["dropped"]:
            raise RuntimeError(f"not every event was handed over: {stats}")
        rates.append(stats["sent"] / flat["total_s"])
        daemon_busy.append((cpu_s(daemon.pid) - cpu_before) / flat["total_s"])
        busy_ns.append(flat["ns_per_call"])
    return {
        "raw_ns": statistics.median(raw_ns),
        "value_ns": statistics.median(value_ns),
        "events_per_s": statistics.median(rates),
        "busy_ns": statistics.median(busy_ns),
        "daemon_busy": statistics.median(daemon_busy),
        "spread": (min(rates), max(rates)),
    }


def _versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for tool, args in (("go", ["version"]), ("node", ["--version"])):
        if shutil.which(tool):
            out = subprocess.run([tool, *args], capture_output=True, text=True).stdout.strip()
            parts.append(out if tool == "go" else f"Node {out}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.clients")
    parser.add_argument("--smoke", action="store_true", help="10,000 events, one round")
    parser.add_argument("--rounds", type=int, default=0)
    args = parser.parse_args()
    events = 10_000 if args.smoke else 100_000
    rounds = args.rounds or (1 if args.smoke else 3)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"events-cache clients bench, {now}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print(_versions())
    print(f"{events:,} events of ~1.4 KB per figure, median of {rounds} round(s), Unix socket")
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        workdir = Path(tmp)
        server = valkey_server(workdir / "valkey")
        server.start()
        daemon = Daemon(workdir / "daemon", server.url, {})
        try:
            daemon.start()
            rows = []
            for language, drive in drivers(workdir).items():
                if drive is None:
                    rows.append(f"| {language:<8} | not installed | | | | |")
                    continue
                m = measure(daemon, drive, events, rounds)
                low, high = m["spread"]
                rows.append(
                    f"| {language:<8} | {m['raw_ns']:>8,.0f} ns | {m['value_ns']:>8,.0f} ns "
                    f"| {m['events_per_s']:>8,.0f} events/s ({low:,.0f}-{high:,.0f}) "
                    f"| {m['busy_ns']:>7,.0f} ns | {m['daemon_busy']:.0%} |"
                )
        finally:
            daemon.stop()
            server.kill()
    print()
    print(
        "| client   | call, raw bytes | call, parsed dict | through the client into the daemon "
        "| calling loop per event, sending meanwhile | daemon CPU meanwhile |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
