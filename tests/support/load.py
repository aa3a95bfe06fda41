"""Two load generators with different jobs.

- `PacedLoad` (the fault suite): threads post NDJSON batches (one id per request) over
  keep-alive TCP connections at a fixed rate, for at most `max_s` seconds and
  `max_requests` requests, recording each request's latency and answer, so a test can
  say what the clients saw during an outage.
- `closed_loop` (the bench): as fast as the server answers, each of `connections`
  keep-alive connections (Unix socket or TCP, raw sockets and epoll) sends its next
  request when the previous answer is in. It runs in its own process:
  `python -m tests.support.load SPEC.json` reads the target, connections, time and
  request bound from SPEC, the requests from a file of length-prefixed frames, and
  prints one JSON line: requests, seconds, statuses, latency percentiles, and its own
  CPU time (so a report can tell when the generator, not the server, was the limit).
  Bounded: it stops at `seconds` or `max_requests`, whichever comes first.
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.procstat import percentile

# -- paced: the fault suite's load --------------------------------------------------------


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
class PacedLoad:
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

    def start(self) -> PacedLoad:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> PacedLoad:
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


# -- closed loop: the bench's load generator ---------------------------------------------

_FRAME = struct.Struct("<I")


def write_requests(path: str, requests: list[bytes]) -> None:
    """Store complete HTTP requests as length-prefixed frames."""
    with open(path, "wb") as f:
        for r in requests:
            f.write(_FRAME.pack(len(r)))
            f.write(r)


def read_requests(path: str) -> list[bytes]:
    """The requests `write_requests` stored."""
    data = open(path, "rb").read()
    out, pos = [], 0
    while pos < len(data):
        (n,) = _FRAME.unpack_from(data, pos)
        pos += 4
        out.append(data[pos : pos + n])
        pos += n
    return out


def http_request(
    method: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 keep-alive request as bytes."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if method in ("POST", "PUT") or body:
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Conn:
    __slots__ = ("buf", "out", "sent_at", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.out = memoryview(b"")
        self.sent_at = 0


def _connect(target: dict[str, Any]) -> socket.socket:
    if target.get("unix"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(target["unix"])
    else:
        sock = socket.create_connection(("127.0.0.1", int(target["port"])))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def _response_end(buf: bytes) -> int:
    """The length of the first complete response in buf, or 0."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return 0
    head = buf[:head_end].lower()
    i = head.find(b"content-length:")
    length = 0
    if i >= 0:
        j = head.find(b"\r\n", i)
        length = int(head[i + 15 : j if j >= 0 else len(head)])
    total = head_end + 4 + length
    return total if len(buf) >= total else 0


def closed_loop(spec: dict[str, Any]) -> dict[str, Any]:  # noqa: C901 - one tight loop
    """Drive the target for spec['seconds'] or spec['max_requests'] requests."""
    requests = read_requests(spec["requests"])
    connections = int(spec.get("connections", 8))
    seconds = float(spec["seconds"])
    max_requests = int(spec.get("max_requests", 10_000_000))
    warmup = float(spec.get("warmup_s", 0.0))
    sel = selectors.EpollSelector()
    conns = [_Conn(_connect(spec["target"])) for _ in range(connections)]
    n_req = len(requests)
    next_index = 0
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    sent = done = 0
    now_ns = time.perf_counter_ns
    started = time.perf_counter()
    measure_from = started + warmup
    deadline = measure_from + seconds
    measuring = warmup <= 0
    counted = 0
    cpu0 = os.times()

    def send(c: _Conn) -> None:
        nonlocal next_index, sent
        req = requests[next_index]
        next_index = next_index + 1 if next_index + 1 < n_req else 0
        c.sent_at = now_ns()
        n = c.sock.send(req)
        sent += 1
        if n < len(req):
            c.out = memoryview(req)[n:]
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
        send(c)
    stop = False
    measure_start = started
    while not stop or done < sent:
        events = sel.select(timeout=1.0)
        if not events and stop:
            break
        for key, mask in events:
            c = key.data
            if mask & selectors.EVENT_WRITE and c.out:
                n = c.sock.send(c.out)
                c.out = c.out[n:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if not mask & selectors.EVENT_READ:
                continue
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            c.buf += chunk
            while True:
                end = _response_end(c.buf)
                if not end:
                    break
                status = int(c.buf[9:12])
                c.buf = c.buf[end:]
                done += 1
                t = now_ns()
                if not measuring and t / 1e9 >= measure_from:
                    measuring = True
                    measure_start = time.perf_counter()
                if measuring:
                    latencies.append(t - c.sent_at)
                    statuses[status] = statuses.get(status, 0) + 1
                    counted += 1
                if not stop and (time.perf_counter() >= deadline or counted >= max_requests):
                    stop = True
                if not stop:
                    send(c)
    elapsed = time.perf_counter() - measure_start
    cpu1 = os.times()
    for c in conns:
        c.sock.close()
    return {
        "requests": counted,
        "seconds": elapsed,
        "rps": counted / elapsed if elapsed > 0 else 0.0,
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": percentile(latencies, 50) / 1e6,
        "p99_ms": percentile(latencies, 99) / 1e6,
        "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
    }


def main() -> None:
    """Entry point: one JSON spec file in, one JSON line out."""
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    print(json.dumps(closed_loop(spec)), flush=True)


if __name__ == "__main__":
    main()
