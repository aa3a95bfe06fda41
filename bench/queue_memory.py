"""`python -m bench.queue_memory`: the sidecar's memory per queued event, on realistic events.

The daemon runs alone as a subprocess against a Redis that never answers (a closed
port), so nothing leaves its queue: after the writers' first batches fail, every
accepted event stays queued. Realistic events (`bench/events.py`, ~1.5 KB Jitsu events)
are sent until the queue holds each of the `--steps`; RSS is read from /proc at each
step and the slope between the first and the last step is the memory one queued event
costs (the idle process and the warm-up are left out). docs/faults.md quotes the result.

    python -m bench.queue_memory [--mode ndjson|token] [--steps 10000,25000,50000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.events import ndjson_lines, token_bodies, token_ids
from tests.support.daemon import DaemonProcess
from tests.support.procstat import rss_mb
from tests.support.servers import free_port, wait_for

BATCH = 100  # NDJSON lines per request


def _queued(daemon: DaemonProcess) -> float:
    return daemon.metric("events_cache_queue_depth")


def _send(daemon: DaemonProcess, mode: str, count: int, seed: int, ids: list[str]) -> None:
    if mode == "ndjson":
        lines = ndjson_lines(count, ids, seed)
        for start in range(0, count, BATCH):
            daemon.post_ndjson(b"\n".join(lines[start : start + BATCH]), via="tcp")
    else:
        for token, body in token_bodies(count, ids, seed):
            daemon.post_token(token, body, via="tcp")


def measure(mode: str, steps: list[int], workdir: Path) -> dict[str, object]:
    """Queue `steps` events in turn; RSS at each step and the slope."""
    capacity = max(steps) + 10_000
    daemon = DaemonProcess(
        workdir / "daemon",
        f"redis://127.0.0.1:{free_port()}/0",  # nothing listens: nothing is ever written
        {
            "server": {"cache": {"events": {"size": 1_000_000}}},  # no rate limiting
            "sidecar": {"ingest": {"queue_size": capacity}, "log": {"level": "error"}},
        },
    )
    daemon.start()
    try:
        idle = round(rss_mb(daemon.pid), 1)
        ids = token_ids(1000)
        sizes = [len(body) for _, body in token_bodies(1000, ids)]  # the event alone
        _send(daemon, mode, 2000, seed=1, ids=ids)  # warm-up: the writers' failed batches
        wait_for(lambda: _queued(daemon) > 0, timeout=10)
        time.sleep(1)
        rows = []
        seed = 2
        for target in steps:
            while (queued := _queued(daemon)) < target:
                _send(daemon, mode, min(5000, int(target - queued)), seed, ids)
                seed += 1
            time.sleep(0.5)
            rows.append({"queued": int(_queued(daemon)), "rss_mib": round(rss_mb(daemon.pid), 1)})
        first, last = rows[0], rows[-1]
        slope = (
            (last["rss_mib"] - first["rss_mib"]) * 1024 * 1024 / (last["queued"] - first["queued"])
        )
        return {
            "mode": mode,
            "event_bytes_mean": round(statistics.mean(sizes)),
            "idle_rss_mib": idle,
            "steps": rows,
            "bytes_per_queued_event": round(slope),
        }
    finally:
        daemon.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["ndjson", "token"], default="ndjson")
    parser.add_argument("--steps", default="10000,25000,50000")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(measure(args.mode, steps, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
