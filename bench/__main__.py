"""`python -m bench [--smoke] [--only P1,P2,...]`: run the scenarios, print one table."""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import authtiming, cost, errors, follow, front, hostile, journey, memory
from bench import proxy as px
from bench import scenarios as sc
from bench import wait as wt
from bench.procs import Daemon, valkey_server
from tests.support.servers import RedisServer

SCENARIOS = (
    "P1",
    "P1cpu",
    "P1bcpu",
    "P1fast",
    "P2",
    "P3",
    "P4",
    "P5",
    "P6",
    "F1",
    "J1",
    "E1",
    "T1",
    "T2",
    "W1",
    "W2",
    "B1",
    "B2",
    "S1",
    "C1",
)


def _settings(smoke: bool, rounds: int | None, workdir: Path) -> sc.Settings:
    if smoke:
        return sc.Settings(
            seconds=1.0,
            rounds=rounds or 1,
            p3_events=10_000,
            p4_requests=(20, 10, 4),
            p5_seconds=3.0,
            workdir=workdir,
            b1_seconds=1.0,
            s1_requests=300,
        )
    return sc.Settings(
        seconds=4.0,
        rounds=rounds or 3,
        p3_events=200_000,
        p4_requests=(300, 150, 40),
        p5_seconds=60.0,
        workdir=workdir,
    )


def _versions(server: RedisServer) -> str:
    import aiohttp
    import orjson
    import redis

    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop = "asyncio"
    from redis.utils import HIREDIS_AVAILABLE

    # What redis-py of this process (and of the daemon, from the same environment) parses
    # replies with: hiredis when it imports and is new enough for redis-py, else its own.
    if HIREDIS_AVAILABLE:
        import hiredis

        parser = f"hiredis {hiredis.__version__} parser"
    else:
        parser = "pure-Python RESP parser"
    try:
        from daemon import __version__ as daemon_version
    except ImportError:
        daemon_version = "?"
    rb = subprocess.run(["redis-benchmark", "--version"], capture_output=True, text=True)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (
        f"events-cache {daemon_version}; Python {platform.python_version()}; aiohttp "
        f"{aiohttp.__version__}; redis-py {redis.__version__} ({parser}); orjson "
        f"{orjson.__version__}; {loop}; valkey {server.version()}; "
        f"{rb.stdout.strip()}; {(wrk.stdout + wrk.stderr).splitlines()[0].split(' [')[0]}"
    )


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("ms", "MB", "cmd/event") or abs(value) < 100:
        return f"{value:,.3f}" if abs(value) < 1 else f"{value:,.2f}"
    return f"{value:,.0f}"


