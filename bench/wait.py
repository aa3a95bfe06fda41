"""Benchmarks of the long poll (GET /api/v1/events/wait), beside the live tail's T1, T2.

- W1: from an event's ingest on one daemon to the answer of a wait on another (open at
  least 2 s before the event, so every pod publishes): p99.
- W2: P1b (1,000 ids, every event cached, Unix socket) with 100 waits open on the same
  daemon and with none, alternating: what open waits cost the ingest path.
"""

from __future__ import annotations

import functools
import http.client
import socket
import statistics
import threading
import time
from typing import Any

import orjson

from bench import events as ev
from bench.procs import Bare, Daemon
from bench.scenarios import Row, Settings, _alternate, _measure_p1
from tests.support.daemon import ADMIN_TOKEN
from tests.support.load import http_request, write_requests
from tests.support.procstat import percentile
from tests.support.servers import RedisServer, wait_for

WAIT = "/api/v1/events/wait"
OPEN_BEFORE_S = 2.0  # each wait is open this long, at least, before its event
BATCH = 50  # waits open at once in W1
SPACING_S = 0.01  # between W1's events
P1B_WAITS = 100


def _wait_thread(port: int, id_: str, answers: dict[str, float]) -> threading.Thread:
    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", f"{WAIT}?namespace=token&ids={id_}&timeout=60", headers=_TOKEN)
        body = conn.getresponse().read()
        answered = time.time()
        if orjson.loads(body)["matched"]:
            answers[id_] = answered
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


_TOKEN = {"X-Admin-Token": ADMIN_TOKEN}


def _w1_batch(writer: Daemon, reader: Daemon, batch: int, first: int) -> list[float]:
    """`batch` waits on the reader, each for an id of its own; after OPEN_BEFORE_S, one
    event per id to the writer: the time from each send to its wait's answer."""
    answers: dict[str, float] = {}
    ids = [f"w1-{first + n}" for n in range(batch)]
    threads = [_wait_thread(reader.api_port, id_, answers) for id_ in ids]
    wait_for(lambda: reader.metric("events_cache_waits") == batch, 10, what="W1 waits open")
    time.sleep(OPEN_BEFORE_S)
    sent = {}
    for id_ in ids:
        sent[id_] = time.time()
        writer.post_token(id_, orjson.dumps({"event_type": "w1"}))
        time.sleep(SPACING_S)
    for t in threads:
        t.join(30)
    if len(answers) < batch:
        raise RuntimeError(f"W1: {len(answers)} of {batch} waits matched")
    return [answers[id_] - sent[id_] for id_ in ids]


def w1(s: Settings, server: RedisServer, events: int) -> list[Row]:
    """Waits on one daemon, the events ingested on another."""
    server.client().flushall()
    writer = Daemon(s.workdir / "daemon-W1w", server.url, {})
    reader = Daemon(s.workdir / "daemon-W1r", server.url, {})
    writer.start()
    reader.start()
    latencies: list[float] = []
    try:
        while len(latencies) < events:
            batch = min(BATCH, events - len(latencies))
            latencies += _w1_batch(writer, reader, batch, len(latencies))
    finally:
        writer.stop()
        reader.stop()
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    return [
        Row(
            "W1 wait: ingest on another daemon to the wait's answer p99",
            p99, None, "ms", "<= 100", p99 <= 100,
            notes=[
                f"p50 {p50:.1f} ms, max {max(latencies) * 1000:.1f} ms over {events} waits "
                f"({min(BATCH, events)} open at once, each >= {OPEN_BEFORE_S:.0f} s before "
                "its event, events 10 ms apart); the answer timed as the client reads it"
            ],
        )
    ]  # fmt: skip


def _open_waits(port: int, ids: list[str]) -> list[socket.socket]:
    """Waits that never match, one per id of the load (each for an event id nobody
    sends): every published entry of their ids is looked at. Closed by the caller (the
    slots free at once)."""
    socks = []
    for n, id_ in enumerate(ids):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            f"GET {WAIT}?namespace=token&ids={id_}&event_id=never-{n}&timeout=120 HTTP/1.1\r\n"
            f"Host: bench\r\nX-Admin-Token: {ADMIN_TOKEN}\r\n\r\n".encode()
        )
        socks.append(sock)
    return socks


def w2(s: Settings, server: RedisServer) -> list[Row]:
    """P1b's load with no wait open and with P1B_WAITS open on the same daemon."""
    server.client().flushall()
    daemon = Daemon(
        s.workdir / "daemon-W2", server.url, {"server": {"cache": {"events": {"size": 1_000_000}}}}
    )
    daemon.start()
    bare = Bare(s.workdir / "bare-W2")
    bare.start()
    try:
        token_ids = ev.token_ids(1000)
        bodies = ev.token_bodies(1000, token_ids)
        req_file = str(s.workdir / "w2.req")
        write_requests(
            req_file, [http_request("POST", f"/v1/token/{t}/events", b) for t, b in bodies]
        )
        measure = functools.partial(_measure_p1, s, "unix", (req_file, ""))
        base = functools.partial(measure, bare.pid, bare.socket_path, bare.port)
        idle = functools.partial(measure, daemon.pid, daemon.socket_path, daemon.ingest_port)

        def waiting() -> dict[str, Any]:
            socks = _open_waits(daemon.api_port, token_ids[:P1B_WAITS])
            try:
                wait_for(
                    lambda: daemon.metric("events_cache_waits") == P1B_WAITS, 10, what="W2 waits"
                )
                time.sleep(2.5)  # every writer publishes, each wait has read its list
                return idle()
            finally:
                for sock in socks:
                    sock.close()
                wait_for(lambda: daemon.metric("events_cache_waits") == 0, 30, what="W2 closed")

        none, with_bare = _alternate(s.rounds, idle, base)
        hundred, _ = _alternate(s.rounds, waiting, base)
    finally:
        daemon.stop()
        bare.stop()
        server.client().flushall()
    return _w2_rows(none, hundred, with_bare)


def _w2_rows(
    none: list[dict[str, Any]], hundred: list[dict[str, Any]], bare: list[dict[str, Any]]
) -> list[Row]:
    def med(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(x[key] for x in runs)

    p1b = [z["rps"] / b["rps"] for z, b in zip(none, bare, strict=True)]
    kept = [h["rps"] / z["rps"] for h, z in zip(hundred, none, strict=True)]
    ratio = statistics.median(kept)
    return [
        Row(
            f"W2 P1b unix with {P1B_WAITS} waits / with none: req/s",
            med(hundred, "rps"), med(none, "rps"), "req/s", ">= 0.95", ratio >= 0.95,
            ratio=ratio,
            spread=f"{min(kept):.2f}-{max(kept):.2f}" if len(kept) > 1 else "",
            notes=[
                f"P1b with no wait {statistics.median(p1b):.2f} of the bare handler; daemon "
                f"CPU per request {med(none, 'cpu_us'):.0f} us with none, "
                f"{med(hundred, 'cpu_us'):.0f} us with {P1B_WAITS} (each on one id of the "
                "load, for an event id nobody sends: every entry published, those of the "
                "waits' ids looked at)"
            ],
        )
    ]  # fmt: skip
