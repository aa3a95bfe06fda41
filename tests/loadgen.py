"""A bounded ingest load for the fault suite, and the accounting it is checked against.

Threads post NDJSON batches (one id per request) over keep-alive TCP connections to the
daemon's loopback ingest listener at a fixed rate, for at most `max_s` seconds and
`max_requests` requests, and record each request's latency and answer. Afterwards
`Accounting` reconciles what the clients were told, the daemon's counters and Redis.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

REPORT_ENV = "EVENTS_CACHE_FAULT_REPORT"  # a file to append the measured figures to


@dataclass
class Sample:
    """One request: when it started (monotonic), how long it took, what came back."""

    at: float
    latency_s: float
    status: int  # 0: no answer (connection refused or reset)
    id: str = ""
    accepted: int = 0
    rate_limited: int = 0
    dropped: int = 0


@dataclass
class Load:
    """Posts `events_per_request` events per request, `rate` requests a second in all."""

    port: int
    rate: float = 100.0
    events_per_request: int = 5
    ids: int = 200
    threads: int = 2
    max_s: float = 120.0
    max_requests: int = 50_000
    prefix: str = "load"
    timeout_s: float = 10.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: int = 0

    def start(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> Load:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout_s + 5)
        return self

    def _next(self) -> int | None:
        with self._lock:
            if self._sent >= self.max_requests:
                return None
            self._sent += 1
            return self._sent

    def _run(self, worker: int) -> None:
        interval = self.threads / self.rate
        deadline = time.monotonic() + self.max_s
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            n = self._next()
            if n is None:
                break
            id_ = f"{self.prefix}-{n % self.ids}"
            body = "\n".join(
                json.dumps({"namespace": "token", "id": id_, "original": {"n": n, "i": i}})
                for i in range(self.events_per_request)
            ).encode()
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
            started = time.monotonic()
            sample = Sample(started, 0.0, 0, id_)
            try:
                conn.request("POST", "/v1/events", body=body)
                response = conn.getresponse()
                raw = response.read()
                sample.status = response.status
                if response.status == 202:
                    doc = json.loads(raw)
                    sample.accepted = doc["accepted"]
                    sample.rate_limited = doc["rate_limited"]
                    sample.dropped = doc["dropped"]
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
            sample.latency_s = time.monotonic() - started
            with self._lock:
                self.samples.append(sample)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    # -- what the clients saw ---------------------------------------------------------------
    def window(self, start: float = 0.0, end: float = float("inf")) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if start <= s.at < end]

    @property
    def accepted(self) -> int:
        return sum(s.accepted for s in self.window())

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.window())

    @property
    def rate_limited(self) -> int:
        return sum(s.rate_limited for s in self.window())


def percentile(values: Iterable[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_summary(samples: list[Sample]) -> dict[str, Any]:
    """p50/p99/max in milliseconds and how many answers were not 202."""
    latencies = [s.latency_s * 1000 for s in samples]
    return {
        "requests": len(samples),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies, default=0.0), 2),
        "not_202": sum(1 for s in samples if s.status != 202),
    }


# -- accounting ---------------------------------------------------------------------------


def counters(metrics: dict[str, float]) -> dict[str, float]:
    """The contract's counters from a /metrics scrape, summed over labels."""

    def total(name: str, match: Callable[[str], bool] = lambda _: True) -> float:
        return sum(v for k, v in metrics.items() if k.startswith(name + "{") and match(k))

    return {
        "received": total("events_cache_received_total"),
        "cached_all": total("events_cache_cached_total", lambda k: 'collection="all"' in k),
        "limited_all": total("events_cache_rate_limited_total", lambda k: 'collection="all"' in k),
        "dropped": total("events_cache_dropped_total"),
        "dropped_queue_full": metrics.get('events_cache_dropped_total{reason="queue_full"}', 0.0),
        "dropped_redis_error": metrics.get('events_cache_dropped_total{reason="redis_error"}', 0.0),
        "dropped_shutdown": metrics.get('events_cache_dropped_total{reason="shutdown"}', 0.0),
        "queue_depth": metrics.get("events_cache_queue_depth", 0.0),
        "redis_up": metrics.get("events_cache_redis_up", 0.0),
    }


def check_accounting(c: dict[str, float]) -> None:
    """received = cached{all} + rate_limited{all} + dropped + queue_depth."""
    assert c["received"] == c["cached_all"] + c["limited_all"] + c["dropped"] + c["queue_depth"], c


def redis_total(client: Any, prefix: str = "load", namespace: str = "token") -> int:
    """Entries in Redis in the all-events lists of the load's ids (standalone or cluster)."""
    total = 0
    pattern = f"events_cache:{namespace}#{prefix}-*"
    for key in client.scan_iter(match=pattern, count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        if not name.endswith(":error"):
            total += int(client.llen(name))
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(scenario: str, figures: dict[str, Any]) -> None:
    """Print the figures (visible with -s) and append them to $EVENTS_CACHE_FAULT_REPORT."""
    line = json.dumps({"scenario": scenario, **figures}, sort_keys=False)
    print(f"\nFAULT-REPORT {line}")
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> float:
    """Seconds until `predicate` is truthy; raises AssertionError after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except (OSError, redis.RedisError, http.client.HTTPException):
            pass
        time.sleep(interval)
    raise AssertionError(f"not within {timeout}s")
