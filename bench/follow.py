"""Benchmarks of finding and following events (issue "Find and follow events").

- F1: one summary page (100 ids of 10,000) against a bare redis-py doing the same reads.
- T1: ingest-to-watcher latency of the live tail, 1 and 10 watchers on another daemon.
- T2: P1b (1,000 ids, every event cached, Unix socket) with 0 and with 10 watchers on
  the same daemon, alternating: what open streams cost the ingest path.
"""

from __future__ import annotations

import functools
import http.client
import queue
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis

from bench import events as ev
from bench.procs import Bare, Daemon
from bench.scenarios import (
    Row,
    Settings,
    _alternate,
    _closed_loop,
    _latencies,
    _measure_p1,
    p99_row,
)
from tests.support.daemon import ADMIN_TOKEN
from tests.support.load import http_request, write_requests
from tests.support.procstat import percentile
from tests.support.servers import RedisServer, wait_for
from tests.support.sse import Watcher, activate

SUMMARY_IDS = 10_000
PAGE = 100
WATCHERS = 10


# -- F1: the summary ------------------------------------------------------------------------
def _bare_summary(client: redis.Redis, key_prefix: str) -> None:
    """The reads of one summary page, as a bare redis-py client would do them."""
    page = client.zrange(
        "events_cache:index:token", "+inf", "-inf", byscore=True, desc=True,
        offset=0, num=PAGE, withscores=True,
    )  # fmt: skip
    pipe = client.pipeline(transaction=False)
    minute = int(time.time()) // 60
    for member, _ in page:  # type: ignore[str-unpack]
        id_ = member.decode() if isinstance(member, bytes) else str(member)
        pipe.llen(f"{key_prefix}{id_}")
        pipe.llen(f"{key_prefix}{id_}:error")
        pipe.lindex(f"{key_prefix}{id_}:error", 0)
        pipe.hgetall(f"events_cache:limited:token#{id_}:all:{minute}")
        pipe.hgetall(f"events_cache:limited:token#{id_}:all:{minute - 1}")
    for n, reply in enumerate(pipe.execute()):
        if n % 5 == 2 and reply:
            orjson.loads(reply)


def f1(s: Settings, server: RedisServer, requests: int) -> list[Row]:
    """Summary p99 against the same reads through a bare redis-py pipeline."""
    server.client().flushall()
    daemon = Daemon(s.workdir / "daemon-F1", server.url, {})
    daemon.start()
    client = server.client()
    try:
        ids = [f"js.summary{n:05d}" for n in range(SUMMARY_IDS)]
        lines = [
            orjson.dumps({"namespace": "token", "id": i, "original": {"n": n}})
            for n, i in enumerate(ids)
        ]
        lines += [
            orjson.dumps({"namespace": "token", "id": i, "malformed": "x{", "error": "bad"})
            for i in ids[::7]
        ]
        bodies = [b"\n".join(lines[k : k + 1000]) for k in range(0, len(lines), 1000)]
        req_file = str(s.workdir / "f1.req")
        write_requests(req_file, [http_request("POST", "/v1/events", b) for b in bodies])
        _closed_loop(s, {"unix": daemon.socket_path}, req_file, 60, 1, len(bodies))
        wait_for(
            lambda: client.zcard("events_cache:index:token") == SUMMARY_IDS, 15, what="F1 index"
        )
        time.sleep(1.0)  # the trim pass over the 10,000 new lists is behind us
        params = {"namespace": "token", "limit": str(PAGE)}

        def subject() -> dict[str, Any]:
            conn = http.client.HTTPConnection("127.0.0.1", daemon.api_port, timeout=30)
            try:
                return _latencies(
                    requests, lambda: daemon.api("/api/v1/events/ids", params, conn=conn)
                )
            finally:
                conn.close()

        def baseline() -> dict[str, Any]:
            return _latencies(requests, lambda: _bare_summary(client, "events_cache:token#"))

        subjects, baselines = _alternate(s.rounds, subject, baseline)
    finally:
        daemon.stop()
        client.flushall()
    how = (
        f"{requests} sequential requests on one keep-alive connection; bare: redis-py ZRANGE "
        "BYSCORE REV LIMIT + one pipeline of LLEN x2, LINDEX, HGETALL x2 per id, orjson.loads "
        "of each newest error"
    )
    return [
        p99_row(f"F1 summary page of {PAGE} of {SUMMARY_IDS:,} ids: p99", subjects, baselines, how)
    ]


