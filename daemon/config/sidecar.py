"""sidecar: the listeners, the queue, shutdown and logging of this process."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from daemon.config.fields import HostPort, OctalMode, section, setting
from daemon.config.process import LogSettings, ShutdownSettings
from daemon.config.reply import MirrorReplySettings
from daemon.core.capture import check_capture_rules
from daemon.core.eventid import check_event_id_rules
from daemon.core.tokenfrom import check_rules


@dataclass(frozen=True)
class IngestSettings:
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
    max_request_bytes: int = setting(
        1048576,
        'Larger bodies are refused with 413 (`"limit": "bytes"`), as sent or once '
        "inflated (`Content-Encoding`).",
        minimum=1,
    )
    max_events_per_request: int = setting(
        10000,
        "Array elements or NDJSON lines in one request; more are refused with 413 "
        '(`"limit": "events"`), so a client splits by count.',
        minimum=1,
    )
    body_read_timeout_seconds: float = setting(
        10.0,
        "A body not complete this long after its headers is cut: the connection is closed "
        'and counted (`events_cache_rejected_total{reason="body_timeout"}`). Also on the '
        "mirror and proxy listeners. 0: no limit.",
        minimum=0,
    )
    inflight_bytes: int = setting(
        33554432,
        "Bodies being read or admitted at once, over every ingest-side listener (32 MiB); "
        "beyond it a listener waits for room before it reads another body, and the tee "
        "proxy forwards a body without keeping its copy.",
        minimum=1,
    )
    header_read_timeout_seconds: float = setting(
        10.0,
        "A request's line and headers must arrive within this time of the connection (its "
        "first request) or of their first byte (a later request), or the connection is "
        "closed: a slow client holds none longer. Also on the mirror and proxy listeners. "
        "0: no limit (the 75 s keep-alive timeout only).",
        minimum=0,
    )
    queue_size: int = setting(
        10000,
        "Entries waiting for Redis. Beyond it new entries are dropped and counted "
        '(`events_cache_dropped_total{reason="queue_full"}`).',
        minimum=1,
    )
    queue_bytes: int = setting(
        67108864,
        "And their bytes (64 MiB; the writers' batches count until written): whichever "
        "bound is reached first drops new entries "
        '(`events_cache_dropped_total{reason="queue_full"}`).',
        minimum=1,
    )


@dataclass(frozen=True)
class ApiSettings:
    """sidecar.api: the listener of the query API and the operations endpoints."""

    listen: HostPort | None = setting(
        HostPort("0.0.0.0", 8080),
        "Query API, viewer, `/metrics`, `/healthz`, `/readyz`, `/openapi.json`. Must be set.",
        check=lambda value: None if value is not None else "must be set: it serves /healthz",
    )
    header_read_timeout_seconds: float = setting(
        10.0,
        "A request's line and headers must arrive within this time of the connection (its "
        "first request) or of their first byte (a later request), or the connection is "
        "closed. 0: no limit (the 75 s keep-alive timeout only).",
        minimum=0,
    )
    max_response_events: int = setting(
        10000,
        "No query answer holds more events than this; a cut answer carries the header "
        "`X-Events-Cache-Truncated: true`.",
        minimum=1,
    )
    max_response_bytes: int = setting(
        16777216,
        "No query answer holds more bytes of events than this (16 MiB): the `events` array "
        "of an answer is at most this long, its events whole and newest first; a cut answer "
        "carries "
        "`X-Events-Cache-Truncated: true`. An event longer than this on its own is answered "
        "with its long fields cut to their first 8 KiB (marked `cut`); `uid=` answers it "
        "whole. Memory while answering is bounded by it too (see docs/api.md).",
        minimum=131072,
    )
    max_streams: int = setting(
        32,
        "Concurrent live-tail streams (`/api/v1/events/stream`) per pod; more are "
        "refused with 503.",
        minimum=0,
    )
    max_waits: int = setting(
        256,
        "Concurrent long polls (`/api/v1/events/wait`) per pod; more are refused with 503.",
        minimum=0,
    )
    viewer: bool = setting(
        True,
        "Serve the viewer page at `/ui/` (and redirect `/` to it): the cache in a browser, "
        "through the query API and the admin token.",
    )


_TOKEN_FROM_DOC = (
    "Where the API key of a request is, tried in order; the first rule that yields one "
    "wins: `query:<parameter>`, `header:<name>`, `path:<template>` (the whole path, "
    "`{token}` one segment, e.g. `/api/v1/event/{token}`), `json:<field>` (a top-level "
    "string field of a JSON object body). Required when `listen` is set."
)


@dataclass(frozen=True)
class MirrorSettings:
    """sidecar.mirror: the target of a mirrored copy of the ingest's traffic."""

    listen: HostPort | None = setting(
        None,
        'Mirror listener, e.g. `0.0.0.0:8002`; `""` turns it off. Takes any method and '
        "path, answers at once (`reply`) and caches the body as `POST /v1/token/{token}/events` "
        "would; a request without a key is counted in `events_cache_invalid_total`. "
        "Reachable from the pod network when set: see docs/feeding.md.",
    )
    token_from: tuple[str, ...] = setting((), _TOKEN_FROM_DOC, check=check_rules)
    reply: MirrorReplySettings = section(MirrorReplySettings)


