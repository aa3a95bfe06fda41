"""The daemon under test, in-process or as a subprocess, with one client API.

Both harnesses write the same YAML configuration (the suite's or the caller's Redis, a
Unix socket and loopback ports of their own, no drain delay, JSON logs, `overrides`
merged in) and are talked to the same way, over the daemon's real ingest socket, ingest
TCP port and API port: `ingest`, `post_token`, `post_ndjson`, `api`, `query`,
`metrics`, `metric`, `wait_drained`, `log`, `stop`.

- `InProcessDaemon` runs `daemon.app.App` on an event loop of its own in a background
  thread of this process: no interpreter to start, no signal handling (that is
  `daemon.serve`'s, tested with the subprocess). Its log lines are this daemon's only:
  `route_daemon_logs()` sends each log record to the daemon whose loop thread emitted it.
- `DaemonProcess` runs `python -m daemon --config ...`: for signals, SIGKILL, the command
  line, and measurements that need the daemon alone in its process (the fault suite's
  latencies, the bench's CPU per request).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import signal as signals
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from tests.support.scrape import Samples, parse_metrics, sample_key, settle
from tests.support.servers import free_port, wait_for

if TYPE_CHECKING:
    from daemon.app import App

ADMIN_TOKEN = "test-admin-token-0123456789"
ENV_PREFIX = "EVENTS_CACHE_"
EXIT_OK = 0  # what `events-cache` exits with after an orderly stop (daemon.serve.EXIT_OK)

T = TypeVar("T")


def deep_update(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `extra` into `base` recursively (mappings merged, anything else replaced)."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def daemon_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without EVENTS_CACHE_* (the configuration file decides),
    plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(extra or {})
    return env


@dataclass
class Reply:
    """An HTTP answer: status, headers and the body (parsed when JSON)."""

    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.raw)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Connect to the socket path instead of host:port."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    keep_open: bool = False,
) -> Reply:
    """One request on `conn`; the connection is closed afterwards unless `keep_open`."""
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        if not keep_open:
            conn.close()


class DaemonClient:
    """A daemon's configuration, written to `directory/config.yaml`, and the client side.

    `overrides` is merged into the default configuration; `env` is added to the
    environment the configuration is read with (EVENTS_CACHE_* of this process left out).
    """

    def __init__(
        self,
        directory: Path,
        redis_url: str,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        log_level: str = "info",
        flush_timeout_s: float = 10,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.name = directory.name
        self.token = ADMIN_TOKEN
        self.socket_path = str(directory / "ingest.sock")
        self.ingest_port = free_port()
        self.api_port = free_port()
        self.env = daemon_environment(env)
        self.config: dict[str, Any] = {
            "server": {"admin_token": ADMIN_TOKEN},
            "meta": {"storage": {"redis": {"host": redis_url}}},
            "sidecar": {
                "ingest": {
                    "socket": self.socket_path,
                    "listen": f"127.0.0.1:{self.ingest_port}",
                },
                "api": {"listen": f"127.0.0.1:{self.api_port}"},
                "shutdown": {"drain_seconds": 0, "flush_timeout_seconds": flush_timeout_s},
                "log": {"level": log_level, "format": "json"},
            },
        }
        deep_update(self.config, overrides or {})
        self.config_path = directory / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))

    # -- the ingest listener ----------------------------------------------------------------
    def ingest(
        self,
        path: str,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        via: str = "unix",
        method: str = "POST",
        timeout: float = 10,
    ) -> Reply:
        """A request to the ingest listener over the Unix socket or (`via="tcp"`) TCP."""
        data = body.encode() if isinstance(body, str) else body
        conn: http.client.HTTPConnection = (
            UnixHTTPConnection(self.socket_path, timeout)
            if via == "unix"
            else http.client.HTTPConnection("127.0.0.1", self.ingest_port, timeout=timeout)
        )
        return request(conn, method, path, data, headers)

    def post_token(self, token: str, body: bytes | str, **kw: Any) -> Reply:
        """POST /v1/token/{token}/events."""
        return self.ingest(f"/v1/token/{urllib.parse.quote(token, safe='')}/events", body, **kw)

    def post_ndjson(self, lines: list[Any] | bytes, **kw: Any) -> Reply:
        """POST /v1/events with one line per item (objects dumped, text kept as is)."""
        if isinstance(lines, bytes):
            body = lines
        else:
            body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines).encode()
        return self.ingest("/v1/events", body, **kw)

    # -- the API listener -------------------------------------------------------------------
    def api(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        token: str | None = ADMIN_TOKEN,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        body: bytes | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> Reply:
        """A request to the API listener (admin token sent unless None); pass `conn` to
        reuse a keep-alive connection, which is then left open."""
        query = ("?" + urllib.parse.urlencode(params)) if params is not None else ""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["X-Admin-Token"] = token
        own = conn or http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30)
        return request(own, method, path + query, body, hdrs, keep_open=conn is not None)

    def query(self, **params: Any) -> dict[str, Any]:
        """GET /api/v1/events/cache; asserts a 200 and returns the answer."""
        reply = self.api("/api/v1/events/cache", params)
        assert reply.status == 200, (reply.status, reply.raw)
        result: dict[str, Any] = reply.json
        return result

    def metrics(self) -> Samples:
        """Samples of /metrics as {'name{label="v",...}': value} (labels sorted)."""
        return parse_metrics(self.api("/metrics", token=None).raw.decode())

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics, 0 when absent."""
        return self.metrics().get(sample_key(name, labels), 0.0)

    def ready(self) -> bool:
        """/readyz answers 200."""
        try:
            return self.api("/readyz", token=None).status == 200
        except OSError:
            return False

    def wait_drained(self, timeout: float = 10) -> None:
        """Wait until nothing is queued and every received event is accounted for (written
        to Redis, rate limited or dropped): no batch is still in flight."""
        settle(self, timeout)

    # -- what each harness provides ---------------------------------------------------------
    def log(self) -> str:
        """What the daemon logged (JSON lines)."""
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        """The daemon runs and has not been stopped."""
        raise NotImplementedError

    def stop(self) -> int:
        """Stop the daemon in order; its exit code."""
        raise NotImplementedError


