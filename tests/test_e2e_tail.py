"""The live tail end to end: Server-Sent Events from real daemons sharing one Redis.

A watcher on one daemon sees what another daemon caches; filters, the heartbeat, a slow
reader (gap event, bounded memory), the stream cap, shutdown with streams open, and that
the write path sends the same Redis commands as before while nobody watches.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from typing import Any

import pytest
import redis

from tests.support.daemon import ADMIN_TOKEN
from tests.support.procstat import rss_mb
from tests.support.scrape import settle
from tests.support.servers import wait_for
from tests.support.sse import Watcher, activate

pytestmark = pytest.mark.e2e

STREAM = "/api/v1/events/stream"
NO_REFILL = {"server": {"cache": {"events": {"size": 1000, "time_window_sec": 3600}}}}


def test_events_cached_on_one_daemon_reach_a_watcher_on_another(start_daemon: Any) -> None:
    writer, reader = start_daemon(NO_REFILL), start_daemon(NO_REFILL)
    watcher = Watcher(reader.api_port, "namespace=token").start()
    assert watcher.status == 200
    activate(writer, watcher)
    latencies = []
    for n in range(20):
        sent = time.monotonic()
        writer.post_token("shop", json.dumps({"event_type": "view", "n": n}))
        ((arrived, kind, data),) = watcher.take(1)
        latencies.append(arrived - sent)
        assert kind == "entry"
        assert (data["namespace"], data["id"], data["collection"]) == ("token", "shop", "all")
        assert data["event"]["original"] == {"event_type": "view", "n": n}
        assert data["event"]["token_id"] == "shop" and data["event"]["uid"]
    assert max(latencies) < 1.0, latencies
    print(f"\nTAIL-LATENCY max={max(latencies) * 1000:.1f} ms")


def test_filters_by_ids_and_status(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    only_a = Watcher(daemon.api_port, "namespace=token&ids=a").start()
    errors = Watcher(daemon.api_port, "namespace=destination&status=error").start()
    activate(daemon, only_a, token="a")
    daemon.post_token("b", '{"id": "b"}')
    daemon.post_token("a", '{"id": "a"}')
    daemon.post_token("a", "broken")
    lines = [
        {"namespace": "destination", "id": "d", "original": {"n": 1}, "success": {"t": 1}},
        {"namespace": "destination", "id": "d", "original": {"n": 2}, "error": "boom"},
    ]
    daemon.post_ndjson(lines)
    seen = [data["event"] for _, _, data in only_a.take(2)]
    assert [e.get("original") or e.get("malformed") for e in seen] == [{"id": "a"}, "broken"]
    ((_, _, error),) = errors.take(1)
    assert (error["collection"], error["event"]["error"]) == ("error", "boom")
    time.sleep(0.5)
    assert only_a.events.empty() and errors.events.empty()


def test_heartbeat_comment_at_least_every_fifteen_seconds(start_daemon: Any) -> None:
    daemon = start_daemon()
    watcher = Watcher(daemon.api_port, "namespace=token").start()
    opened = time.monotonic()
    wait_for(lambda: len(watcher.comments) >= 2, timeout=16)  # ": tailing", then a ping
    assert watcher.comments[1] - opened <= 15


def test_a_slow_reader_gets_a_gap_and_memory_stays_bounded(start_daemon_process: Any) -> None:
    daemon = start_daemon_process({**NO_REFILL, "sidecar": {"ingest": {"queue_size": 100_000}}})
    sock = socket.create_connection(("127.0.0.1", daemon.api_port))
    request = (
        f"GET {STREAM}?namespace=token HTTP/1.1\r\nHost: x\r\nX-Admin-Token: {ADMIN_TOKEN}\r\n\r\n"
    )
    sock.sendall(request.encode())
    probe = Watcher(daemon.api_port, "namespace=token").start()
    activate(daemon, probe)
    probe.close()
    rss_before = rss_mb(daemon.pid)
    padding = "x" * 2000
    # 24 x 500 events of 2 KB: 24 MB the reader does not take, more than the kernel's
    # socket buffers (a few MB each way on loopback) and the stream's own 1 MB.
    for n in range(24):
        lines = [
            {"namespace": "token", "id": f"k{n}", "original": {"n": i, "pad": padding}}
            for i in range(500)
        ]
        assert daemon.post_ndjson(lines).json["accepted"] == 500
    settle(daemon, timeout=30)
    grown = rss_mb(daemon.pid) - rss_before
    assert grown < 60, f"RSS grew {grown:.0f} MB for a reader that reads nothing"
    sock.settimeout(10)
    received = b""
    while b"event: gap" not in received:
        chunk = sock.recv(1 << 20)
        assert chunk, "stream ended without a gap event"
        received += chunk
    gap = received[received.index(b"event: gap") :].split(b"\r\n")[1]
    assert json.loads(gap.removeprefix(b"data: "))["missed"] > 0
    sock.close()


def test_stream_cap_answers_503_with_a_message(start_daemon: Any) -> None:
    daemon = start_daemon({"sidecar": {"api": {"max_streams": 2}}})
    Watcher(daemon.api_port, "namespace=token").start()
    Watcher(daemon.api_port, "namespace=destination").start()
    wait_for(lambda: daemon.metric("events_cache_streams") == 2)
    reply = daemon.api(STREAM, {"namespace": "token"})
    assert reply.status == 503 and "max_streams = 2" in reply.json["message"]


def test_shutdown_ends_open_streams_without_waiting_for_them(
    start_daemon_process: Any,
) -> None:
    daemon = start_daemon_process({"sidecar": {"shutdown": {"drain_seconds": 3}}})
    watchers = [Watcher(daemon.api_port, "namespace=token").start() for _ in range(3)]
    signalled = time.monotonic()
    daemon.signal(signal.SIGTERM)
    for watcher in watchers:
        assert watcher.ended.wait(5)
    assert time.monotonic() - signalled < 2, "streams end at the start of the stop"
    assert daemon.process.wait(15) == 0
    assert time.monotonic() - signalled < 3 + 5, "the drain did not wait for the streams"


def test_nobody_watching_changes_nothing_on_the_write_path(
    start_daemon: Any, spawn_redis: Any, request: pytest.FixtureRequest
) -> None:
    # Command statistics are server-wide: a server of its own, or another xdist worker's
    # writes on the same Redis (make test-redis7) count in them.
    server = spawn_redis()
    daemon = start_daemon(NO_REFILL, url=server.url)
    redis_client: redis.Redis = server.client()
    request.addfinalizer(redis_client.close)

    def publishes() -> int:
        stats = redis_client.info("commandstats")
        return int(stats.get("cmdstat_publish", {}).get("calls", 0))

    def lpush_zadd() -> tuple[int, int]:
        stats = redis_client.info("commandstats")
        return (
            int(stats.get("cmdstat_lpush", {}).get("calls", 0)),
            int(stats.get("cmdstat_zadd", {}).get("calls", 0)),
        )

    redis_client.config_resetstat()
    daemon.post_ndjson(
        [{"namespace": "token", "id": "quiet", "original": {"n": n}} for n in range(10)]
    )
    settle(daemon)
    assert publishes() == 0 and lpush_zadd() == (1, 1), "one batch: one LPUSH, one ZADD"

    watcher = Watcher(daemon.api_port, "namespace=token").start()
    activate(daemon, watcher)
    assert publishes() > 0
    watcher.close()  # the daemon finds out at its next write to the stream
    daemon.post_token("quiet", '{"after": "close"}')
    wait_for(lambda: daemon.metric("events_cache_streams") == 0, timeout=15)
    time.sleep(5 + 1.5)  # the watchers key's TTL, and the writers' next look at it
    redis_client.config_resetstat()
    daemon.post_ndjson(
        [{"namespace": "token", "id": "quiet", "original": {"n": n}} for n in range(10)]
    )
    settle(daemon)
    assert publishes() == 0 and lpush_zadd() == (1, 1)


def test_sidecars_on_other_databases_of_the_same_redis_are_not_in_the_tail(
    start_daemon: Any, spawn_redis: Any
) -> None:
    """Pub/Sub channels are server-wide while keys are per database: two environments on
    databases 1 and 2 of one Redis each see only their own events in the tail."""
    server = spawn_redis()
    one = start_daemon(NO_REFILL, url=f"redis://127.0.0.1:{server.port}/1")
    two = start_daemon(NO_REFILL, url=f"redis://127.0.0.1:{server.port}/2")
    watch_one = Watcher(one.api_port, "namespace=token&ids=shared").start()
    watch_two = Watcher(two.api_port, "namespace=token&ids=shared").start()
    activate(one, watch_one, token="shared")
    activate(two, watch_two, token="shared")
    two.post_token("shared", '{"from": "two"}')
    one.post_token("shared", '{"from": "one"}')
    ((_, _, seen_one),) = watch_one.take(1)
    ((_, _, seen_two),) = watch_two.take(1)
    assert seen_one["event"]["original"] == {"from": "one"}
    assert seen_two["event"]["original"] == {"from": "two"}
    time.sleep(0.5)
    assert watch_one.events.empty() and watch_two.events.empty()
