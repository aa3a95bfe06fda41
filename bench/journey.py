"""J1: one event's journey (`GET /api/v1/events/journey`) with 10,000 ids x 100 entries
cached, against a bare redis-py client doing the same reads.

The cache: 8,000 API keys and 2,000 destinations, 100 entries each, every entry with its
own `eventn_ctx.event_id`; the first 50,000 token events also went to four destinations
each (a success, an error, a skip, a success). A look-up asks for one of those: the
journey index names five lists (one API key, four destinations) among the 10,000.
"""

from __future__ import annotations

import http.client
import random
import time
import zlib
from typing import Any

import orjson
import redis

from bench.procs import Daemon
from bench.scenarios import Row, Settings, _alternate, _closed_loop, _latencies, p99_row
from daemon.store.journey import JOURNEY_BUCKET_S, JOURNEY_SHARDS, MAX_JOURNEY_LISTS
from tests.support.load import http_request, write_requests
from tests.support.scrape import counters, settle
from tests.support.servers import RedisServer

TOKENS, DESTINATIONS, PER_ID = 8_000, 2_000, 100
FANOUT = 4  # destinations per journeyed event
RETENTION_S = 3600  # the daemon's default sidecar.journey.retention_minutes
LINES_PER_BODY = 1000
_OUTCOMES: tuple[dict[str, Any], ...] = (
    {"success": {"table": "events", "record": [{"field": "n", "type": "int", "value": 1}]}},
    {"error": 'pq: column "revenue" is of type numeric but expression is of type text'},
    {"skip": "filtered by the destination's rule"},
    {"success": {"url": "https://hooks.example.com/e", "method": "POST", "body": "{}"}},
)


def _event_id(n: int) -> str:
    return f"ev-{n:07d}-4b1e-9a57-2f1e4b0c1d2e"


def _lines(tokens: int, destinations: int, per_id: int) -> list[bytes]:
    """Token entries first (each its own event id), then the destinations' outcomes."""
    lines = []
    for n in range(tokens * per_id):
        original = {"event_type": "pageview", "eventn_ctx": {"event_id": _event_id(n)}, "n": n}
        lines.append(orjson.dumps({"namespace": "token", "id": f"js.j{n % tokens:05d}", **{
            "original": original}}))  # fmt: skip
    for k in range(destinations * per_id):
        n = k // FANOUT  # event n went to FANOUT destinations in a row
        original = {"event_type": "pageview", "eventn_ctx": {"event_id": _event_id(n)}, "n": n}
        line = {"namespace": "destination", "id": f"dst{k % destinations:04d}"}
        lines.append(orjson.dumps({**line, "original": original, **_OUTCOMES[k % FANOUT]}))
    return lines


def _bare_journey(client: redis.Redis, event_id: str, now: float) -> int:
    """The reads of one journey, as a bare redis-py client would do them: one ZRANGEBYLEX
    per window kept (on the key of the id's shard), one LRANGE per list named, the
    matching entries parsed."""
    first = int((now - RETENTION_S) // JOURNEY_BUCKET_S)
    last = int(now // JOURNEY_BUCKET_S) + 1
    shard = zlib.crc32(event_id.encode()) % JOURNEY_SHARDS
    pipe = client.pipeline(transaction=False)
    for bucket in range(last, first - 1, -1):
        pipe.zrangebylex(
            f"events_cache:journey:{bucket}:{shard}",
            f"[{event_id}\0",
            f"({event_id}\x01",
            start=0,
            num=MAX_JOURNEY_LISTS + 1,
        )
    keys: dict[str, None] = {}
    for members in pipe.execute():
        for member in members:
            _, namespace, collection, id_ = member.decode().split("\0", 3)
            suffix = ":error" if collection == "e" else ""
            keys[f"events_cache:{namespace}#{id_}{suffix}"] = None
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.lrange(key, 0, PER_ID - 1)
    needle, found = event_id.encode(), 0
    for entries in pipe.execute():
        for raw in entries:
            if needle in raw:
                orjson.loads(orjson.loads(raw)["original"])
                found += 1
    return found


def j1(s: Settings, server: RedisServer, requests: int, smoke: bool) -> list[Row]:
    """Journey p99 against the same reads through a bare redis-py pipeline."""
    tokens, destinations, per_id = (80, 20, 10) if smoke else (TOKENS, DESTINATIONS, PER_ID)
    server.client().flushall()
    settings = {"sidecar": {"ingest": {"queue_size": 2_000_000, "queue_bytes": 1 << 30}}}
    daemon = Daemon(s.workdir / "daemon-J1", server.url, settings)
    client = server.client()
    try:
        daemon.start()
        lines = _lines(tokens, destinations, per_id)
        bodies = [
            b"\n".join(lines[k : k + LINES_PER_BODY]) for k in range(0, len(lines), LINES_PER_BODY)
        ]
        req_file = str(s.workdir / "j1.req")
        write_requests(req_file, [http_request("POST", "/v1/events", b) for b in bodies])
        sent = len(bodies)
        del lines, bodies
        _closed_loop(s, {"unix": daemon.socket_path}, req_file, 300, 1, sent)  # each once
        settle(daemon, timeout=300)
        cached = counters(daemon.metrics())["cached_all"]
        if cached != (tokens + destinations) * per_id:
            raise RuntimeError(f"J1: {cached:.0f} entries cached, not every one sent")
        journeyed = destinations * per_id // FANOUT
        rng = random.Random(22)
        asked = [_event_id(rng.randrange(journeyed)) for _ in range(requests)]

        def subject() -> dict[str, Any]:
            conn = http.client.HTTPConnection("127.0.0.1", daemon.api_port, timeout=30)
            ids = iter(asked)
            try:
                return _latencies(
                    requests,
                    lambda: daemon.api(
                        "/api/v1/events/journey", {"event_id": next(ids)}, conn=conn
                    ),
                )
            finally:
                conn.close()

        def baseline() -> dict[str, Any]:
            ids = iter(asked)
            return _latencies(requests, lambda: _bare_journey(client, next(ids), time.time()))

        reply = daemon.api("/api/v1/events/journey", {"event_id": asked[0]})
        shape = (len(reply.json["received"]), len(reply.json["destinations"]))
        if reply.status != 200 or shape != (1, FANOUT):
            raise RuntimeError(f"J1: the journey of {asked[0]} is {reply.status} {shape}")
        if _bare_journey(client, asked[0], time.time()) != 1 + FANOUT:
            raise RuntimeError("J1: the bare reads do not find the journey")
        subjects, baselines = _alternate(s.rounds, subject, baseline)
    finally:
        daemon.stop()
        client.flushall()
    how = (
        f"{requests} sequential look-ups of random journeyed ids (1 API key + {FANOUT} "
        f"destinations) on one keep-alive connection, {tokens + destinations:,} ids x "
        f"{per_id} entries cached; bare: redis-py, one pipeline of ZRANGEBYLEX per window "
        "kept, one of LRANGE per list named, orjson.loads of the matching originals"
    )
    row = p99_row(
        f"J1 journey of 1 of {(tokens + destinations) * per_id:,} entries: p99",
        subjects,
        baselines,
        how,
    )
    p99 = row.value or 0.0
    row.notes.append(f"p99 {p99:.1f} ms: {'within' if p99 <= 50 else 'OVER'} the 50 ms note")
    return [row]
