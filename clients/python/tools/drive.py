"""Drive the client against a running sidecar and print one JSON line of results.

The same command line exists for the Go and Node clients (clients/go/cmd/drive,
clients/node/tools/drive.js), so that tests/test_clients.py and bench/clients.py treat
the three alike:

    python clients/python/tools/drive.py --socket /path/ingest.sock --events 10000

--kind raw: incoming(token, bytes); value: incoming(token, dict); processed:
processed(dest, bytes, success=dict); mixed: the three in turn plus processed(error=).
--rate 0 calls as fast as possible; --idle-sender times the calls alone (chunks of
--chunk calls timed whole, the sender idle meanwhile, each chunk flushed untimed);
--concurrency N makes the calls from N threads at once.

--commands drives the client step by step instead: it reads one JSON command a line
from stdin and answers each with one JSON line on stdout, so that a test can change the
sidecar between two steps (stop it, restart it, pause it):

    {"op": "incoming", "id": "k", "body": "{}", "count": 1, "skip": null, "error": null,
     "capture": null, "parsed": false}
    {"op": "processed", "id": "pg", "original": "{}", "success": {}, "error": null,
     "skip": null, "token_id": null, "capture": null, "count": 1}
        -> {"max_call_ns": N, "stats": {...}} (the counters right after the calls)
    {"op": "flush", "timeout": 5}  -> {"flushed": true, "took_s": S, "stats": {...}}
    {"op": "close", "timeout": 5}  -> {"flushed": true, "took_s": S, "stats": {...}}
    {"op": "stats"}                -> {"stats": {...}}

--asyncio (with --commands) drives the AsyncClient instead of the threaded Client.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from events_cache_client import AsyncClient, Client


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
    if a.timeout:
        options["timeout_s"] = a.timeout
    if a.max_backoff:
        options["max_backoff_s"] = a.max_backoff
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


def _threads(call: Any, events: int, concurrency: int) -> tuple[float, int]:
    """Seconds of `concurrency` threads calling flat out, each every n-th event, and
    the slowest call in nanoseconds."""
    slowest = [0] * concurrency

    def part(k: int) -> None:
        clock = time.perf_counter_ns
        for n in range(k, events, concurrency):
            t0 = clock()
            call(n)
            slowest[k] = max(slowest[k], clock() - t0)

    threads = [threading.Thread(target=part, args=(k,)) for k in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, max(slowest)


def _calls(client: Client | AsyncClient, c: dict[str, Any]) -> dict[str, Any]:
    """An incoming or processed command: `count` calls, each timed."""
    if c["op"] == "incoming":
        body = c["body"].encode()

        def call() -> None:
            client.incoming(
                c["id"],
                body,
                skip=c.get("skip"),
                error=c.get("error"),
                capture=c.get("capture"),
                parsed=bool(c.get("parsed")),
            )

    elif c["op"] == "processed":
        original = c["original"].encode()

        def call() -> None:
            client.processed(
                c["id"],
                original,
                success=c.get("success"),
                error=c.get("error"),
                skip=c.get("skip"),
                token_id=c.get("token_id"),
                capture=c.get("capture"),
            )

    else:
        raise SystemExit(f"unknown command {c['op']!r}")
    max_call = 0
    clock = time.perf_counter_ns
    for _ in range(int(c.get("count", 1))):
        t0 = clock()
        call()
        max_call = max(max_call, clock() - t0)
    return {"max_call_ns": max_call, "stats": client.stats().as_dict()}


def _answer(answer: dict[str, Any]) -> None:
    print(json.dumps(answer), flush=True)


async def _flush(client: Client | AsyncClient, timeout: float, close: bool) -> bool:
    if isinstance(client, AsyncClient):
        return await (client.close(timeout) if close else client.flush(timeout))
    return client.close(timeout) if close else client.flush(timeout)


async def _commands(client: Client | AsyncClient) -> None:
    """The --commands protocol: the calls run on this thread (the AsyncClient's loop)."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        c = json.loads(line)
        if c["op"] in ("flush", "close"):
            t0 = time.perf_counter()
            flushed = await _flush(client, c.get("timeout", 5.0), c["op"] == "close")
            took = time.perf_counter() - t0
            _answer({"flushed": flushed, "took_s": took, "stats": client.stats().as_dict()})
        elif c["op"] == "stats":
            _answer({"stats": client.stats().as_dict()})
        else:
            _answer(_calls(client, c))


async def _async_commands(socket: str | None, url: str | None, options: dict[str, Any]) -> None:
    await _commands(AsyncClient(socket=socket, url=url, **options))


def _arguments() -> argparse.Namespace:
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
    p.add_argument("--timeout", type=float, default=0, help="seconds (connect, request)")
    p.add_argument("--max-backoff", type=float, default=0, help="seconds")
    p.add_argument("--close-timeout", type=float, default=10.0)
    p.add_argument("--idle-sender", action="store_true")
    p.add_argument("--chunk", type=int, default=10_000)
    p.add_argument("--bodies", default="", help="JSON lines {id, body (base64), skip, error}")
    p.add_argument("--concurrency", type=int, default=1, help="threads making the calls")
    p.add_argument(
        "--parsed", action="store_true", help="--kind raw: vouch for the bodies (parsed=True)"
    )
    p.add_argument("--commands", action="store_true", help="JSON commands on stdin")
    p.add_argument("--asyncio", action="store_true", help="the AsyncClient (with --commands)")
    a = p.parse_args()
    if a.asyncio and not a.commands:
        p.error("--asyncio needs --commands")
    return a


def main() -> None:
    a = _arguments()
    options = _options(a)
    if a.asyncio:
        asyncio.run(_async_commands(a.socket or None, a.url or None, options))
        return
    client = Client(socket=a.socket or None, url=a.url or None, **options)
    if a.commands:
        asyncio.run(_commands(client))
        return
    _bulk(client, a)


def _bulk(client: Client, a: argparse.Namespace) -> None:
    """--events calls made as the flags say, then close(); one JSON line of results."""

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
            client.incoming(id_, body, parsed=a.parsed)
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
    elif a.concurrency > 1:
        timed, max_call = _threads(call, a.events, a.concurrency)
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
