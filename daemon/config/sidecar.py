"""sidecar: the listeners, the queue, shutdown and logging of this process."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config.fields import HostPort, OctalMode, section, setting

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")


@dataclass(frozen=True)
class Ingest:
    """sidecar.ingest: the pod-private listeners and the queue in front of Redis."""

    socket: str = setting(
        "/var/run/events-cache/ingest.sock",
        'Unix socket of the ingest API; `""` turns it off. A stale socket file left by a '
        "previous run is replaced.",
    )
    socket_mode: OctalMode = setting(OctalMode(0o660), "File mode of the socket.")
    listen: HostPort | None = setting(
        HostPort("127.0.0.1", 8001),
        'Loopback TCP listener of the ingest API; `""` turns it off. Keep it on loopback: '
        "it has no authentication.",
    )
    max_request_bytes: int = setting(1048576, "Larger bodies are refused with 413.", minimum=1)
    queue_size: int = setting(
        10000,
        "Entries waiting for Redis. Beyond it new entries are dropped and counted "
        '(`events_cache_dropped_total{reason="queue_full"}`).',
        minimum=1,
    )


@dataclass(frozen=True)
class Api:
    """sidecar.api: the listener of the query API and the operations endpoints."""

    listen: HostPort | None = setting(
        HostPort("0.0.0.0", 8080),
        "Query API, viewer, `/metrics`, `/healthz`, `/readyz`, `/openapi.json`. Must be set.",
        check=lambda value: None if value is not None else "must be set: it serves /healthz",
    )
    max_response_events: int = setting(
        10000,
        "No query answer holds more events than this; a cut answer carries the header "
        "`X-Events-Cache-Truncated: true`.",
        minimum=1,
    )
    max_streams: int = setting(
        32,
        "Concurrent live-tail streams (`/api/v1/events/stream`) per pod; more are "
        "refused with 503.",
        minimum=0,
    )
    viewer: bool = setting(
        True,
        "Serve the viewer page at `/ui/` (and redirect `/` to it): the cache in a browser, "
        "through the query API and the admin token.",
    )


@dataclass(frozen=True)
class Shutdown:
    """sidecar.shutdown: what SIGTERM does."""

    drain_seconds: float = setting(
        5.0,
        "After SIGTERM, keep taking ingest this long (the ingest container is stopping too).",
        minimum=0,
    )
    flush_timeout_seconds: float = setting(
        10.0,
        "Then write what is queued within this time; the rest is counted as "
        '`dropped{reason="shutdown"}`.',
        minimum=0,
    )


@dataclass(frozen=True)
class Log:
    """sidecar.log."""

    level: str = setting(
        "info",
        "`debug`, `info`, `warning`, `error`, `critical`.",
        choices=LOG_LEVELS,
        env="EVENTS_CACHE_LOG_LEVEL",
        lower=True,
    )
    format: str = setting(
        "json",
        "`json` (one object per line) or `console`.",
        choices=LOG_FORMATS,
        env="EVENTS_CACHE_LOG_FORMAT",
        lower=True,
    )


@dataclass(frozen=True)
class Sidecar:
    """sidecar: everything that is not Jitsu Classic's."""

    ingest: Ingest = section(Ingest)
    api: Api = section(Api)
    shutdown: Shutdown = section(Shutdown)
    log: Log = section(Log)
