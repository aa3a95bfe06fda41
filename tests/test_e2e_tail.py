"""The live tail end to end: Server-Sent Events from real daemons sharing one Redis.

A watcher on one daemon sees what another daemon caches; filters, the heartbeat, a slow
reader (gap event, bounded memory), the stream cap, shutdown with streams open, and that
the write path sends the same Redis commands as before while nobody watches.
"""

from __future__ import annotations

import http.client
import json
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from conftest import ADMIN_TOKEN, settle, wait_for

pytestmark = pytest.mark.e2e

STREAM = "/api/v1/events/stream"
NO_REFILL = {"server": {"cache": {"events": {"size": 1000, "time_window_sec": 3600}}}}


@dataclass
class Watcher:
    """A reader of one stream in a thread: events and comments as they arrive."""

    port: int
    params: str
    events: queue.Queue[tuple[float, str, dict[str, Any]]] = field(default_factory=queue.Queue)
    comments: list[float] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    conn: http.client.HTTPConnection | None = None

    def start(self) -> Watcher:
        threading.Thread(target=self._run, daemon=True).start()
        assert self.connected.wait(10), "stream did not connect"
        return self

    def close(self) -> None:
        """Hang up, as a reader that goes away does."""
        if self.conn is not None and self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        conn = self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", f"{STREAM}?{self.params}", headers={"X-Admin-Token": ADMIN_TOKEN})
            response = conn.getresponse()
            self.status = response.status
            self.connected.set()
            kind, data = "message", ""
            while line := response.readline():
                text = line.decode().rstrip("\r\n")
                if text.startswith(":"):
                    self.comments.append(time.monotonic())
                elif text.startswith("event: "):
                    kind = text[7:]
                elif text.startswith("data: "):
                    data += text[6:]
                elif not text and data:
                    self.events.put((time.monotonic(), kind, json.loads(data)))
                    kind, data = "message", ""
        except OSError:
            pass
        finally:
            self.connected.set()
            self.ended.set()
            conn.close()

    def take(self, count: int, timeout: float = 5) -> list[tuple[float, str, dict[str, Any]]]:
        return [self.events.get(timeout=timeout) for _ in range(count)]


def activate(sender: Any, watcher: Watcher, token: str = "warm-up") -> None:
    """Send until the watcher sees an event: every sidecar then publishes (the switch
    turns on within a second of the stream opening)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sender.post_token(token, '{"warm": true}')
        try:
            watcher.events.get(timeout=0.2)
        except queue.Empty:
            continue
        while not watcher.events.empty():  # drop the rest of the warm-up
            watcher.events.get()
        return
    raise AssertionError("the tail never became active")


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


def test_a_slow_reader_gets_a_gap_and_memory_stays_bounded(start_daemon: Any) -> None:
    daemon = start_daemon({**NO_REFILL, "sidecar": {"ingest": {"queue_size": 100_000}}})
    sock = socket.create_connection(("127.0.0.1", daemon.api_port))
    request = (
        f"GET {STREAM}?namespace=token HTTP/1.1\r\nHost: x\r\nX-Admin-Token: {ADMIN_TOKEN}\r\n\r\n"
    )
    sock.sendall(request.encode())
    probe = Watcher(daemon.api_port, "namespace=token").start()
    activate(daemon, probe)
    probe.close()
    rss_before = _rss_mb(daemon.process.pid)
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
    grown = _rss_mb(daemon.process.pid) - rss_before
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


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_stream_cap_answers_503_with_a_message(start_daemon: Any) -> None:
    daemon = start_daemon({"sidecar": {"api": {"max_streams": 2}}})
    Watcher(daemon.api_port, "namespace=token").start()
    Watcher(daemon.api_port, "namespace=destination").start()
    wait_for(lambda: daemon.metric("events_cache_streams") == 2)
    reply = daemon.api(STREAM, {"namespace": "token"})
    assert reply.status == 503 and "max_streams = 2" in reply.json["message"]


def test_shutdown_ends_open_streams_without_waiting_for_them(start_daemon: Any) -> None:
    daemon = start_daemon({"sidecar": {"shutdown": {"drain_seconds": 3}}})
    watchers = [Watcher(daemon.api_port, "namespace=token").start() for _ in range(3)]
    signalled = time.monotonic()
    daemon.signal(signal.SIGTERM)
    for watcher in watchers:
        assert watcher.ended.wait(5)
    assert time.monotonic() - signalled < 2, "streams end at the start of the stop"
    assert daemon.process.wait(15) == 0
    assert time.monotonic() - signalled < 3 + 5, "the drain did not wait for the streams"


def test_nobody_watching_changes_nothing_on_the_write_path(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    daemon = start_daemon(NO_REFILL)

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
