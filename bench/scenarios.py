"""The scenarios of issue 4, each with its baseline measured in the same run."""

from __future__ import annotations

import functools
import gc
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from bench import events as ev
from bench.procs import Bare, Daemon, run_json, valkey_server
from tests.support.load import http_request, write_requests
from tests.support.procstat import cpu_s, percentile, rss_mb, user_system_s
from tests.support.scrape import delta
from tests.support.servers import RedisServer, wait_for

HERE = Path(__file__).resolve().parent
LUA = HERE / "post.lua"
CONNECTIONS = 16


@dataclass
class Row:
    """One figure of the table."""

    figure: str
    value: float
    baseline: float | None
    unit: str
    target: str
    met: bool | None
    ratio: float | None = None
    spread: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Settings:
    """How long and how often each scenario runs."""

    seconds: float  # one throughput measurement
    rounds: int  # subject and baseline alternate this many times
    p3_events: int
    p4_requests: tuple[int, int, int]  # per ids count 1, 10, 50
    p5_seconds: float
    workdir: Path
    b1_seconds: float = 10.0  # each phase of B1: idle, then under hostile bodies
    s1_requests: int = 20_000  # S1: wrong-token requests per class


# -- load generators ---------------------------------------------------------------------
def _closed_loop(
    s: Settings,
    target: dict[str, Any],
    requests_file: str,
    seconds: float,
    connections: int = CONNECTIONS,
    max_requests: int = 10_000_000,
) -> dict[str, Any]:
    spec = {
        "target": target,
        "requests": requests_file,
        "seconds": seconds,
        "connections": connections,
        "max_requests": max_requests,
    }
    spec_path = s.workdir / "closed-loop.json"
    spec_path.write_text(json.dumps(spec))
    return run_json(
        [sys.executable, "-m", "tests.support.load", str(spec_path)], timeout=seconds + 60
    )


def _wrk(
    s: Settings, port: int, wrk_file: str, seconds: float, connections: int = CONNECTIONS
) -> dict[str, Any]:
    duration = max(1, round(seconds))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        env={**os.environ, "BENCH_WRK_FILE": wrk_file},
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-1000:]} {out.stderr[-1000:]}")
    r = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(r[k] for k in ("status_errors", "connect_errors", "read_errors", "timeouts"))
    if errors:
        raise RuntimeError(f"wrk saw errors: {r}")
    seconds_run = r["duration_us"] / 1e6
    return {
        "requests": r["requests"],
        "seconds": seconds_run,
        "rps": r["requests"] / seconds_run,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
    }


def _check_202(result: dict[str, Any], what: str) -> None:
    statuses = result.get("statuses", {"202": result["requests"]})
    if set(statuses) - {"202"}:
        raise RuntimeError(f"{what}: unexpected statuses {statuses}")


