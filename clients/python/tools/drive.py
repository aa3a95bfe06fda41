"""Drive the client against a running sidecar and print one JSON line of results.

The same command line exists for the Go and Node clients (clients/go/cmd/drive,
clients/node/tools/drive.js), so that tests/test_clients.py and bench/clients.py treat
the three alike:

    python clients/python/tools/drive.py --socket /path/ingest.sock --events 10000

--kind raw: incoming(token, bytes); value: incoming(token, dict); processed:
processed(dest, bytes, success=dict); mixed: the three in turn plus processed(error=).
--rate 0 calls as fast as possible; --idle-sender times the calls alone (chunks of
--chunk calls timed whole, the sender idle meanwhile, each chunk flushed untimed).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from events_cache_client import Client


def make_event(n: int, size: int) -> dict[str, Any]:
    """A Jitsu-like event of about `size` bytes of JSON."""
    event: dict[str, Any] = {
        "event_type": "pageview",
        "event_id": f"ev-{n}",
        "eventn_ctx": {"url": "https://www.example.com/pricing?utm_source=newsletter"},
        "pad": "",
    }
    event["pad"] = "x" * max(0, size - len(json.dumps(event)))
    return event


def _options(a: argparse.Namespace) -> dict[str, Any]:
    """Client settings from the command line (0 keeps the client's default)."""
    options: dict[str, Any] = {}
    if a.max_request_bytes:
        options["max_request_bytes"] = a.max_request_bytes
    if a.flush_ms:
        options["flush_interval_s"] = a.flush_ms / 1000
    if a.batch_events:
        options["max_batch_events"] = a.batch_events
    if a.buffer_events:
        options["buffer_events"] = a.buffer_events
    if a.buffer_bytes:
        options["buffer_bytes"] = a.buffer_bytes
    if a.idle_sender:  # the sender waits for flush() after each chunk of calls
        options.update(
            flush_interval_s=3600.0,
            max_batch_events=a.chunk + 1,
            buffer_events=a.chunk + 1,
            buffer_bytes=1 << 40,
        )
    return options


def _chunks(client: Client, call: Any, events: int, chunk: int) -> tuple[float, int]:
    """Seconds spent in the calls alone (chunks timed whole, each flushed untimed)."""
    timed = 0.0
    n = 0
    while n < events:
        end = min(n + chunk, events)
        t0 = time.perf_counter()
        for i in range(n, end):
            call(i)
        timed += time.perf_counter() - t0
        n = end
        client.flush(30)
    return timed, 0


def _paced(call: Any, events: int, rate: float) -> tuple[float, int]:
    """Seconds of the calling loop at `rate` events/s (0: flat out), and the slowest
    call in nanoseconds."""
    max_call = 0
    pace = 1.0 / rate if rate > 0 else 0.0
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for n in range(events):
        t0 = clock()
        call(n)
        took = clock() - t0
        if took > max_call:
            max_call = took
        if pace and n % 10 == 9:
            behind = start + (n + 1) * pace - time.perf_counter()
            if behind > 0:
                time.sleep(behind)
    return time.perf_counter() - start, max_call


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--socket", default="")
    p.add_argument("--url", default="")
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--ids", type=int, default=10)
    p.add_argument("--kind", default="raw", choices=["raw", "value", "processed", "mixed"])
    p.add_argument("--body-bytes", type=int, default=1400)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--max-request-bytes", type=int, default=0)
    p.add_argument("--flush-ms", type=float, default=0)
    p.add_argument("--batch-events", type=int, default=0)
    p.add_argument("--buffer-events", type=int, default=0)
    p.add_argument("--buffer-bytes", type=int, default=0)
    p.add_argument("--close-timeout", type=float, default=10.0)
    p.add_argument("--idle-sender", action="store_true")
    p.add_argument("--chunk", type=int, default=10_000)
    p.add_argument("--bodies", default="", help="JSON lines {id, body (base64), skip, error}")
    a = p.parse_args()

    options = _options(a)
    client = Client(socket=a.socket or None, url=a.url or None, **options)

    ids = [f"drive-{i}" for i in range(a.ids)]
    events = [make_event(i, a.body_bytes) for i in range(16)]
    bodies = [json.dumps(e).encode() for e in events]
    success = {"table": "events", "rows": 1}
    kinds = ["processed", "raw", "value", "error"] if a.kind == "mixed" else [a.kind]

    def call(n: int) -> None:
        kind = kinds[n % len(kinds)]
        id_ = ids[n % len(ids)]
        body = bodies[n % 16]
        if kind == "raw":
            client.incoming(id_, body)
        elif kind == "value":
            client.incoming(id_, events[n % 16])
        elif kind == "processed":
            client.processed(id_, body, success=success)
        else:
            client.processed(id_, body, error="destination refused the event")

    if a.bodies:  # raw bodies as given, instead of generated events
        given = [json.loads(line) for line in Path(a.bodies).read_text().splitlines()]
        a.events = len(given)

        def call(n: int) -> None:
            g = given[n]
            body = base64.b64decode(g["body"])
            client.incoming(g["id"], body, skip=g.get("skip"), error=g.get("error"))

    start = time.perf_counter()
    if a.idle_sender:
        timed, max_call = _chunks(client, call, a.events, a.chunk)
    else:
        timed, max_call = _paced(call, a.events, a.rate)
    calls_s = timed
    close_start = time.perf_counter()
    flushed = client.close(a.close_timeout)
    end = time.perf_counter()
    stats = client.stats().as_dict()
    print(
        json.dumps(
            {
                "language": "python",
                "events": a.events,
                "calls_s": calls_s,
                "ns_per_call": calls_s * 1e9 / max(a.events, 1),
                "max_call_ns": max_call,
                "close_s": end - close_start,
                "total_s": end - start,
                "flushed": flushed,
                "stats": stats,
            }
        )
    )


if __name__ == "__main__":
    main()