# -- T1: live-tail latency ------------------------------------------------------------------
def _tail_latencies(writer: Daemon, watchers: list[Watcher], events: int) -> list[float]:
    """Send `events` one at a time (every 5 ms); the latency of each at each watcher."""
    for w in watchers:
        activate(writer, w, token="js.tail")
    for n in range(events):
        writer.post_token("js.tail", orjson.dumps({"sent": time.time(), "n": n}))
        time.sleep(0.005)
    seen: list[float] = []
    for w in watchers:
        mine = 0
        while mine < events:
            try:
                arrived, _, data = w.events.get(timeout=10)
            except queue.Empty:
                break
            sent = data["event"]["original"].get("sent")
            if sent is not None:  # not a warm-up event
                seen.append(arrived - sent)
                mine += 1
    return seen


def t1(s: Settings, server: RedisServer, events: int) -> list[Row]:
    """Ingest on one daemon, watchers on another: time from send to arrival."""
    server.client().flushall()
    # size: the tail token sends 2 x `events` (and warm-ups) in one window, none limited
    writer = Daemon(
        s.workdir / "daemon-T1w", server.url, {"server": {"cache": {"events": {"size": 1_000_000}}}}
    )
    reader = Daemon(s.workdir / "daemon-T1r", server.url, {})
    writer.start()
    reader.start()
    rows = []
    try:
        for count in (1, WATCHERS):
            watchers = [
                Watcher(reader.api_port, "namespace=token&ids=js.tail", clock=time.time).start()
                for _ in range(count)
            ]
            latencies = _tail_latencies(writer, watchers, events)
            for w in watchers:
                w.close()
            if len(latencies) < events * count:
                raise RuntimeError(f"T1: {len(latencies)} of {events * count} events arrived")
            p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
            rows.append(
                Row(
                    f"T1 tail, {count} watcher{'s' if count > 1 else ''}: ingest-to-watcher p99",
                    p99, None, "ms", "< 1000", p99 < 1000,
                    notes=[
                        f"p50 {p50:.1f} ms, max {max(latencies) * 1000:.1f} ms over "
                        f"{events} events x {count} watcher(s); ingest on one daemon, the "
                        "streams on another, both on the run's Valkey"
                    ],
                )
            )  # fmt: skip
    finally:
        writer.stop()
        reader.stop()
    return rows


