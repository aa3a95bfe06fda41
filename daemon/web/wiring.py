"""The daemon's HTTP listeners, built from the configuration and opened in order.

The API listener first (health, metrics, queries), then the ingest side: the ingest
listener and, when configured, the mirror and the tee proxy. The ingest side closes as
one, after the drain: the proxy keeps forwarding during the drain (it sits in the
ingest's request path), then all three finish their in-flight requests within the
ingest's shutdown timeout. The API listener closes last.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from daemon.config import Config
from daemon.core.model import ListenerName
from daemon.core.tokenfrom import TokenFinder
from daemon.metrics import Metrics
from daemon.metrics.plain import RequestTimes
from daemon.pipeline.admission import Admission
from daemon.pipeline.queue import EventQueue
from daemon.query.service import QueryService
from daemon.store.health import RedisHealth
from daemon.store.storage import Storage
from daemon.web.auth import TokenCheck
from daemon.web.front.forward import ProxyFront
from daemon.web.front.pacer import Pacer
from daemon.web.front.pool import Upstream
from daemon.web.front.routes import IngestRoute, MirrorRoute, Route
from daemon.web.front.server import ByteBudget, Front, Listening
from daemon.web.ingest import Intake
from daemon.web.listeners import (
    API_SHUTDOWN_TIMEOUT_S,
    INGEST_SHUTDOWN_TIMEOUT_S,
    Listener,
    api_application,
    api_options,
)
from daemon.web.mirror import Mirror
from daemon.web.ops import Lifecycle, OpsState, add_ops_routes
from daemon.web.proxy import Proxy
from daemon.web.queries import add_query_routes
from daemon.web.tail import Tail, add_tail_routes
from daemon.web.tee import Tee
from daemon.web.viewer import add_viewer_routes


@dataclass(frozen=True, slots=True)
class Parts:
    """What the listeners serve from: the daemon's long-lived parts."""

    config: Config
    metrics: Metrics
    version: str
    lifecycle: Lifecycle
    health: RedisHealth
    queue: EventQueue
    admission: Admission
    storage: Storage
    tail: Tail


class Listeners:
    """The API listener and the ingest side (ingest, mirror, proxy)."""

    def __init__(self) -> None:
        self._api: Listener | None = None
        self._ingest_side: list[Listening] = []
        self._proxy: Proxy | None = None

    async def start(self, parts: Parts) -> None:
        """Listen on every configured address; OSError when one is taken."""
        await self._start_api(parts)
        cfg = parts.config
        intake = Intake(
            parts.admission,
            parts.metrics,
            cfg.ingest.max_request_bytes,
            cfg.events.max_malformed_event_size_bytes,
            cfg.server.cache.enabled,
            cfg.ingest.max_events_per_request,
            cfg.ingest.body_read_timeout_seconds,
        )
        # The ingest side's listeners share one byte budget and one pacer of long steps.
        shared = (ByteBudget(cfg.ingest.inflight_bytes), Pacer(asyncio.get_running_loop()))
        front = self._front(parts, IngestRoute(intake), parts.metrics.ingest_times, *shared)
        await front.start(cfg.ingest.listen, cfg.ingest.socket, cfg.ingest.socket_mode)
        mirror = cfg.sidecar.mirror
        if mirror.listen is not None:
            finder = TokenFinder(mirror.token_from)
            route = MirrorRoute(Mirror(intake.of(ListenerName.MIRROR), finder))
            front = self._front(parts, route, parts.metrics.mirror_times, *shared)
            await front.start(mirror.listen)
        await self._start_proxy(parts, intake, *shared)

    def _front(
        self, parts: Parts, route: Route, times: RequestTimes, budget: ByteBudget, pacer: Pacer
    ) -> Front:
        """An ingest-side listener on the front-door protocol, closed with the others."""
        ingest = parts.config.ingest
        front = Front(
            route,
            times,
            budget,
            pacer,
            head_timeout_s=ingest.header_read_timeout_seconds,
            body_timeout_s=ingest.body_read_timeout_seconds,
            max_body_bytes=ingest.max_request_bytes,
            shutdown_timeout_s=INGEST_SHUTDOWN_TIMEOUT_S,
        )
        self._ingest_side.append(front)
        return front

    async def _start_api(self, parts: Parts) -> None:
        cfg, metrics = parts.config, parts.metrics
        events = cfg.events
        api = api_application(metrics)
        tokens = TokenCheck(
            cfg.admin_tokens, cfg.server.allow_token_in_query, metrics.auth_failures
        )
        bounds = cfg.sidecar.api.max_response_events, cfg.sidecar.api.max_response_bytes
        service = QueryService(parts.storage, events.size, events.time_window_sec, *bounds)
        add_query_routes(api, service, tokens, parts.health)
        add_tail_routes(api, parts.tail)
        add_viewer_routes(api, cfg.sidecar.api.viewer)
        listen, socket_path = cfg.ingest.listen, cfg.ingest.socket
        ingest_url = f"http://{listen}" if listen else f"http+unix://{socket_path}"
        state = OpsState(parts.lifecycle, parts.health, parts.queue)
        add_ops_routes(api, state, metrics, parts.version, ingest_url)
        options = api_options(cfg.sidecar.api.header_read_timeout_seconds)
        self._api = Listener.of_app(api, API_SHUTDOWN_TIMEOUT_S, **options)
        await self._api.start(cfg.sidecar.api.listen)

    async def _start_proxy(
        self, parts: Parts, intake: Intake, budget: ByteBudget, pacer: Pacer
    ) -> None:
        settings = parts.config.sidecar.proxy
        if settings.listen is None:
            return
        upstream = Upstream(
            settings.upstream,
            settings.connect_timeout_seconds,
            settings.read_timeout_seconds,
            settings.max_upstream_connections,
        )
        proxy = self._proxy = Proxy(
            upstream,
            Tee(intake.of(ListenerName.PROXY), TokenFinder(settings.token_from), pacer, budget),
            parts.metrics,
        )
        await proxy.start()
        ingest = parts.config.ingest
        listener = ProxyFront(
            proxy,
            parts.metrics.proxy_times,
            head_timeout_s=ingest.header_read_timeout_seconds,
            body_timeout_s=ingest.body_read_timeout_seconds,
            shutdown_timeout_s=INGEST_SHUTDOWN_TIMEOUT_S,
        )
        self._ingest_side.append(listener)
        await listener.start(settings.listen)

    async def close_ingest_side(self) -> None:
        """Stop taking ingest on every listener at once; in-flight requests finish within
        the ingest's shutdown timeout. Safe to call twice."""
        listeners, self._ingest_side = self._ingest_side, []
        await asyncio.gather(*(listener.close() for listener in listeners))
        if self._proxy is not None:
            await self._proxy.close()
            self._proxy = None

    async def close_api(self) -> None:
        """Close the API listener. Safe to call twice."""
        if self._api is not None:
            await self._api.close()
            self._api = None