def _alternate(
    rounds: int, subject: Callable[[], dict[str, Any]], baseline: Callable[[], dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run subject and baseline in turn, so both see the same machine."""
    subjects, baselines = [], []
    for n in range(rounds):
        if n % 2 == 0:
            subjects.append(subject())
            baselines.append(baseline())
        else:
            baselines.append(baseline())
            subjects.append(subject())
    return subjects, baselines


def _ratio_row(
    figure: str,
    unit: str,
    key: str,
    subjects: list[dict[str, Any]],
    baselines: list[dict[str, Any]],
    minimum: float | None,
) -> Row:
    """The median of subject/baseline over the rounds; no target when `minimum` is None."""
    ratios = [a[key] / b[key] for a, b in zip(subjects, baselines, strict=True)]
    ratio = statistics.median(ratios)
    return Row(
        figure=figure,
        unit=unit,
        value=statistics.median(x[key] for x in subjects),
        baseline=statistics.median(x[key] for x in baselines),
        ratio=ratio,
        target="-" if minimum is None else f">= {minimum}",
        met=None if minimum is None else ratio >= minimum,
        spread=f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "",
    )


# -- P1 / P1b ----------------------------------------------------------------------------
def p1(s: Settings, server: RedisServer) -> list[Row]:
    """Single-event ingest vs a bare aiohttp handler, Unix socket and TCP; 1 and 1000 ids."""
    rows: list[Row] = []
    bare = Bare(s.workdir / "bare")
    bare.start()
    try:
        # P1's rate ratio saturates at the load generator: its target is P1cpu's now.
        for name, ids, size, minimum in (("P1", 1, 100, None), ("P1b", 1000, 1_000_000, 0.6)):
            server.client().flushall()
            daemon = Daemon(
                s.workdir / f"daemon-{name}",
                server.url,
                {"server": {"cache": {"events": {"size": size}}}},
            )
            daemon.start()
            try:
                rows += _p1_workload(s, name, ids, minimum, daemon, bare)
            finally:
                daemon.stop()
    finally:
        bare.stop()
    return rows


def p1_files(s: Settings, name: str, ids: int) -> tuple[str, str]:
    """P1's one-event posts for `ids` tokens: the closed-loop generator's file, wrk's."""
    bodies = ev.token_bodies(max(ids, 200), ev.token_ids(ids))
    requests = [http_request("POST", f"/v1/token/{t}/events", b) for t, b in bodies]
    req_file = str(s.workdir / f"{name}.req")
    write_requests(req_file, requests)
    wrk_file = s.workdir / f"{name}.wrk"
    wrk_file.write_bytes(
        b"".join(f"/v1/token/{t}/events\t".encode() + b + b"\n" for t, b in bodies)
    )
    return req_file, str(wrk_file)


def _p1_workload(
    s: Settings, name: str, ids: int, minimum: float | None, daemon: Daemon, bare: Bare
) -> list[Row]:
    rows = []
    files = p1_files(s, name, ids)
    for transport in ("unix", "tcp"):
        subjects, baselines = _alternate(
            s.rounds,
            functools.partial(
                _measure_p1, s, transport, files, daemon.pid, daemon.socket_path, daemon.ingest_port
            ),
            functools.partial(
                _measure_p1, s, transport, files, bare.pid, bare.socket_path, bare.port
            ),
        )
        for r in subjects + baselines:
            _check_202(r, f"{name} {transport}")
        label = f"{name} {'1 id, limited' if ids == 1 else f'{ids} ids, cached'}, {transport}"
        row = _ratio_row(f"{label}: req/s", "req/s", "rps", subjects, baselines, minimum)

        def med(runs: list[dict[str, Any]], key: str) -> float:
            return statistics.median(x[key] for x in runs)

        row.notes.append(
            f"p50/p99 {med(subjects, 'p50_ms'):.2f}/{med(subjects, 'p99_ms'):.2f} ms "
            f"(bare {med(baselines, 'p50_ms'):.2f}/{med(baselines, 'p99_ms'):.2f}); "
            f"{CONNECTIONS} connections, "
            f"{'python -m tests.support.load' if transport == 'unix' else 'wrk -t1'}"
        )
        d_us, b_us = med(subjects, "cpu_us"), med(baselines, "cpu_us")
        row.notes.append(
            f"server CPU per request: daemon {d_us:.0f} us, bare {b_us:.0f} us "
            f"(bare/daemon {b_us / d_us:.2f}); server busy: daemon "
            f"{med(subjects, 'busy'):.0%}, bare {med(baselines, 'busy'):.0%}"
        )
        rows.append(row)
    return rows


def _measure_p1(
    s: Settings, transport: str, files: tuple[str, str], pid: int, unix: str, port: int
) -> dict[str, Any]:
    (u0, s0), t0 = user_system_s(pid), time.perf_counter()
    if transport == "unix":
        r = _closed_loop(s, {"unix": unix}, files[0], s.seconds)
    else:
        r = _wrk(s, port, files[1], s.seconds)
    u1, s1 = user_system_s(pid)
    used = u1 - u0 + s1 - s0
    busy = used / (time.perf_counter() - t0)
    per_request = 1e6 / max(r["requests"], 1)
    return {
        **r,
        "cpu_us": used * per_request,
        "sys_us": (s1 - s0) * per_request,
        "busy": busy,
    }


# -- P2 ----------------------------------------------------------------------------------
def _ndjson_bodies(ids: int, lines_per_body: int, bodies: int, seed: int = ev.SEED) -> list[bytes]:
    lines = ev.ndjson_lines(lines_per_body * bodies, ev.token_ids(ids), seed)
    return [b"\n".join(lines[i : i + lines_per_body]) for i in range(0, len(lines), lines_per_body)]


def p2(s: Settings, server: RedisServer) -> list[Row]:
    """Batched NDJSON ingest with >= 95 % rate limited vs parse-only."""
    server.client().flushall()
    lines_per_body, ids = 500, 2000
    bodies = _ndjson_bodies(ids, lines_per_body, 20)
    req_file = str(s.workdir / "p2.req")
    write_requests(req_file, [http_request("POST", "/v1/events", b) for b in bodies])
    raw_file = str(s.workdir / "p2.raw")
    write_requests(raw_file, bodies)
    daemon = Daemon(
        s.workdir / "daemon-P2", server.url, {"server": {"cache": {"events": {"size": 10}}}}
    )
    daemon.start()
    try:
        # Use up the first buckets: the steady state is the limited one.
        _closed_loop(
            s, {"unix": daemon.socket_path}, req_file, 10, connections=2, max_requests=len(bodies)
        )
        before = daemon.metrics()

        def subject() -> dict[str, Any]:
            c0 = cpu_s(daemon.pid)
            r = _closed_loop(s, {"unix": daemon.socket_path}, req_file, s.seconds, connections=2)
            _check_202(r, "P2")
            events = max(r["requests"] * lines_per_body, 1)
            return {
                **r,
                "eps": r["rps"] * lines_per_body,
                "cpu_us": (cpu_s(daemon.pid) - c0) / events * 1e6,
            }

        def baseline() -> dict[str, Any]:
            return run_json(
                [sys.executable, "-m", "bench.parse_baseline", raw_file, str(s.seconds)]
            )

        subjects, baselines = _alternate(s.rounds, subject, baseline)
        after = daemon.metrics()
    finally:
        daemon.stop()
    received = delta(after, before, "events_cache_received_total")
    limited = after.get(
        'events_cache_rate_limited_total{cache_namespace="token",collection="all"}', 0
    )
    limited -= before.get(
        'events_cache_rate_limited_total{cache_namespace="token",collection="all"}', 0
    )
    row = _ratio_row(
        f"P2 NDJSON x{lines_per_body}, {ids} ids, limited: events/s",
        "events/s",
        "eps",
        subjects,
        baselines,
        0.5,
    )
    assert row.baseline is not None
    row.notes.append(
        f"{limited / max(received, 1):.1%} rate limited; daemon CPU "
        f"{statistics.median(x['cpu_us'] for x in subjects):.1f} us/event, baseline "
        f"{1e6 / row.baseline:.1f} us/event (orjson.loads per line, one process)"
    )
    return [row]


# -- P3 / P3b ----------------------------------------------------------------------------
def _commandstats(client: redis.Redis) -> dict[str, int]:
    return {k: int(v["calls"]) for k, v in client.info("commandstats").items()}


def _redis_benchmark(port: int, size: int, requests: int) -> float:
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            "lpush",
            "-d",
            str(size),
            "-P",
            "100",
            "-c",
            "4",
            "-n",
            str(requests),
            "--csv",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in out.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0].startswith("LPUSH"):
            return float(cells[1])
    raise RuntimeError(f"redis-benchmark printed no LPUSH figure: {out.stdout} {out.stderr}")


def p3(s: Settings, server: RedisServer) -> list[Row]:
    """End-to-end caching (no limiting) vs redis-benchmark pipelined LPUSH; commands/event."""
    lines_per_body, ids = 500, 50
    id_list = ev.token_ids(ids)
    bodies = _ndjson_bodies(ids, lines_per_body, 20, seed=ev.SEED + 3)
    req_file = str(s.workdir / "p3.req")
    write_requests(req_file, [http_request("POST", "/v1/events", b) for b in bodies])
    client = server.client()
    keys = [f"events_cache:token#{i}" for i in id_list]
    sample = orjson.loads(bodies[0].split(b"\n")[0])
    entry_size = len(
        orjson.dumps(
            {
                "original": orjson.dumps(sample["original"]).decode(),
                "timestamp": "2024-05-01T12:00:00.000000Z",
                "uid": "0" * 36,
                "token_id": sample["id"],
            }
        )
    )
    n_requests = max(1, s.p3_events // lines_per_body)
    daemon = Daemon(
        s.workdir / "daemon-P3",
        server.url,
        {
            "server": {"cache": {"events": {"size": 1_000_000}}},
            "sidecar": {"ingest": {"queue_size": 1_000_000}},
        },
    )
    daemon.start()
    try:

        def subject() -> dict[str, Any]:
            client.flushall()
            before_m = daemon.metrics()
            before_c = _commandstats(client)
            c0 = cpu_s(daemon.pid)
            started = time.perf_counter()
            r = _closed_loop(
                s,
                {"unix": daemon.socket_path},
                req_file,
                120,
                connections=2,
                max_requests=n_requests,
            )
            _check_202(r, "P3")
            ingest_s = time.perf_counter() - started
            sent = r["requests"] * lines_per_body

            def all_in() -> bool:
                pipe = client.pipeline(transaction=False)
                for k in keys:
                    pipe.llen(k)
                return sum(pipe.execute()) >= sent

            wait_for(all_in, timeout=300, what="every event in Redis")
            elapsed = time.perf_counter() - started
            cpu_used = cpu_s(daemon.pid) - c0
            cpu = cpu_used / elapsed
            after_c = _commandstats(client)
            after_m = daemon.metrics()
            ours = {"cmdstat_info", "cmdstat_llen", "cmdstat_flushall"}
            commands = sum(v - before_c.get(k, 0) for k, v in after_c.items() if k not in ours)
            pipelines = delta(after_m, before_m, "events_cache_redis_write_seconds_count")
            return {
                "eps": sent / elapsed,
                "ingest_eps": sent / ingest_s,
                "events": sent,
                "commands": commands,
                "pipelines": pipelines,
                "cpu": cpu,
                "cpu_us": cpu_used / sent * 1e6,
            }

        def baseline() -> dict[str, Any]:
            client.flushall()
            return {"eps": _redis_benchmark(server.port, entry_size, max(s.p3_events, 20_000))}

        subjects, baselines = _alternate(s.rounds, subject, baseline)
    finally:
        daemon.stop()
        client.flushall()
    row = _ratio_row(
        f"P3 end-to-end, {ids} ids, cached: events/s", "events/s", "eps", subjects, baselines, 0.5
    )
    row.notes.append(
        f"until LLEN shows all; ingest alone "
        f"{statistics.median(x['ingest_eps'] for x in subjects):,.0f}/s; daemon CPU "
        f"{statistics.median(x['cpu'] for x in subjects):.0%}, "
        f"{statistics.median(x['cpu_us'] for x in subjects):.1f} us/event; baseline "
        f"redis-benchmark LPUSH -d {entry_size} -P 100 -c 4"
    )
    per_event = statistics.median(x["commands"] / x["events"] for x in subjects)
    per_trip = statistics.median(x["events"] / max(x["pipelines"], 1) for x in subjects)
    return [
        row,
        Row(
            "P3b Redis commands per cached event",
            per_event,
            None,
            "cmd/event",
            "<= 0.2",
            per_event <= 0.2,
            notes=["INFO commandstats delta; the original: >= 1"],
        ),
        Row(
            "P3b cached events per write round trip",
            per_trip,
            None,
            "events",
            ">= 100",
            per_trip >= 100,
            notes=["cached / write pipelines"],
        ),
    ]


# -- P4 ----------------------------------------------------------------------------------
def _bare_query(client: redis.Redis, keys: list[str], limit: int, nested: bool = True) -> None:
    """The LRANGEs in one pipeline and the JSON decoding of what they return.

    `nested`: also decode each entry's `original`, the event it carries as JSON text
    (Jitsu's entries double-encode it): the decoding any reader of the events needs.
    Without it, only the entries themselves are decoded (the strict variant).
    """
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.lrange(k, 0, limit - 1)
    loads = orjson.loads
    for entries in pipe.execute():
        for raw in entries:
            entry = loads(raw)
            if nested:
                loads(entry["original"])


def p4(s: Settings, server: RedisServer) -> list[Row]:
    """Query p50/p99 for 1, 10, 50 ids x limit=100 vs a bare pipeline of the LRANGEs."""
    server.client().flushall()
    id_list = ev.token_ids(50)
    bodies = _ndjson_bodies(50, 500, 10, seed=ev.SEED + 4)  # 5000 events, 100 per id
    daemon = Daemon(
        s.workdir / "daemon-P4", server.url, {"server": {"cache": {"events": {"size": 100}}}}
    )
    daemon.start()
    client = server.client()
    rows = []
    try:
        req_file = str(s.workdir / "p4.req")
        write_requests(req_file, [http_request("POST", "/v1/events", b) for b in bodies])
        _closed_loop(
            s, {"unix": daemon.socket_path}, req_file, 60, connections=1, max_requests=len(bodies)
        )
        keys = [f"events_cache:token#{i}" for i in id_list]
        wait_for(
            lambda: all(client.llen(k) >= 100 for k in keys), timeout=15, what="P4 data in Redis"
        )
        for n_ids, n_requests in zip((1, 10, 50), s.p4_requests, strict=True):
            params = {"namespace": "token", "ids": ",".join(id_list[:n_ids]), "limit": "100"}
            reply = daemon.api("/api/v1/events/cache", params)
            if reply.status != 200 or reply.json["response_events"] != 100 * n_ids:
                raise RuntimeError(f"P4 query failed: {reply.status} {reply.raw[:200]!r}")

            def subject(params: dict[str, str] = params, n: int = n_requests) -> dict[str, Any]:
                conn = http.client.HTTPConnection("127.0.0.1", daemon.api_port, timeout=30)
                try:  # one keep-alive connection, as a dashboard or script would hold
                    cpu = cpu_s(daemon.pid)
                    result = _latencies(
                        n, lambda: daemon.api("/api/v1/events/cache", params, conn=conn)
                    )
                    return {**result, "cpu_ms": (cpu_s(daemon.pid) - cpu) / n * 1000}
                finally:
                    conn.close()

            def baseline(k: list[str] = keys[:n_ids], n: int = n_requests) -> dict[str, Any]:
                strict = _latencies(n, lambda: _bare_query(client, k, 100, nested=False))
                cpu = time.process_time()
                result = _latencies(n, lambda: _bare_query(client, k, 100))
                return {
                    **result,
                    "cpu_ms": (time.process_time() - cpu) / n * 1000,
                    "strict_p99_ms": strict["p99_ms"],
                }

            subjects, baselines = _alternate(s.rounds, subject, baseline)
            strict = statistics.median(
                a["p99_ms"] / b["strict_p99_ms"] for a, b in zip(subjects, baselines, strict=True)
            )
            cpu_d = statistics.median(x["cpu_ms"] for x in subjects)
            cpu_b = statistics.median(x["cpu_ms"] for x in baselines)
            rows.append(
                p99_row(
                    f"P4 query {n_ids} id(s) x limit=100: p99",
                    subjects,
                    baselines,
                    f"{n_requests} sequential requests on one keep-alive connection; bare: "
                    "redis-py pipeline of the LRANGEs, orjson.loads of each entry and of its "
                    f"original; against a bare decoding only the entries (strict): {strict:.2f}x; "
                    f"CPU per request: daemon {cpu_d:.2f} ms, bare {cpu_b:.2f} ms (its own "
                    f"process, without Valkey's) = {cpu_d / cpu_b:.2f}x",
                )
            )
    finally:
        daemon.stop()
        client.flushall()
    return rows


def p99_row(
    figure: str, subjects: list[dict[str, Any]], baselines: list[dict[str, Any]], how: str
) -> Row:
    """A latency figure: the median p99 of the subject over the baseline's, target 2x."""
    ratios = [a["p99_ms"] / b["p99_ms"] for a, b in zip(subjects, baselines, strict=True)]
    ratio = statistics.median(ratios)
    p50 = statistics.median(x["p50_ms"] for x in subjects)
    b50 = statistics.median(x["p50_ms"] for x in baselines)
    stalls = "/".join(f"{x['max_ms'] / x['p50_ms']:.1f}" for x in subjects if x["p50_ms"])
    return Row(
        figure,
        statistics.median(x["p99_ms"] for x in subjects),
        statistics.median(x["p99_ms"] for x in baselines),
        "ms",
        "<= 2.0",
        ratio <= 2.0,
        ratio=ratio,
        spread=f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "",
        notes=[
            f"p50 {p50:.2f} ms (bare {b50:.2f}); slowest request per round {stalls}x its "
            f"round's p50; {how}"
        ],
    )


def _latencies(n: int, call: Callable[[], Any]) -> dict[str, Any]:
    """`n` calls, timed one by one. The bench process's own heap (request files, ids,
    events) is frozen meanwhile: its full collections (30-70 ms each) otherwise land in
    the subject's and the baseline's latencies alike, wherever they fall."""
    times = []
    gc.collect()
    gc.freeze()
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    finally:
        gc.unfreeze()
    return {
        "p50_ms": percentile(times, 50) * 1000,
        "p99_ms": percentile(times, 99) * 1000,
        "max_ms": max(times, default=0.0) * 1000,
    }


# -- P5 ----------------------------------------------------------------------------------
def p5(s: Settings, p3_eps: float | None) -> list[Row]:
    """RSS under overload with Redis stopped: bounded and flat."""
    own = valkey_server(s.workdir / "redis-P5")
    own.start()
    daemon = Daemon(
        s.workdir / "daemon-P5", own.url, {"server": {"cache": {"events": {"size": 1_000_000}}}}
    )
    try:
        daemon.start()
    finally:
        own.kill()  # Redis goes away; the writers can write nothing from now on
    bodies = _ndjson_bodies(1000, 500, 20, seed=ev.SEED + 5)
    req_file = str(s.workdir / "p5.req")
    write_requests(req_file, [http_request("POST", "/v1/events", b) for b in bodies])
    spec = {
        "target": {"unix": daemon.socket_path},
        "requests": req_file,
        "seconds": s.p5_seconds,
        "connections": 2,
    }
    spec_path = s.workdir / "closed-loop-p5.json"
    spec_path.write_text(json.dumps(spec))
    samples: list[tuple[float, float]] = []
    try:
        gen = subprocess.Popen(
            [sys.executable, "-m", "tests.support.load", str(spec_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        started = time.perf_counter()
        while gen.poll() is None:
            samples.append((time.perf_counter() - started, rss_mb(daemon.pid)))
            time.sleep(0.25)
        out, _ = gen.communicate(timeout=30)
        result = json.loads(out.strip().splitlines()[-1])
        metrics = daemon.metrics()
    finally:
        daemon.stop()
    offered = result["rps"] * 500
    peak = max(r for _, r in samples)
    steady = [x for x in samples if x[0] >= s.p5_seconds / 6] or samples
    slope = _slope(steady) * 60  # MB per minute
    dropped = metrics.get('events_cache_dropped_total{reason="queue_full"}', 0.0)
    flat = abs(slope) <= max(2.0, 0.05 * peak)
    notes = [
        f"{s.p5_seconds:.0f} s, offered {offered:,.0f} events/s with Redis stopped "
        f"(writers' capacity 0{f'; {offered / p3_eps:.1f}x P3' if p3_eps else ''}); "
        f"{dropped:,.0f} dropped queue_full; slope {slope:+.2f} MB/min after the first "
        f"{s.p5_seconds / 6:.0f} s"
    ]
    return [
        Row(
            "P5 RSS under overload, Redis stopped: max",
            peak,
            None,
            "MB",
            "<= 100 and flat",
            peak <= 100 and flat,
            notes=notes,
        )
    ]


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0
