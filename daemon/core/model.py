"""The closed sets the cache is organised by: namespaces, collections, targets, drop reasons."""

from __future__ import annotations

from enum import IntFlag, StrEnum


class Namespace(StrEnum):
    """Where an event comes from: raw events by API key, or results by destination."""

    TOKEN = "token"
    DESTINATION = "destination"


class Collection(StrEnum):
    """Every id has an all-events list and an errors-only list."""

    ALL = "all"
    ERROR = "error"


class DropReason(StrEnum):
    """Why an accepted event did not reach Redis."""

    QUEUE_FULL = "queue_full"
    REDIS_ERROR = "redis_error"
    SHUTDOWN = "shutdown"


class TeeOutcome(StrEnum):
    """What became of the copy of a request through the tee proxy."""

    TEED = "teed"  # handed to admission like an ingest request (then cached, limited or dropped)
    NO_BODY = "no_body"
    NO_KEY = "no_key"
    BAD_ID = "bad_id"  # the key found is not an id the cache can store (the id rule)
    TOO_LARGE = "too_large"  # over sidecar.ingest.max_request_bytes
    TOO_MANY_EVENTS = "too_many_events"  # over sidecar.ingest.max_events_per_request
    ENCODING = "encoding"  # a Content-Encoding other than gzip or deflate, or a broken one
    INCOMPLETE = "incomplete"  # the forward failed, or the body did not arrive whole
    UPSTREAM_STATUS = "upstream_status"  # the upstream did not answer 2xx
    DISABLED = "disabled"  # server.cache.enabled is false
    BUSY = "busy"  # no room in sidecar.ingest.inflight_bytes for the copy: let go


class ListenerName(StrEnum):
    """The ingest-side listeners: the `listener` label of refusals."""

    INGEST = "ingest"
    MIRROR = "mirror"
    PROXY = "proxy"


class RejectReason(StrEnum):
    """Why a request was refused at the door (nothing of it cached)."""

    TOO_LARGE = "too_large"  # over max_request_bytes, as sent or once inflated
    TOO_MANY_EVENTS = "too_many_events"  # over max_events_per_request
    BODY_TIMEOUT = "body_timeout"  # not complete body_read_timeout_seconds after its headers
    BAD_ENCODING = (
        "bad_encoding"  # a Content-Encoding not supported, or a body that does not inflate
    )
    BAD_ID = "bad_id"  # an id the id rules refuse
    NO_BODY = "no_body"  # nothing to cache (the mirror, the proxy)


class UpstreamError(StrEnum):
    """Why a forward of the tee proxy failed."""

    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


class Target(IntFlag):
    """Which lists of its id an entry is written to."""

    NONE = 0
    ALL = 1
    ERROR = 2


class RedisOperation(StrEnum):
    """What the sidecar was doing when Redis failed: the `operation` label of
    `events_cache_redis_errors_total` (a fixed set, never an id)."""

    WRITE = "write"  # a writer's batch (LPUSH, ZADD, PUBLISH)
    TRIM = "trim"  # the trim loop (LTRIM, EXPIRE)
    LIMITED = "limited"  # the limited-count flush (HINCRBY, EXPIRE)
    ACTIVITY = "activity"  # the activity-count flush (HINCRBY, EXPIREAT)
    PING = "ping"  # the health probe, and a writer waiting for Redis to return
    QUERY = "query"  # GET /api/v1/events/cache
    SUMMARY = "summary"  # GET /api/v1/events/ids
    RESET = "reset"  # DELETE /api/v1/events/cache
    TAIL = "tail"  # the live tail: the watchers key and the subscription
    ERRORS = "errors"  # error signatures: their once-a-second flush, /api/v1/errors
