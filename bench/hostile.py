"""B1: how long `/healthz` waits while two clients send hostile 1 MiB bodies back to back.

`python -m bench --only B1`. The daemon runs its default configuration
(`max_request_bytes` 1 MiB, `max_events_per_request` 10,000) with the mirror listener on
(`token_from: query:token`). Two client processes, one on the ingest listener's TCP
port and one on the mirror listener's, each send the bodies below in turn, one request
at a time, each as soon as the previous one is answered (a new connection when the
daemon closes one), every body under both `Content-Length` and chunked framing:

- `array`: `[{},{},...]`, about 350,000 tiny elements in 1 MiB;
- `ndjson`: 1 MiB of 2-byte lines that are not JSON (`{` and a newline);
- `ndjson-bound`: as many lines as `max_events_per_request` allows, each ~100 bytes of
  JSON cut short at its end (every line read to its end and found invalid);
- `gzip`: a gzip bomb, just under 1 MiB compressed, inflating to ~1 GiB of
  `[{},{},...` (to the ingest as a token body, to the mirror as any body).

Meanwhile the bench process asks `/healthz` of the API listener every ~20 ms, on a new
connection each time as the kubelet's probe does, and times each answer. The same
sampling with the daemon idle, in alternating rounds of the same run, is the baseline.
The figure is a bound, not a ratio: the worst `/healthz` latency under the hostile
bodies (target <= 100 ms), its p99 reported beside it.

The clients alone: `python -m bench.hostile SPEC.json` (port, request file, kinds,
seconds, request bound); it prints `ready`, starts on a line on stdin, prints one JSON
line.
"""

from __future__ import annotations

import gc
import http.client
import json
import socket
import statistics
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import IO, Any

from bench.memory import hwm_mib
from bench.procs import Daemon
from bench.scenarios import Row, Settings, _alternate
from tests.support.load import read_requests, write_requests
from tests.support.procstat import cpu_s, percentile
from tests.support.scrape import metric_sum
from tests.support.servers import RedisServer, free_port

MAX_REQUEST_BYTES = 1 << 20  # the default sidecar.ingest.max_request_bytes
MAX_EVENTS = 10_000  # the default sidecar.ingest.max_events_per_request
TARGET_MS = 100.0
PROBE_EVERY_S = 0.02
PROBE_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = 30.0
CHUNK = 65536  # the chunk size of the chunked framing
INGEST_TOKEN_PATH = "/v1/token/b1-ingest/events"
MIRROR_PATH = "/collect?token=b1-mirror"