# -- T2: what open streams cost the ingest --------------------------------------------------
def _curl_watchers(port: int, count: int) -> list[subprocess.Popen[bytes]]:
    """Readers that keep up (curl into /dev/null), so the daemon pays for every frame."""
    url = f"http://127.0.0.1:{port}/api/v1/events/stream?namespace=token"
    return [
        subprocess.Popen(
            ["curl", "-sN", "-H", f"X-Admin-Token: {ADMIN_TOKEN}", url],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def t2(s: Settings, server: RedisServer) -> list[Row]:
    """P1b's load with no stream open and with WATCHERS streams open on the same daemon."""
    if shutil.which("curl") is None:
        raise RuntimeError("T2 needs curl")
    server.client().flushall()
    daemon = Daemon(
        s.workdir / "daemon-T2", server.url, {"server": {"cache": {"events": {"size": 1_000_000}}}}
    )
    daemon.start()
    bare = Bare(s.workdir / "bare-T2")
    bare.start()
    try:
        bodies = ev.token_bodies(1000, ev.token_ids(1000))
        req_file = str(s.workdir / "t2.req")
        write_requests(
            req_file, [http_request("POST", f"/v1/token/{t}/events", b) for t, b in bodies]
        )
        files = (req_file, "")
        measure = functools.partial(_measure_p1, s, "unix", files)
        base = functools.partial(measure, bare.pid, bare.socket_path, bare.port)
        idle = functools.partial(measure, daemon.pid, daemon.socket_path, daemon.ingest_port)

        def watched() -> dict[str, Any]:
            readers = _curl_watchers(daemon.api_port, WATCHERS)
            try:
                wait_for(
                    lambda: daemon.metric("events_cache_streams") == WATCHERS, 10, what="T2 streams"
                )
                time.sleep(1.5)  # every writer publishes from now on
                return idle()
            finally:
                for r in readers:
                    r.terminate()
                    r.wait(5)

        # Each round measures all three back to back (the order turned every other round),
        # so that a round's "added" CPU compares neighbours, not runs a minute apart.
        zero: list[dict[str, Any]] = []
        ten: list[dict[str, Any]] = []
        with_bare: list[dict[str, Any]] = []
        for n in range(s.rounds):
            order: list[tuple[list[dict[str, Any]], Callable[[], dict[str, Any]]]] = [
                (zero, idle),
                (ten, watched),
                (with_bare, base),
            ]
            for runs, measure_once in order[:: -1 if n % 2 else 1]:
                runs.append(measure_once())
    finally:
        daemon.stop()
        bare.stop()
        server.client().flushall()
    return _t2_rows(zero, ten, with_bare)


def _t2_rows(
    zero: list[dict[str, Any]], ten: list[dict[str, Any]], bare: list[dict[str, Any]]
) -> list[Row]:
    """Issue 24's T2: the bare handler's CPU per request over the CPU the watchers add per
    cached event (one event a request), each round against its own no-watcher round; and
    issue 19's rate ratio, kept beside it."""

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(x[key] for x in runs)

    added = [max(t["cpu_us"] - z["cpu_us"], 0.01) for t, z in zip(ten, zero, strict=True)]
    added_sys = [t["sys_us"] - z["sys_us"] for t, z in zip(ten, zero, strict=True)]
    costs = [b["cpu_us"] / a for b, a in zip(bare, added, strict=True)]
    cost = statistics.median(costs)
    p1b_zero = [z["rps"] / b["rps"] for z, b in zip(zero, bare, strict=True)]
    kept = [t["rps"] / z["rps"] for t, z in zip(ten, zero, strict=True)]
    ratio = statistics.median(kept)
    return [
        Row(
            f"T2 {WATCHERS} watchers: CPU added per cached event",
            statistics.median(added), med(bare, "cpu_us"), "us", ">= 4", cost >= 4,
            ratio=cost,
            spread=f"{min(costs):.2f}-{max(costs):.2f}" if len(costs) > 1 else "",
            notes=[
                f"ratio = the bare handler's CPU per request / the daemon CPU per request "
                f"that {WATCHERS} live-tail streams add (curl readers on the same daemon, "
                f"P1b's load over the Unix socket: one event a request, every event cached "
                f"and published); daemon CPU per request {med(zero, 'cpu_us'):.0f} us with "
                f"none, {med(ten, 'cpu_us'):.0f} us with {WATCHERS}; of the CPU added, "
                f"{statistics.median(added_sys):.0f} us in the kernel (system time: the "
                "streams' socket writes, the subscription's reads)",
            ],
        ),
        Row(
            f"T2 P1b unix with {WATCHERS} watchers / with none: req/s",
            med(ten, "rps"), med(zero, "rps"), "req/s", ">= 0.9", ratio >= 0.9,
            ratio=ratio,
            spread=f"{min(kept):.2f}-{max(kept):.2f}" if len(kept) > 1 else "",
            notes=[
                f"P1b with no watcher {statistics.median(p1b_zero):.2f} of the bare handler "
                f"({min(p1b_zero):.2f}-{max(p1b_zero):.2f})"
            ],
        ),
    ]  # fmt: skip
