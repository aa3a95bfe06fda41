"""Prometheus metrics: every metric of the contract, defined once, on a private registry.

Label children are resolved once here (the hot path's counters are plain numbers,
`daemon.metrics.plain`). No label carries a token or a destination id: their number is
unbounded. The cache's namespace is the label `cache_namespace` (`namespace` is
Kubernetes' own: a scrape would rename ours `exported_namespace`). The registry also
holds the standard process, GC and platform collectors.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from daemon.core.model import (
    Collection,
    DropReason,
    ListenerName,
    Namespace,
    RedisOperation,
    RejectReason,
    TeeOutcome,
    UpstreamError,
)
from daemon.metrics.httpduration import HTTP_DURATION, HTTP_DURATION_HELP, HTTP_LABELS, HttpDuration
from daemon.metrics.plain import LATENCY_BUCKETS, PlainCount, PlainCounters, RequestTimes

# No `*_created` series (they double every series for a time `process_start_time_seconds`
# gives once). The switch is process-wide, which is harmless: this registry is the only one
# the daemon serves.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The sidecar's metrics and their registry (one per daemon, one per test)."""

    def __init__(self, version: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._hot_counters(self.registry)
        self._event_counters(self.registry)
        self._refusals(self.registry)
        self._state_metrics(self.registry)
        self._proxy_metrics(self.registry)
        self._redis_errors(self.registry)
        self._auth_failures(self.registry)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info(
            "events_cache_build", "The version of the build that runs.", registry=self.registry
        ).info({"version": version})

    def _hot_counters(self, r: CollectorRegistry) -> None:
        """The counters moved on every ingest request (a busy key's limited events):
        plain numbers read at scrape time, not prometheus_client children (a lock and
        three calls each)."""
        self.received = {ns: PlainCount() for ns in Namespace}
        PlainCounters(
            "events_cache_received",
            "Events handed to the sidecar (malformed entries included, invalid lines not).",
            ["cache_namespace"],
            {(ns.value,): count for ns, count in self.received.items()},
            registry=r,
        )
        self.rate_limited = {(ns, c): PlainCount() for ns in Namespace for c in Collection}
        PlainCounters(
            "events_cache_rate_limited",
            "Events not cached in a collection because its rate limit was reached.",
            ["cache_namespace", "collection"],
            {(ns.value, c.value): count for (ns, c), count in self.rate_limited.items()},
            registry=r,
        )
        self.limited_at_source = {ns: PlainCount() for ns in Namespace}
        PlainCounters(
            "events_cache_limited_at_source",
            "Events a client held back because the sidecar had said their id was rate "
            "limited (counted in received and rate_limited too).",
            ["cache_namespace"],
            {(ns.value,): count for ns, count in self.limited_at_source.items()},
            registry=r,
        )
        self.captured = {ns: PlainCount() for ns in Namespace}
        PlainCounters(
            "events_cache_captured",
            "Tagged events (sidecar.capture) cached beyond their id's rate limit, within "
            "the pod's budget_per_minute.",
            ["cache_namespace"],
            {(ns.value,): count for ns, count in self.captured.items()},
            registry=r,
        )

    def _event_counters(self, r: CollectorRegistry) -> None:
        """What happened to events; label children resolved once, for the hot path."""
        cached = Counter(
            "events_cache_cached_total",
            "Events written to Redis, per collection.",
            ["cache_namespace", "collection"],
            registry=r,
        )
        dropped = Counter(
            "events_cache_dropped_total",
            "Accepted events that never reached Redis.",
            ["reason"],
            registry=r,
        )
        self.malformed = Counter(
            "events_cache_malformed_total",
            "Malformed bodies or entries cached as malformed.",
            registry=r,
        )
        self.unredactable = Counter(
            "events_cache_unredactable_total",
            "Texts server.cache.events.redact could not redact (malformed bodies, JSON too "
            "deep to write back): stored as a note saying why, never as they came.",
            registry=r,
        )
        self.activity_lost = Counter(
            "events_cache_activity_lost_total",
            "Activity counts this pod could not keep: its in-memory cells were full.",
            registry=r,
        )
        self.invalid = Counter(
            "events_cache_invalid_total",
            "NDJSON lines, and mirrored requests without an API key, rejected as invalid "
            "(not cached).",
            registry=r,
        )
        self.cached = {
            (ns, c): cached.labels(cache_namespace=ns, collection=c)
            for ns in Namespace
            for c in Collection
        }
        self.dropped = {reason: dropped.labels(reason=reason) for reason in DropReason}

    def _refusals(self, r: CollectorRegistry) -> None:
        """Requests refused at the door; every listener and reason exists from the start."""
        rejected = Counter(
            "events_cache_rejected_total",
            "Requests refused at the door of an ingest-side listener, nothing of them cached "
            "(a 413, a 400, a cut connection), by reason.",
            ["listener", "reason"],
            registry=r,
        )
        self.rejected = {
            listener: {reason: rejected.labels(listener, reason) for reason in RejectReason}
            for listener in ListenerName
        }

    def _state_metrics(self, r: CollectorRegistry) -> None:
        """Queue, Redis and HTTP state and timings."""
        self.queue_depth = Gauge(
            "events_cache_queue_depth",
            "Events queued for Redis, the batches being written included.",
            registry=r,
        )
        self.queue_capacity = Gauge(
            "events_cache_queue_capacity", "Events the queue holds before dropping.", registry=r
        )
        self.queue_bytes = Gauge(
            "events_cache_queue_bytes",
            "Bytes of the events waiting for Redis (encoded entries).",
            registry=r,
        )
        self.queue_capacity_bytes = Gauge(
            "events_cache_queue_capacity_bytes",
            "Bytes the queue holds before dropping.",
            registry=r,
        )
        self.redis_up = Gauge(
            "events_cache_redis_up", "1 when the last Redis operation succeeded.", registry=r
        )
        self.redis_write_seconds = Histogram(
            "events_cache_redis_write_seconds",
            "Time of one pipelined batch write to Redis.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.trim_seconds = Histogram(
            "events_cache_trim_seconds",
            "Time of one trim pass.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.streams = Gauge(
            "events_cache_streams", "Live-tail streams open on this sidecar.", registry=r
        )
        self.waits = Gauge(
            "events_cache_waits",
            "Long polls (GET /api/v1/events/wait) open on this sidecar.",
            registry=r,
        )
        self._http_metrics(r)

    def _http_metrics(self, r: CollectorRegistry) -> None:
        """Request durations: the API's histogram, the ingest side's plain numbers."""
        # Not registered itself: HttpDuration serves it, the ingest side's RequestTimes
        # merged in.
        self.http_duration = Histogram(
            HTTP_DURATION,
            HTTP_DURATION_HELP,
            HTTP_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.ingest_times = RequestTimes()
        self.mirror_times = RequestTimes()
        self.proxy_times = RequestTimes()
        listeners = {
            "ingest": self.ingest_times,
            "mirror": self.mirror_times,
            "proxy": self.proxy_times,
        }
        r.register(HttpDuration(self.http_duration, listeners))

    def _proxy_metrics(self, r: CollectorRegistry) -> None:
        """The tee proxy: what became of each request's copy, and the upstream's failures."""
        tee = Counter(
            "events_cache_proxy_tee_total",
            "Requests through the tee proxy by what became of their copy: teed (handed to "
            "the cache as an ingest request is), or why not.",
            ["outcome"],
            registry=r,
        )
        upstream = Counter(
            "events_cache_proxy_upstream_errors_total",
            "Forwards the upstream failed: unreachable (502), timeout (504, or the answer "
            "cut), interrupted (its answer broke off midway: the client's connection is cut).",
            ["reason"],
            registry=r,
        )
        self.proxy_tee = {o: tee.labels(outcome=o) for o in TeeOutcome}
        self.proxy_upstream_errors = {e: upstream.labels(reason=e) for e in UpstreamError}

    def _auth_failures(self, r: CollectorRegistry) -> None:
        """Requests the admin token check refused (guessing shows here first), and the
        embedded Redis' restarts."""
        failures = Counter(
            "events_cache_auth_failures_total",
            "Requests to the API's admin routes refused for a missing or wrong admin token.",
            ["listener"],
            registry=r,
        )
        self.auth_failures = failures.labels(listener="api")
        self.embedded_redis_restarts = Counter(
            "events_cache_embedded_redis_restarts_total",
            "Restarts of the embedded Redis after it died (at most five a minute).",
            registry=r,
        )

    def _redis_errors(self, r: CollectorRegistry) -> None:
        """Failed Redis operations, per operation; every child exists from the start."""
        errors = Counter(
            "events_cache_redis_errors_total",
            "Redis operations that failed (connection, timeout or an error reply).",
            ["operation"],
            registry=r,
        )
        self.redis_errors = {op: errors.labels(operation=op) for op in RedisOperation}

    def watch_queue(self, depth: Callable[[], float], capacity: int) -> None:
        """Read the queue depth at scrape time instead of on every event."""
        self.queue_depth.set_function(depth)
        self.queue_capacity.set(capacity)

    def watch_queue_bytes(self, size: Callable[[], float], capacity: int) -> None:
        """Read the queue's bytes at scrape time, as its depth."""
        self.queue_bytes.set_function(size)
        self.queue_capacity_bytes.set(capacity)