# -- the bodies --------------------------------------------------------------------------
def array_body(size: int) -> bytes:
    """`[{},{},...]` of at most `size` bytes."""
    return b"[" + b",".join([b"{}"] * ((size - 2) // 3 + 1)) + b"]"


def ndjson_body(size: int) -> bytes:
    """`size` bytes of 2-byte lines, none of them JSON."""
    return b"{\n" * (size // 2)


def ndjson_bound_body(size: int, lines: int) -> bytes:
    """`lines` lines filling `size` bytes, each an object cut short after a long string."""
    width = size // lines - 1
    line = b'{"a":"' + b"a" * (width - 7) + b'"'
    return b"\n".join([line] * lines)


def gzip_bomb(size: int) -> bytes:
    """A valid gzip member of just under `size` bytes inflating ~1000 times larger, to
    `[{},{},...`: one deflate block of 3 MiB repeated (each ends with a full flush, so
    none depends on the one before), built in well under a second."""
    pattern = b"{}," * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(b"[") + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(pattern) + deflate.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    repeats = (size - len(header) - len(first) - 2 - 8) // len(block)
    crc = zlib.crc32(b"[")
    for _ in range(repeats):
        crc = zlib.crc32(pattern, crc)
    inflated = 1 + repeats * len(pattern)
    trailer = struct.pack("<II", crc, inflated & 0xFFFFFFFF)
    return header + first + block * repeats + b"\x03\x00" + trailer  # \x03\x00: last block


def _request(target: str, body: bytes, headers: dict[str, str], chunked: bool) -> bytes:
    head = [f"POST {target} HTTP/1.1", "Host: localhost"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if not chunked:
        head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body
    head.append("Transfer-Encoding: chunked")
    parts = [("\r\n".join(head) + "\r\n\r\n").encode()]
    for i in range(0, len(body), CHUNK):
        piece = body[i : i + CHUNK]
        parts += [b"%x\r\n" % len(piece), piece, b"\r\n"]
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def hostile_requests(listener: str) -> list[tuple[str, bytes]]:
    """(kind/framing, request) for the ingest or the mirror listener."""
    json_type = {"Content-Type": "application/json"}
    ndjson_type = {"Content-Type": "application/x-ndjson"}
    gzip_type = {**json_type, "Content-Encoding": "gzip"}
    mirror = listener == "mirror"
    token = MIRROR_PATH if mirror else INGEST_TOKEN_PATH
    lines = MIRROR_PATH if mirror else "/v1/events"
    bodies = (
        ("array", token, array_body(MAX_REQUEST_BYTES), json_type),
        ("ndjson", lines, ndjson_body(MAX_REQUEST_BYTES), ndjson_type),
        ("ndjson-bound", lines, ndjson_bound_body(MAX_REQUEST_BYTES, MAX_EVENTS), ndjson_type),
        ("gzip", token, gzip_bomb(MAX_REQUEST_BYTES), gzip_type),
    )
    out = []
    for kind, target, body, headers in bodies:
        assert len(body) <= MAX_REQUEST_BYTES, (kind, len(body))
        for framing, chunked in (("length", False), ("chunked", True)):
            out.append((f"{kind}/{framing}", _request(target, body, headers, chunked)))
    return out


# -- a client ----------------------------------------------------------------------------
def _exchange(sock: socket.socket, raw: bytes) -> tuple[int, bool]:
    """Send one request and read its answer: (status, 0 for none; keep the connection)."""
    try:
        sock.sendall(raw)
    except OSError:
        pass  # answered and closed before the whole body went: the answer may be there
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return 0, False
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lower = head.lower()
        length = 0
        at = lower.find(b"content-length:")
        if at >= 0:
            length = int(lower[at + 15 :].split(b"\r\n", 1)[0])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return int(head[9:12]), False
            rest += chunk
        return int(head[9:12]), b"connection: close" not in lower
    except (OSError, ValueError):
        return 0, False


def drive(spec: dict[str, Any], go: IO[str]) -> dict[str, Any]:
    """Send the spec's requests in turn for its seconds or request bound."""
    requests = read_requests(spec["requests"])
    kinds: list[str] = spec["kinds"]
    statuses: dict[str, dict[str, int]] = {kind: {} for kind in kinds}
    print("ready", flush=True)
    if not go.readline():
        return {"requests": 0, "seconds": 0.0, "statuses": statuses, "bytes": 0}
    started = time.monotonic()
    deadline = started + float(spec["seconds"])
    sent = sent_bytes = 0
    sock: socket.socket | None = None
    while time.monotonic() < deadline and sent < int(spec["max_requests"]):
        n = sent % len(requests)
        sent += 1
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", int(spec["port"])), CLIENT_TIMEOUT_S)
            status, keep = _exchange(sock, requests[n])
        except OSError:
            status, keep = 0, False
        sent_bytes += len(requests[n])
        counts = statuses[kinds[n]]
        counts[str(status)] = counts.get(str(status), 0) + 1
        if not keep and sock is not None:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    return {
        "requests": sent,
        "seconds": time.monotonic() - started,
        "statuses": statuses,
        "bytes": sent_bytes,
    }


def client_spec(workdir: Path, listener: str, port: int, seconds: float) -> Path:
    """A client's requests and spec, written once for every round."""
    made = hostile_requests(listener)
    req_file = workdir / f"b1-{listener}.req"
    write_requests(str(req_file), [raw for _, raw in made])
    spec = {
        "port": port,
        "requests": str(req_file),
        "kinds": [kind for kind, _ in made],
        "seconds": seconds,
        "max_requests": 100_000,
    }
    spec_path = workdir / f"b1-{listener}.json"
    spec_path.write_text(json.dumps(spec))
    return spec_path


class Client:
    """One hostile client process, ready once its requests are loaded; `go()` starts it."""

    def __init__(self, listener: str, spec_path: Path) -> None:
        self.listener = listener
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hostile", str(spec_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the {listener} client did not start")

    def go(self) -> None:
        """Start sending."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        """What it sent and what came back, once it is done."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        finally:
            self.close()
        if self.process.returncode != 0:
            raise RuntimeError(f"the {self.listener} client failed ({self.process.returncode})")
        return dict(json.loads(out.strip().splitlines()[-1]))

    def close(self) -> None:
        """Kill it if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


# -- /healthz ----------------------------------------------------------------------------
def probe_healthz(port: int, seconds: float) -> dict[str, Any]:
    """GET /healthz every ~20 ms for `seconds`, a new connection each time: each latency
    (a probe that fails counts with the time it took) and how many failed. The bench
    process's own heap is frozen meanwhile, so its collections stay out of the times."""
    times: list[float] = []
    failed = 0
    gc.collect()
    gc.freeze()
    try:
        deadline = time.perf_counter() + seconds
        for _ in range(int(seconds / PROBE_EVERY_S) + 1):
            t0 = time.perf_counter()
            if t0 >= deadline:
                break
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                failed += response.status != 200
            except OSError:
                failed += 1
            finally:
                conn.close()
            took = time.perf_counter() - t0
            times.append(took)
            if took < PROBE_EVERY_S:
                time.sleep(PROBE_EVERY_S - took)
    finally:
        gc.unfreeze()
    return {"times": times, "failed": failed}


# -- the scenario ------------------------------------------------------------------------
def b1(s: Settings, server: RedisServer) -> list[Row]:
    """/healthz latency under hostile bodies to the ingest and the mirror, and idle."""
    server.client().flushall()
    mirror_port = free_port()
    mirror = {"listen": f"127.0.0.1:{mirror_port}", "token_from": ["query:token"]}
    daemon = Daemon(s.workdir / "daemon-B1", server.url, {"sidecar": {"mirror": mirror}})
    daemon.start()
    try:
        specs = {  # the clients stop a little after the probes
            "ingest": client_spec(s.workdir, "ingest", daemon.ingest_port, s.b1_seconds + 0.25),
            "mirror": client_spec(s.workdir, "mirror", mirror_port, s.b1_seconds + 0.25),
        }

        def hostile() -> dict[str, Any]:
            clients: list[Client] = []
            try:
                for listener, spec in specs.items():
                    clients.append(Client(listener, spec))
                c0, t0 = cpu_s(daemon.pid), time.perf_counter()
                for c in clients:
                    c.go()
                probed = probe_healthz(daemon.api_port, s.b1_seconds)
                results = {c.listener: c.result(s.b1_seconds + 60) for c in clients}
                busy = (cpu_s(daemon.pid) - c0) / (time.perf_counter() - t0)
            finally:
                for c in clients:
                    c.close()
            time.sleep(0.5)  # whatever the last bodies left to do, before the next phase
            return {**probed, "clients": results, "busy": busy}

        def idle() -> dict[str, Any]:
            return probe_healthz(daemon.api_port, s.b1_seconds)

        before = daemon.metrics()
        hostiles, idles = _alternate(s.rounds, hostile, idle)
        after = daemon.metrics()
        peak = hwm_mib(daemon.pid)
    finally:
        daemon.stop()
    return _rows(s, hostiles, idles, before, after, peak)


def _rows(
    s: Settings,
    hostiles: list[dict[str, Any]],
    idles: list[dict[str, Any]],
    before: dict[str, float],
    after: dict[str, float],
    peak_mib: float,
) -> list[Row]:
    def ms(runs: list[dict[str, Any]]) -> list[float]:
        return [t * 1000 for r in runs for t in r["times"]]

    def round_max(runs: list[dict[str, Any]]) -> str:
        return "/".join(f"{max(r['times'], default=0.0) * 1000:.1f}" for r in runs)

    worst, idle_worst = max(ms(hostiles), default=0.0), max(ms(idles), default=0.0)
    p99, idle_p99 = percentile(ms(hostiles), 99), percentile(ms(idles), 99)
    failed = sum(r["failed"] for r in hostiles)
    probes = (
        f"{len(ms(hostiles)):,} probes under load, {len(ms(idles)):,} idle (baseline column), "
        f"{s.rounds} x {s.b1_seconds:g} s each, one every ~{PROBE_EVERY_S * 1000:.0f} ms on "
        f"a new connection; failed or not 200: {failed} under load, "
        f"{sum(r['failed'] for r in idles)} idle"
    )
    rejected = {
        reason: metric_sum(after, "events_cache_rejected_total", f'reason="{reason}"')
        - metric_sum(before, "events_cache_rejected_total", f'reason="{reason}"')
        for reason in ("too_large", "too_many_events", "bad_encoding", "body_timeout")
    }
    notes = [
        f"{probes}; worst per round under load {round_max(hostiles)} ms, idle "
        f"{round_max(idles)} ms; p50 {percentile(ms(hostiles), 50):.2f} ms under load, "
        f"{percentile(ms(idles), 50):.2f} ms idle",
        f"daemon busy {statistics.median(r['busy'] for r in hostiles):.0%} under load; "
        f"peak RSS (VmHWM) {peak_mib:.0f} MiB; refused: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in rejected.items()),
    ]
    for listener in ("ingest", "mirror"):
        runs = [r["clients"][listener] for r in hostiles]
        sent = sum(r["requests"] for r in runs)
        mib_s = sum(r["bytes"] for r in runs) / max(sum(r["seconds"] for r in runs), 1e-9) / 2**20
        merged: dict[str, dict[str, int]] = {}
        for r in runs:
            for kind, counts in r["statuses"].items():
                for status, n in counts.items():
                    merged.setdefault(kind, {})[status] = merged.get(kind, {}).get(status, 0) + n
        answers = "; ".join(
            f"{kind} " + ", ".join(f"{st} x{n}" for st, n in sorted(c.items()))
            for kind, c in merged.items()
        )
        notes.append(
            f"{listener} client: {sent:,} requests ({mib_s:.1f} MiB/s sent); answers "
            f"(status x count, 0: none): {answers}"
        )
    figure = "B1 /healthz, hostile 1 MiB bodies to ingest and mirror"
    return [
        Row(
            f"{figure}: max",
            worst,
            idle_worst,
            "ms",
            f"<= {TARGET_MS:.0f} ms",
            worst <= TARGET_MS and failed == 0,
            notes=notes,
        ),
        Row(f"{figure}: p99", p99, idle_p99, "ms", "-", None),
    ]


def main() -> None:
    """One hostile client: a JSON spec file in, one JSON line out."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(drive(spec, sys.stdin)), flush=True)


if __name__ == "__main__":
    main()
