"""The daemon's HTTP listeners, built from their settings and `daemon.app`'s parts, and
opened in order.

The API listener first (health, metrics, queries), then the ingest side: the ingest
listener and, when configured, the mirror and the tee proxy. The ingest side closes as
one, after the drain: the proxy keeps forwarding during the drain (it sits in the
ingest's request path), then all three finish their in-flight requests within the
ingest's shutdown timeout. The API listener closes last.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from daemon.config import HostPort
from daemon.config.sidecar import ApiSettings, IngestSettings, MirrorSettings, ProxySettings
from daemon.core.model import ListenerName
from daemon.core.tokenfrom import TokenFinder
from daemon.metrics import Metrics
from daemon.metrics.plain import RequestTimes
from daemon.pipeline.queue import EventQueue
from daemon.query.activity import Activity
from daemon.query.journey import Journeys
from daemon.query.service import QueryService
from daemon.query.wait import WaitParts, Waits
from daemon.store.health import RedisHealth
from daemon.web.activity import add_activity_routes
from daemon.web.auth import TokenCheck
from daemon.web.auth import install as install_guard
from daemon.web.errors import add_errors_routes
from daemon.web.front.forward import ProxyFront
from daemon.web.front.pacer import Pacer
from daemon.web.front.pool import Upstream
from daemon.web.front.routes import IngestRoute, MirrorRoute, Route
from daemon.web.front.server import ByteBudget, Front, Listening
from daemon.web.ingest import Intake
from daemon.web.journeys import add_journey_routes
from daemon.web.listeners import (
    API_SHUTDOWN_TIMEOUT_S,
    INGEST_SHUTDOWN_TIMEOUT_S,
    Listener,
    api_application,
    api_options,
)
from daemon.web.mirror import Mirror, Reply
from daemon.web.ops import Lifecycle, OpsState, add_ops_routes
from daemon.web.proxy import Proxy
from daemon.web.queries import add_query_routes
from daemon.web.tailstream import Tail, add_tail_routes
from daemon.web.tee import Tee
from daemon.web.viewer import add_viewer_routes
from daemon.web.waits import add_wait_routes


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    """The listeners' sections of the configuration: all this module reads of it."""

    api: ApiSettings
    ingest: IngestSettings
    mirror: MirrorSettings
    proxy: ProxySettings


@dataclass(frozen=True, slots=True)
class Parts:
    """What the listeners serve: parts `daemon.app` built from the configuration."""

    metrics: Metrics
    version: str
    lifecycle: Lifecycle
    health: RedisHealth
    queue: EventQueue
    intake: Intake
    tokens: TokenCheck
    queries: QueryService
    tail: Tail
    journeys: Journeys
    activity: Activity


class Listeners:
    """The API listener and the ingest side (ingest, mirror, proxy)."""

    def __init__(self) -> None:
        self._api: Listener | None = None
        self._ingest_side: list[Listening] = []
        self._proxy: Proxy | None = None

    async def start(self, settings: ListenerSettings, parts: Parts) -> None:
        """Listen on every configured address; OSError when one is taken."""
        await self._start_api(settings, parts)
        await self._start_ingest_side(settings, parts)

    async def _start_ingest_side(self, settings: ListenerSettings, parts: Parts) -> None:
        """Ingest, mirror and proxy, built alike: each a listener on the front-door
        protocol, sharing one byte budget and one pacer of long steps, its requests'
        events handed to the same intake under its own listener name."""
        ingest, mirror, proxy = settings.ingest, settings.mirror, settings.proxy
        budget, pacer = ByteBudget(ingest.inflight_bytes), Pacer(asyncio.get_running_loop())
        intake, metrics = parts.intake, parts.metrics
        opening: list[tuple[Listening, HostPort | None, str]] = [
            (
                self._front(ingest, IngestRoute(intake), metrics.ingest_times, budget, pacer),
                ingest.listen,
                ingest.socket,
            )
        ]
        if mirror.listen is not None:
            finder, reply = TokenFinder(mirror.token_from), Reply.of(mirror.reply)
            copies = Mirror(intake.of(ListenerName.MIRROR), finder, reply)
            front = self._front(ingest, MirrorRoute(copies), metrics.mirror_times, budget, pacer)
            opening.append((front, mirror.listen, ""))
        if proxy.listen is not None:
            tee = Tee(intake.of(ListenerName.PROXY), TokenFinder(proxy.token_from), pacer, budget)
            forwarder = self._proxy = Proxy(_upstream(proxy), tee, metrics)
            await forwarder.start()
            opening.append((self._proxy_front(ingest, forwarder, metrics), proxy.listen, ""))
        for listener, tcp, socket_path in opening:
            self._ingest_side.append(listener)
            await listener.start(tcp, socket_path, ingest.socket_mode)

    @staticmethod
    def _front(
        ingest: IngestSettings, route: Route, times: RequestTimes, budget: ByteBudget, pacer: Pacer
    ) -> Front:
        return Front(
            route,
            times,
            budget,
            pacer,
            head_timeout_s=ingest.header_read_timeout_seconds,
            body_timeout_s=ingest.body_read_timeout_seconds,
            max_body_bytes=ingest.max_request_bytes,
            shutdown_timeout_s=INGEST_SHUTDOWN_TIMEOUT_S,
        )

    @staticmethod
    def _proxy_front(ingest: IngestSettings, proxy: Proxy, metrics: Metrics) -> ProxyFront:
        return ProxyFront(
            proxy,
            metrics.proxy_times,
            head_timeout_s=ingest.header_read_timeout_seconds,
            body_timeout_s=ingest.body_read_timeout_seconds,
            shutdown_timeout_s=INGEST_SHUTDOWN_TIMEOUT_S,
        )

    async def _start_api(self, settings: ListenerSettings, parts: Parts) -> None:
        api = api_application(parts.metrics)
        install_guard(api, parts.tokens, parts.health)
        add_query_routes(api, parts.queries)
        add_journey_routes(api, parts.journeys)
        add_activity_routes(api, parts.activity)
        add_errors_routes(api, parts.queries.errors)
        add_tail_routes(api, parts.tail, parts.queries)
        self._add_waits(api, settings.api, parts)
        add_viewer_routes(api, settings.api.viewer)
        ingest = settings.ingest
        ingest_url = f"http://{ingest.listen}" if ingest.listen else f"http+unix://{ingest.socket}"
        state = OpsState(parts.lifecycle, parts.health, parts.queue)
        add_ops_routes(api, state, parts.metrics, parts.version, ingest_url)
        options = api_options(settings.api.header_read_timeout_seconds)
        self._api = Listener.of_app(api, API_SHUTDOWN_TIMEOUT_S, **options)
        await self._api.start(settings.api.listen)

    @staticmethod
    def _add_waits(api: web.Application, settings: ApiSettings, parts: Parts) -> None:
        tail, bounds = parts.tail, (settings.max_waits, settings.max_response_bytes)
        waits = Waits(
            WaitParts(tail.hub, tail.switch, parts.queries, parts.journeys.finder, *bounds)
        )
        parts.metrics.waits.set_function(lambda: waits.count)
        add_wait_routes(api, waits, settings.max_response_events)

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


def _upstream(proxy: ProxySettings) -> Upstream:
    return Upstream(
        proxy.upstream,
        proxy.connect_timeout_seconds,
        proxy.read_timeout_seconds,
        proxy.max_upstream_connections,
    )