def _check_upstream(url: str) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError as e:
        return f"not a URL: {e}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be http://host[:port] or https://host[:port], got {url!r}"
    if parts.path.strip("/") or parts.query or parts.fragment:
        return "must have no path or query: the request's own path and query are appended"
    return None


@dataclass(frozen=True)
class ProxySettings:
    """sidecar.proxy: the tee proxy in front of the ingest container (opt-in)."""

    listen: HostPort | None = setting(
        None,
        'Tee proxy listener, e.g. `0.0.0.0:8000`; `""` turns it off. Forwards every request '
        "to `upstream` unchanged and returns its answer unchanged; bodies whose key is "
        "found are also cached. The ingest's Service then targets this port.",
    )
    upstream: str = setting(
        "",
        "The ingest container, e.g. `http://127.0.0.1:8080`: scheme, host and port only. "
        "Required when `listen` is set.",
        check=_check_upstream,
    )
    token_from: tuple[str, ...] = setting((), _TOKEN_FROM_DOC, check=check_rules)
    connect_timeout_seconds: float = setting(
        5.0,
        "Time to open a connection to `upstream`; beyond it the answer is 504. 0: no limit.",
        minimum=0,
    )
    max_upstream_connections: int = setting(
        256,
        "Open connections to `upstream` at once; a request beyond them waits for one "
        "(within `connect_timeout_seconds`, then 504).",
        minimum=1,
    )
    read_timeout_seconds: float = setting(
        60.0,
        "Longest wait for the upstream's answer to begin, and between two of its reads "
        "of the answer's body; beyond it the answer is 504 (or the connection is cut when "
        "the answer has begun). 0: no limit.",
        minimum=0,
    )


@dataclass(frozen=True)
class JourneySettings:
    """sidecar.journey: finding one event in every list (`/api/v1/events/journey`)."""

    event_id_from: tuple[str, ...] = setting(
        (
            "json:eventn_ctx.event_id",
            "json:eventn_ctx_event_id",
            "json:event_id",
            "json:message_id",
            "json:messageId",
            "record:eventn_ctx_event_id",
        ),
        "Where an event's own id is, tried in order; the first rule that finds a string "
        "(or integer) wins: `json:<dotted.path>` (fields of the original), "
        "`record:<field>` (the value of that field in a destination's `success.record`). "
        "`[]` turns the journey index off.",
        check=check_event_id_rules,
    )
    retention_minutes: int = setting(
        60,
        "How long an event id can be looked up after it was cached (or the lists' TTL, "
        "`ttl_minutes.events_cache`, if shorter).",
        minimum=1,
        maximum=1440,
    )


@dataclass(frozen=True)
class CaptureSettings:
    """sidecar.capture: a test run's tagged events are never lost to the rate limit."""

    from_: tuple[str, ...] = setting(
        (),
        "Where a test run's tag is, tried in order: `header:<name>` (a header of the request, "
        "for all its events) or `json:<dotted.path>` (a string in each event's original). "
        'An NDJSON line may carry its own, `"capture": "<tag>"`, whatever this says.',
        check=check_capture_rules,
    )
    budget_per_minute: int = setting(
        1000,
        "Tagged events this pod caches per minute beyond their id's rate limit (counted in "
        "`events_cache_captured_total`); beyond it they are limited like any other. 0: none.",
        minimum=0,
    )


@dataclass(frozen=True)
class SidecarSettings:
    """sidecar: everything that is not Jitsu Classic's."""

    ingest: IngestSettings = section(IngestSettings)
    api: ApiSettings = section(ApiSettings)
    mirror: MirrorSettings = section(MirrorSettings)
    proxy: ProxySettings = section(ProxySettings)
    journey: JourneySettings = section(JourneySettings)
    capture: CaptureSettings = section(CaptureSettings)
    shutdown: ShutdownSettings = section(ShutdownSettings)
    log: LogSettings = section(LogSettings)
