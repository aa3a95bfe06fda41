"""E1: the error signatures of one namespace (`GET /api/v1/errors`) with 1,000 ids x 100
errors cached, against the summary page (F1's request, `GET /api/v1/events/ids?limit=100`)
on the same daemon and cache; and the answer's bytes.

The errors: five kinds as destinations report them (Postgres, BigQuery, ClickHouse, a
refused connection, an HTTP timeout), every one with values of its own (columns, numbers,
addresses, URLs, request ids): five signatures, each with the 1,000 ids.
"""

from __future__ import annotations

import http.client
from typing import Any

import orjson

from bench.procs import Daemon
from bench.scenarios import (
    Row,
    Settings,
    _alternate,
    _closed_loop,
    _commandstats,
    _latencies,
    p99_row,
)
from tests.support.load import http_request, write_requests
from tests.support.scrape import counters, settle
from tests.support.servers import RedisServer, wait_for

IDS, PER_ID = 1_000, 100
_READS = tuple(
    f"cmdstat_{c}"
    for c in ("info", "zrange", "zscore", "zrevrange", "hget", "llen", "lindex", "hgetall", "ping")
)
LINES_PER_BODY = 1000
_KINDS = (
    'pq: column "col{n}" is of type numeric but expression is of type text',
    "googleapi: Error 400: Cannot convert value {n} to INT64 for field revenue of table "
    "p:d.events, invalid",
    "code: 53, message: Type mismatch in IN or VALUES section. Expected: UInt64. Got: "
    "String: value {n}",
    "dial tcp 10.0.{b}.{c}:5432: connect: connection refused",
    'Post "https://hooks.example.com/e/{n}": context deadline exceeded (Client.Timeout '
    "exceeded while awaiting headers)",
)


def _error(k: int) -> str:
    return _KINDS[k % len(_KINDS)].format(n=k, b=k // 256 % 256, c=k % 256)


def _lines(ids: int, per_id: int) -> list[bytes]:
    lines = []
    for k in range(ids * per_id):
        original = {"event_type": "purchase", "eventn_ctx": {"event_id": f"e1-{k}"}, "n": k}
        line = {"namespace": "destination", "id": f"dst{k % ids:04d}", "original": original}
        lines.append(orjson.dumps({**line, "error": _error(k)}))
    return lines


def e1(s: Settings, server: RedisServer, requests: int, smoke: bool) -> list[Row]:
    """Error signatures p99 against the summary page's, on one cache."""
    ids, per_id = (50, 10) if smoke else (IDS, PER_ID)
    server.client().flushall()
    settings = {"sidecar": {"ingest": {"queue_size": 500_000, "queue_bytes": 1 << 30}}}
    daemon = Daemon(s.workdir / "daemon-E1", server.url, settings)
    client = server.client()
    errors_params = {"namespace": "destination"}
    summary_params = {"namespace": "destination", "limit": "100"}
    try:
        daemon.start()
        lines = _lines(ids, per_id)
        bodies = [
            b"\n".join(lines[k : k + LINES_PER_BODY]) for k in range(0, len(lines), LINES_PER_BODY)
        ]
        req_file = str(s.workdir / "e1.req")
        write_requests(req_file, [http_request("POST", "/v1/events", b) for b in bodies])
        sent = len(bodies)
        del lines, bodies
        before = _commandstats(client)
        _closed_loop(s, {"unix": daemon.socket_path}, req_file, 300, 1, sent)  # each once
        settle(daemon, timeout=300)
        cached = counters(daemon.metrics())["cached_all"]
        if cached != ids * per_id:
            raise RuntimeError(f"E1: {cached:.0f} entries cached, not every one sent")

        def counted() -> bool:
            body = daemon.api("/api/v1/errors", errors_params).json
            return sum(sig["count"] for sig in body["signatures"]) == ids * per_id

        wait_for(counted, 30, what="E1: every error counted")
        after = _commandstats(client)
        # the write path's commands per cached error (LPUSH to both lists, the indexes,
        # the trims, the signatures' once-a-second flush), not the bench's own reads
        commands = sum(v - before.get(k, 0) for k, v in after.items() if k not in _READS)
        flushed = sum(
            after.get(k, 0) - before.get(k, 0)
            for k in (
                "cmdstat_zincrby",
                "cmdstat_zremrangebyrank",
                "cmdstat_hset",
                "cmdstat_expireat",
            )
        )
        reply = daemon.api("/api/v1/errors", errors_params)
        signatures = reply.json["signatures"]
        if reply.status != 200 or len(signatures) != len(_KINDS):
            raise RuntimeError(f"E1: {reply.status}, {len(signatures)} signatures")

        def timed(path: str, params: dict[str, str]) -> dict[str, Any]:
            conn = http.client.HTTPConnection("127.0.0.1", daemon.api_port, timeout=30)
            try:
                return _latencies(requests, lambda: daemon.api(path, params, conn=conn))
            finally:
                conn.close()

        subjects, baselines = _alternate(
            s.rounds,
            lambda: timed("/api/v1/errors", errors_params),
            lambda: timed("/api/v1/events/ids", summary_params),
        )
        answer_bytes, truncated = len(reply.raw), reply.headers.get("X-Events-Cache-Truncated")
        keys = sum(1 for _ in client.scan_iter(match="events_cache:errors:*", count=1000))
    finally:
        daemon.stop()
        client.flushall()
    how = (
        f"{requests} sequential requests on one keep-alive connection, {ids:,} destinations x "
        f"{per_id} errors cached ({len(_KINDS)} signatures, each with every id); baseline "
        "('bare'): the summary page, GET /api/v1/events/ids?namespace=destination&limit=100, "
        "on the same daemon and cache"
    )
    row = p99_row(
        f"E1 error signatures of {ids * per_id:,} errors: p99 / summary page p99",
        subjects,
        baselines,
        how,
    )
    row.notes.append(
        f"write path: {commands / (ids * per_id):.3f} Redis commands per cached error, "
        f"{flushed / (ids * per_id):.4f} of them the signatures' flush (ZINCRBY, "
        "ZREMRANGEBYRANK, HSET, EXPIREAT; ZADD is shared with the indexes)"
    )
    row.notes.append(
        f"answer {answer_bytes:,} bytes ({len(_KINDS)} signatures, 100 of {ids:,} ids each, "
        f"X-Events-Cache-Truncated: {truncated}); {keys} events_cache:errors:* keys"
    )
    return [row]
