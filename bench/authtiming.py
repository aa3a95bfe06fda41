"""S1: does the answer to a wrong admin token take longer the more of it is right?

`python -m bench --only S1`. The daemon (a subprocess, uvloop, as in production) has one
admin token of 32 characters. Wrong tokens of the same length share 0, 16 (half) and 31
(all but one) leading characters with it. Two measurements, both medians, the classes
interleaved in a shuffled order (fixed seed) so that drift of the machine spreads over
all of them alike:

- over HTTP: `GET /api/v1/events/cache?namespace=token&ids=` with the wrong token in
  `X-Admin-Token`, one request at a time on one keep-alive connection, from sending the
  request to the end of the 401 (the bench process and the daemon share the 2 CPUs);
- in process: `daemon.web.auth.TokenCheck.allows` on a request built by aiohttp's test
  utility, without any network, in batches of 1,000 calls (the part of the answer
  the token's content can change, with nothing else around it);
- `hmac.compare_digest` of the wrong token's bytes with the right one's alone, in
  batches of 1,000 calls.

Each figure is the spread of the three medians (largest minus smallest), beside the
median of the class with no right character; no target (a timing leak would show as a
spread growing with the right characters, well beyond the run's noise). The answer
must not depend on it in any case: the check compares with `hmac.compare_digest`, once
per configured token (tests/test_security.py checks the calls).
"""

from __future__ import annotations

import hmac
import random
import socket
import statistics
import time

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from bench.procs import Daemon
from bench.scenarios import Row, Settings
from daemon.web.auth import TokenCheck
from tests.support.servers import RedisServer

RIGHT = "5f0c2a9e7b1d4c3a8e6f0b2d9c7a1e4f"  # 32 characters, as `openssl rand -hex 16`
SHARED = (0, 16, 31)  # right leading characters of each wrong token
BATCH = 1000  # in-process calls timed together
SEED = 20


def wrong(shared: int) -> str:
    """A token of RIGHT's length whose first `shared` characters are RIGHT's and whose
    every other character differs from RIGHT's."""
    return RIGHT[:shared] + "x" * (len(RIGHT) - shared)


def _request(token: str) -> bytes:
    return (
        "GET /api/v1/events/cache?namespace=token&ids= HTTP/1.1\r\nHost: bench\r\n"
        f"X-Admin-Token: {token}\r\n\r\n"
    ).encode()


def _read_answer(sock: socket.socket) -> bytes:
    """One answer framed by Content-Length (what the 401 is)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        body += chunk
    return head


def over_http(port: int, per_class: int) -> dict[int, list[float]]:
    """Answer times (microseconds) of wrong tokens by right leading characters."""
    order = [k for k in SHARED for _ in range(per_class)]
    random.Random(SEED).shuffle(order)
    requests = {k: _request(wrong(k)) for k in SHARED}
    times: dict[int, list[float]] = {k: [] for k in SHARED}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k in SHARED:  # warm-up
            for _ in range(50):
                sock.sendall(requests[k])
                _read_answer(sock)
        for k in order:
            started = time.perf_counter_ns()
            sock.sendall(requests[k])
            head = _read_answer(sock)
            times[k].append((time.perf_counter_ns() - started) / 1000)
            if not head.startswith(b"HTTP/1.1 401"):
                raise AssertionError(f"a wrong token was not refused: {head[:100]!r}")
    return times


def in_process(batches: int) -> dict[int, list[float]]:
    """Nanoseconds per `TokenCheck.allows` call, per batch of BATCH calls."""
    check = TokenCheck((RIGHT,), allow_in_query=False)
    requests = {
        k: make_mocked_request(
            "GET", "/api/v1/events/cache", headers=CIMultiDict({"X-Admin-Token": wrong(k)})
        )
        for k in SHARED
    }
    order = [k for k in SHARED for _ in range(batches)]
    random.Random(SEED).shuffle(order)
    times: dict[int, list[float]] = {k: [] for k in SHARED}
    allows = check.allows
    for k in order:
        request = requests[k]
        started = time.perf_counter_ns()
        for _ in range(BATCH):
            allows(request)
        times[k].append((time.perf_counter_ns() - started) / BATCH)
    return times


def compare_alone(batches: int) -> dict[int, list[float]]:
    """Nanoseconds per `hmac.compare_digest` of the wrong token's bytes with the right
    one's, per batch of BATCH calls: the compare without the request around it."""
    right = RIGHT.encode()
    tokens = {k: wrong(k).encode() for k in SHARED}
    order = [k for k in SHARED for _ in range(batches)]
    random.Random(SEED).shuffle(order)
    times: dict[int, list[float]] = {k: [] for k in SHARED}
    compare = hmac.compare_digest
    for k in order:
        token = tokens[k]
        started = time.perf_counter_ns()
        for _ in range(BATCH):
            compare(token, right)
        times[k].append((time.perf_counter_ns() - started) / BATCH)
    return times


def _row(figure: str, unit: str, times: dict[int, list[float]]) -> Row:
    medians = {k: statistics.median(v) for k, v in times.items()}
    spread = max(medians.values()) - min(medians.values())

    def quartiles(values: list[float]) -> str:
        q = statistics.quantiles(values, n=4)
        return f"{q[0]:.2f}-{q[2]:.2f}"

    notes = [
        f"{len(times[SHARED[0]]):,} samples per class; median (interquartile range) by right "
        "leading characters of 32: "
        + ", ".join(f"{k}: {medians[k]:.2f} {unit} ({quartiles(times[k])})" for k in SHARED)
    ]
    return Row(
        figure=figure,
        value=spread,
        baseline=medians[0],
        unit=unit,
        target="none (reported)",
        met=None,
        notes=notes,
    )


def s1(s: Settings, server: RedisServer) -> list[Row]:
    """The wrong admin token's answer time by how much of it is right."""
    daemon = Daemon(s.workdir / "daemon-S1", server.url, {"server": {"admin_token": RIGHT}})
    daemon.start()
    try:
        http_times = over_http(daemon.api_port, s.s1_requests)
    finally:
        daemon.stop()
    batches = max(20, s.s1_requests // 20)
    local, alone = in_process(batches), compare_alone(batches)
    return [
        _row(
            "S1 wrong admin token, HTTP: spread of medians over 0/16/31 right chars",
            "us",
            http_times,
        ),
        _row(
            "S1 wrong admin token, TokenCheck.allows: spread of medians over 0/16/31 right chars",
            "ns",
            local,
        ),
        _row(
            "S1 wrong admin token, hmac.compare_digest: spread of medians over 0/16/31 right chars",
            "ns",
            alone,
        ),
    ]
