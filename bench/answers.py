"""A query on keys stuffed with big events: the answer's size and time, and the daemon's
peak memory (issue 20, point 3; the figures of docs/api.md, "Answers are bounded").

    python -m bench.answers [--ids 5] [--per-id 100] [--event-bytes 1000000]
                            [--max-response-bytes N] [--daemon-src DIR]

Valkey of its own; `--ids` x `--per-id` entries of about `--event-bytes` each are
written straight into it (as another sidecar would have cached them), then the daemon
(a subprocess, default settings but `size` = `--per-id` and, when given,
`sidecar.api.max_response_bytes`) answers one `GET /api/v1/events/cache?namespace=token`
(every id, the default `limit`). Prints one JSON object: the answer's status, bytes,
events, whether it was cut, its time, and the daemon's VmHWM before and after.
`--daemon-src` runs another checkout's daemon package (a before/after comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.procs import Daemon, valkey_server
from daemon.core.entry import ParsedEvent, encode
from daemon.core.model import Namespace
from daemon.store.keys import events_key, index_key


def hwm_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stuff(url: str, ids: int, per_id: int, event_bytes: int) -> None:
    """`per_id` entries of about `event_bytes` under each of `ids` token keys."""
    client = redis.Redis.from_url(url)
    try:
        for n in range(ids):
            id_ = f"stuffed-{n}"
            entries = [
                encode(
                    ParsedEvent(
                        Namespace.TOKEN,
                        id_,
                        original=json.dumps({"seq": seq, "pad": "x" * event_bytes}),
                        token_id=id_,
                    ),
                    time.time(),
                )
                for seq in range(per_id)
            ]
            client.lpush(events_key(Namespace.TOKEN, id_), *entries)
            client.zadd(index_key(Namespace.TOKEN), {id_: time.time()})
    finally:
        client.close()


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = valkey_server(workdir / "valkey")
    server.start()
    daemon = None
    try:
        stuff(server.url, args.ids, args.per_id, args.event_bytes)
        events = {"size": args.per_id, "time_window_sec": 3600}
        config: dict[str, Any] = {"server": {"cache": {"events": events}}}
        if args.max_response_bytes:
            config["sidecar"] = {"api": {"max_response_bytes": args.max_response_bytes}}
        daemon = Daemon(workdir / "daemon", server.url, config)
        daemon.start()
        before = hwm_mib(daemon.pid)
        started = time.monotonic()
        reply = daemon.api("/api/v1/events/cache", {"namespace": "token"})
        took = time.monotonic() - started
        return {
            "stuffed": f"{args.ids} ids x {args.per_id} entries of {args.event_bytes} bytes",
            "status": reply.status,
            "answer_bytes": len(reply.raw),
            "events": reply.json.get("response_events") if reply.status == 200 else None,
            "cut": reply.headers.get("X-Events-Cache-Truncated") == "true",
            "seconds": round(took, 3),
            "vmhwm_mib_before": round(before),
            "vmhwm_mib_after": round(hwm_mib(daemon.pid)),
        }
    finally:
        if daemon is not None:
            daemon.stop()
        server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.answers", description=__doc__)
    parser.add_argument("--ids", type=int, default=5)
    parser.add_argument("--per-id", type=int, default=100)
    parser.add_argument("--event-bytes", type=int, default=1_000_000)
    parser.add_argument("--max-response-bytes", type=int, default=0)
    parser.add_argument("--daemon-src", default="", help="another checkout's root")
    args = parser.parse_args()
    if args.daemon_src:
        Daemon.source = str(Path(args.daemon_src).resolve())
    with tempfile.TemporaryDirectory(prefix="bench-answers-") as workdir:
        print(json.dumps(run(args, Path(workdir))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