def print_table(rows: list[sc.Row], header: str) -> None:
    """One table: figure, value, baseline, ratio, target, met, notes."""
    cells = [("figure", "value", "baseline", "ratio (spread)", "target", "met?")]
    for r in rows:
        ratio = (
            "-" if r.ratio is None else f"{r.ratio:.2f}" + (f" ({r.spread})" if r.spread else "")
        )
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        cells.append(
            (
                r.figure,
                f"{_fmt(r.value, r.unit)} {r.unit}",
                f"{_fmt(r.baseline, r.unit)}" + (f" {r.unit}" if r.baseline is not None else ""),
                ratio,
                r.target,
                met,
            )
        )
    widths = [max(len(c[i]) for c in cells) for i in range(6)]
    print(header)
    for n, c in enumerate(cells):
        print("| " + " | ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("\nNotes:")
    for r in rows:
        for note in r.notes:
            print(f"- {r.figure.split(':')[0]}: {note}")


def _run(
    chosen: list[str], s: sc.Settings, server: RedisServer, smoke: bool, failed: list[str]
) -> list[sc.Row]:
    """The chosen scenarios, in order (P5 uses P3's rate when P3 ran). A scenario that
    fails is named in `failed` (its traceback on stderr) and the others still run, so one
    failure late in a full run does not lose the figures measured before it."""
    rows: list[sc.Row] = []
    for name in chosen:
        print(f"bench: running {name} ...", file=sys.stderr, flush=True)
        try:
            rows += _scenario(name, s, server, smoke, rows)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    return rows


def _scenario(
    name: str, s: sc.Settings, server: RedisServer, smoke: bool, before: list[sc.Row]
) -> list[sc.Row]:
    """One scenario's rows; P5 takes P3's rate from the rows `before` it, when P3 ran."""
    p3_eps = next((r.value for r in before if r.figure.startswith("P3 end-to-end")), None)
    repeat = 20 if smoke else 300
    with_server: dict[str, Callable[[sc.Settings, RedisServer], list[sc.Row]]] = {
        "P1": sc.p1,
        "P1cpu": front.p1cpu,
        "P1bcpu": front.p1bcpu,
        "P1fast": front.p1fast,
        "P2": sc.p2,
        "P3": sc.p3,
        "P4": sc.p4,
        "P6": px.p6,
        "B1": hostile.b1,
        "T2": follow.t2,
        "W2": wt.w2,
        "S1": authtiming.s1,
    }
    if name in with_server:
        return with_server[name](s, server)
    if name == "P5":
        return sc.p5(s, p3_eps)
    if name == "F1":
        return follow.f1(s, server, repeat)
    if name == "J1":
        return journey.j1(s, server, repeat, smoke)
    if name == "E1":
        return errors.e1(s, server, repeat, smoke)
    if name == "T1":
        return follow.t1(s, server, repeat)
    if name == "W1":
        return wt.w1(s, server, repeat)
    if name == "C1":
        return cost.c1(s, server, smoke)
    # B2: 20 s paused then 20 s back (1 s each in the smoke run)
    return memory.b2(s, s.p5_seconds / 3, s.p5_seconds / 3)


def main() -> int:
    """Run the chosen scenarios against a Valkey of the run's own."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="every scenario for a second or so")
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. P1,P3")
    parser.add_argument("--rounds", type=int, default=None, help="alternations per figure")
    parser.add_argument("--profile", metavar="DIR", help="record each daemon with py-spy")
    parser.add_argument(
        "--daemon-src",
        metavar="DIR",
        help="run the daemon package found in DIR (before/after comparisons)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    spelled = {name.upper(): name for name in SCENARIOS}  # --only p1CPU is P1cpu
    chosen = [
        spelled.get(x.strip().upper(), x.strip()) for x in args.only.split(",") if x.strip()
    ] or list(SCENARIOS)
    for tool in ("wrk", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(
                f"bench: {tool} is not installed (apt-get install -y wrk redis-tools)",
                file=sys.stderr,
            )
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="events-cache-bench-"))
    if args.daemon_src:
        Daemon.source = ":".join(str(Path(p).resolve()) for p in args.daemon_src.split(":"))
    if args.profile:
        Daemon.profile_dir = Path(args.profile).resolve()
    s = _settings(args.smoke, args.rounds, workdir)
    server = valkey_server(workdir / "redis")
    server.start()
    rows: list[sc.Row] = []
    failed: list[str] = []
    started = time.time()
    try:
        header = (
            f"events-cache bench{' (smoke)' if args.smoke else ''}, "
            f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
            f"{os.cpu_count()} CPUs ({platform.machine()}), load average "
            f"{os.getloadavg()[0]:.2f} at start\n{_versions(server)}\n"
        )
        unknown = [name for name in chosen if name not in SCENARIOS]
        if unknown:
            print(f"bench: unknown scenario {', '.join(unknown)}", file=sys.stderr)
            return 2
        rows += _run(chosen, s, server, args.smoke, failed)
    finally:
        server.kill()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows, header)
    print(
        f"\n{len(rows)} figures in {time.time() - started:.0f} s; "
        f"{sum(1 for r in rows if r.met is False)} target(s) missed"
    )
    if failed:
        print(f"bench: failed: {', '.join(failed)} (tracebacks above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
