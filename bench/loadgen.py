"""A small HTTP/1.1 keep-alive load generator for Unix sockets and TCP, in its own process.

`python -m bench.loadgen SPEC.json` reads its target, connections, time and request
bound from SPEC, the requests from a file of length-prefixed frames, and prints one JSON
line: requests, seconds, statuses, latency percentiles, and its own CPU time (so the
report can tell when the generator, not the server, was the limit). Requests are sent
in turn from the file; each connection has one request in flight (no pipelining).
Bounded: it stops at `seconds` or `max_requests`, whichever comes first.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import struct
import sys
import time
from typing import Any

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


def percentile(sorted_values: list[int], q: float) -> float:
    """The q-quantile (0..1) of sorted values, nearest rank."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[index])


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


def run(spec: dict[str, Any]) -> dict[str, Any]:  # noqa: C901 - one tight loop
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
    latencies.sort()
    return {
        "requests": counted,
        "seconds": elapsed,
        "rps": counted / elapsed if elapsed > 0 else 0.0,
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": percentile(latencies, 0.50) / 1e6,
        "p99_ms": percentile(latencies, 0.99) / 1e6,
        "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
    }


def main() -> None:
    """Entry point: one JSON spec file in, one JSON line out."""
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    print(json.dumps(run(spec)), flush=True)


if __name__ == "__main__":
    main()
