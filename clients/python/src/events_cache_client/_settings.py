"""Where the sidecar is and how the client batches: arguments, else the environment."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SOCKET_ENV = "EVENTS_CACHE_SOCKET"
URL_ENV = "EVENTS_CACHE_URL"
DEFAULT_SOCKET = "/var/run/events-cache/ingest.sock"  # the chart's socket path
EVENTS_PATH = "/v1/events"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Settings:
    """The client's settings; `resolve()` fills the transport from arguments or env."""

    socket: str = ""
    url: str = ""
    max_request_bytes: int = 1_048_576  # the sidecar's sidecar.ingest.max_request_bytes
    max_batch_events: int = 500
    flush_interval_s: float = 0.1
    buffer_events: int = 10_000
    buffer_bytes: int = 8 * 1_048_576
    timeout_s: float = 2.0
    max_malformed_bytes: int = 10_000  # the sidecar's max_malformed_event_size_bytes
    max_backoff_s: float = 1.0
    timestamps: bool = True  # stamp each event with the time of the call

    def resolve(self, environ: Mapping[str, str] | None = None) -> Settings:
        """These settings with the transport chosen: the socket argument, the URL
        argument, EVENTS_CACHE_SOCKET, EVENTS_CACHE_URL, else the chart's socket path.
        ValueError when a setting is unusable (the only error the client raises)."""
        env = os.environ if environ is None else environ
        socket, url = self.socket, self.url
        if not socket and not url:
            socket = env.get(SOCKET_ENV, "")
            url = "" if socket else env.get(URL_ENV, "")
            if not socket and not url:
                socket = DEFAULT_SOCKET
        if socket:
            url = ""
        else:
            parse_url(url)
        for name in ("max_request_bytes", "max_batch_events", "buffer_events", "buffer_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("flush_interval_s", "timeout_s", "max_backoff_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        return dataclasses.replace(self, socket=socket, url=url)

    @property
    def target(self) -> str:
        """Where events go, for messages."""
        return f"unix:{self.socket}" if self.socket else self.url


def parse_url(url: str) -> tuple[str, int, str]:
    """(host, port, path of POST /v1/events) of an http:// URL; ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"events-cache URL must be http://host:port, got {url!r}")
    try:
        port = parts.port or 80
    except ValueError as e:
        raise ValueError(f"events-cache URL has a bad port: {url!r}") from e
    return parts.hostname, port, parts.path.rstrip("/") + EVENTS_PATH


def _settings(
    socket: str | None, url: str | None, settings: Settings | None, options: Mapping[str, Any]
) -> Settings:
    """A client's settings: `settings` with `options` and the transport arguments applied."""
    base = dataclasses.replace(settings or Settings(), **options)
    if socket or url:
        base = dataclasses.replace(base, socket=socket or "", url=url or "")
    return base.resolve()
