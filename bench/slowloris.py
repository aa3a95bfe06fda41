"""S1: a normal client's ingest latency while 1,000 slow clients send headers 1 byte/s.

`python -m bench.slowloris [--clients 1000] [--seconds 30] [--timeout 10]`

One daemon (`sidecar.ingest.header_read_timeout_seconds` = `--timeout`), then in
alternation: a normal client alone, and the same client while `--clients` connections
to the ingest's TCP port each send a request head one byte a second (a new connection
as soon as the daemon cuts one, so the number stays up). The normal client is
`tests.support.load` with one connection (one-event `POST /v1/token/{id}/events`,
keep-alive, one request in flight), over the Unix socket and over TCP; its p50/p99 are
printed, with how long the daemon took to cut each slow connection. The slow clients
run in a process of their own (`python -m bench.slowloris --clients-only`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import events as ev
from bench.procs import Daemon, valkey_server
from bench.scenarios import Settings, _closed_loop
from tests.support.load import http_request, write_requests
from tests.support.procstat import cpu_s

HEAD = b"POST /v1/token/slow/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" + b"X" * 200


async def _slow_client(port: int, until: float, cuts: list[float]) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(1)
            continue
        opened = time.monotonic()
        try:
            for i in range(len(HEAD)):
                if time.monotonic() >= until:
                    return
                writer.write(HEAD[i : i + 1])
                await writer.drain()
                try:  # a byte a second, or the daemon closing the connection
                    if await asyncio.wait_for(reader.read(1024), 1.0) == b"":
                        break
                except TimeoutError:
                    continue
        except OSError:
            pass
        finally:
            writer.close()
        cuts.append(time.monotonic() - opened)


async def _slow_clients(port: int, clients: int, seconds: float) -> dict[str, Any]:
    until = time.monotonic() + seconds
    cuts: list[float] = []
    tasks = []
    for _ in range(clients):  # ramp up over the first second
        tasks.append(asyncio.create_task(_slow_client(port, until, cuts)))
        await asyncio.sleep(1 / clients)
    await asyncio.gather(*tasks)
    return {
        "cut": len(cuts),
        "cut_after_s_median": statistics.median(cuts) if cuts else None,
        "cut_after_s_max": max(cuts) if cuts else None,
    }


def _measure(
    s: Settings, daemon: Daemon, req: str, target: dict[str, Any], slow: int, a: argparse.Namespace
) -> dict[str, Any]:
    helper = None
    if slow:
        argv = [sys.executable, "-m", "bench.slowloris", "--clients-only", str(daemon.ingest_port)]
        argv += ["--clients", str(slow), "--seconds", str(a.seconds + 2)]
        helper = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        time.sleep(2)  # the slow connections are open
    c0 = cpu_s(daemon.pid)
    result = _closed_loop(s, target, req, a.seconds, connections=1)
    result["daemon_cpu_s"] = cpu_s(daemon.pid) - c0
    if helper is not None:
        out, _ = helper.communicate(timeout=a.seconds + 60)
        result["slow"] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slowloris", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="header read timeout")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients-only", type=int, metavar="PORT", default=0)
    a = parser.parse_args()
    if a.clients_only:
        print(json.dumps(asyncio.run(_slow_clients(a.clients_only, a.clients, a.seconds))))
        return 0
    work = Path(tempfile.mkdtemp(prefix="events-cache-slowloris-"))
    s = Settings(a.seconds, a.rounds, 0, (0, 0, 0), 0, work)
    server = valkey_server(work / "valkey")
    server.start()
    ingest = {"header_read_timeout_seconds": a.timeout}
    daemon = Daemon(work / "daemon", server.url, {"sidecar": {"ingest": ingest}})
    daemon.start()
    try:
        bodies = ev.token_bodies(200, ev.token_ids(1000))
        req = str(work / "s1.req")
        write_requests(req, [http_request("POST", f"/v1/token/{t}/events", b) for t, b in bodies])
        for name, target in (
            ("unix", {"unix": daemon.socket_path}),
            ("tcp", {"port": daemon.ingest_port}),
        ):
            for rnd in range(a.rounds):
                for slow in (0, a.clients):
                    r = _measure(s, daemon, req, target, slow, a)
                    print(
                        f"S1 {name} round {rnd + 1}, {slow} slow clients: p50/p99 "
                        f"{r['p50_ms']:.2f}/{r['p99_ms']:.2f} ms, {r['requests']} requests, "
                        f"daemon CPU {r['daemon_cpu_s']:.1f} s; slow: {r.get('slow', '-')}",
                        flush=True,
                    )
    finally:
        daemon.stop()
        server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
