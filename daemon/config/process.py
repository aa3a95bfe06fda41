"""sidecar.shutdown and sidecar.log: how this process stops and what it says."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config.fields import setting

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")


@dataclass(frozen=True)
class ShutdownSettings:
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
class LogSettings:
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