# -- in-process ------------------------------------------------------------------------------


class _Sink:
    """One in-process daemon's log lines."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.lines: list[str] = []


class _ThreadRoutedHandler(logging.Handler):
    """Sends a record to the sink of the daemon whose loop thread emitted it; records of
    other threads go to stderr from WARNING up (pytest captures them per test)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.sinks: dict[int, _Sink] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Format and route one record."""
        try:
            sink = self.sinks.get(record.thread or 0)
            if sink is None:
                if record.levelno >= logging.WARNING:
                    sys.stderr.write(self.format(record) + "\n")
            elif record.levelno >= sink.level:
                sink.lines.append(self.format(record))
        except Exception:
            self.handleError(record)


_router: _ThreadRoutedHandler | None = None


def route_daemon_logs() -> None:
    """Configure logging as the daemon does (structlog, JSON lines, `daemon.log`), with one
    handler that keeps each in-process daemon's lines apart. Idempotent; call it before
    any daemon code logs (structlog caches loggers on first use)."""
    global _router
    if _router is not None:
        return
    from daemon.log import setup_logging

    setup_logging("info", "json", stream=sys.stderr)
    root = logging.getLogger()
    (configured,) = root.handlers
    assert configured.formatter is not None
    _router = _ThreadRoutedHandler(configured.formatter)
    root.handlers[:] = [_router]


class InProcessDaemon(DaemonClient):
    """`daemon.app.App` on its own event loop in a background thread of this process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app: App | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        level = str(self.config["sidecar"]["log"]["level"]).upper()
        self._sink = _Sink(logging.getLevelNamesMapping().get(level, logging.INFO))
        self._running = False

    def start(self, timeout: float = 30) -> None:
        """Read the configuration file, start the App; raises what `App.start` raises."""
        from daemon.app import App
        from daemon.config import load_config

        if _router is None:
            raise RuntimeError("call route_daemon_logs() first")
        config = load_config(str(self.config_path), self.env)
        app = self.app = App(config)
        loop = self._loop = asyncio.new_event_loop()
        thread = self._thread = threading.Thread(
            target=loop.run_forever, name=f"daemon-{self.name}", daemon=True
        )
        thread.start()
        assert thread.ident is not None
        _router.sinks[thread.ident] = self._sink
        root = logging.getLogger()
        if self._sink.level < root.level:  # a daemon at debug: let its records through
            root.setLevel(self._sink.level)
        try:
            self._call(app.start(), timeout)
        except BaseException:
            self._close_loop()
            raise
        self._running = True

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the daemon's loop and wait for its result."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    @property
    def alive(self) -> bool:
        """Started, not stopped, and its loop thread runs."""
        return (
            self._running
            and self._thread is not None
            and self._thread.is_alive()
            and self._loop is not None
            and self._loop.is_running()
        )

    def stop(self, timeout: float = 30) -> int:
        """`App.stop()` (drain, flush, close), then the loop ends. Returns 0, what the
        command line exits with after an orderly stop; raises what `App.stop` raised."""
        if not self._running:
            raise RuntimeError(f"daemon {self.name} is not running")
        self._running = False
        assert self.app is not None
        try:
            self._call(self.app.stop(), timeout)
        finally:
            self._close_loop()
        return EXIT_OK

    def _close_loop(self) -> None:
        """Cancel what is left on the loop, stop it, join the thread, close the loop."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            self._call(_cancel_the_rest(), 10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        if _router is not None and thread.ident is not None:
            _router.sinks.pop(thread.ident, None)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def close(self) -> None:
        """Stop it if it still runs (the fixture's teardown)."""
        if self._running:
            self.stop()
        self._close_loop()

    def log(self) -> str:
        """This daemon's log lines."""
        return "".join(line + "\n" for line in list(self._sink.lines))


async def _cancel_the_rest() -> None:
    """What asyncio.run does before closing its loop: cancel the remaining tasks, finish
    async generators and the default executor."""
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


StartDaemon = Callable[..., InProcessDaemon]  # the `start_daemon` fixture


# -- subprocess ------------------------------------------------------------------------------


class DaemonProcess(DaemonClient):
    """`python -m daemon --config ...` as a child process; stdout and stderr go to
    `directory/daemon.log`."""

    def __init__(self, *args: Any, cwd: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cwd = cwd
        self.log_path = self.directory / "daemon.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The child process (once started)."""
        assert self._process is not None, "not started"
        return self._process

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def start(self, wait_ready: bool = True, timeout: float = 15) -> None:
        """Start the child; with `wait_ready`, return once /readyz answers 200."""
        with self.log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--config", str(self.config_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
            )
        if wait_ready:

            def ready() -> bool:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"daemon exited with {self.process.returncode}:\n{self.log()}"
                    )
                return self.ready()

            try:
                wait_for(ready, timeout=timeout, what=f"daemon {self.name} ready")
            except BaseException:
                self.kill()
                raise

    @property
    def alive(self) -> bool:
        """The child has not exited."""
        return self._process is not None and self._process.poll() is None

    def signal(self, signum: int = signals.SIGTERM) -> None:
        """Send a signal to the child."""
        self.process.send_signal(signum)

    def stop(self, signum: int = signals.SIGTERM, timeout: float = 30) -> int:
        """Signal (unless it has exited) and wait; the exit code. A child that does not exit
        within `timeout` is killed and AssertionError raised with its log."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"daemon did not stop within {timeout}s:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL and reap (nothing of the daemon's clean-up runs)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log(self) -> str:
        """Everything the child wrote to stdout and stderr."""
        return self.log_path.read_text(errors="replace")


StartDaemonProcess = Callable[..., DaemonProcess]  # the `start_daemon_process` fixture
