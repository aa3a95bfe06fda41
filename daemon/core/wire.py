"""Names and numbers on the wire: paths, headers, id length, default limit.

One place for what the ingest container, the query clients, the OpenAPI document, the
tests and the benchmarks must agree on.
"""

from __future__ import annotations

from typing import Final

# Ingest listener (pod-private: Unix socket and loopback TCP).
TOKEN_EVENTS_PATH: Final = "/v1/token/{token_id}/events"
NDJSON_EVENTS_PATH: Final = "/v1/events"
# The methods request durations are labelled with; any other is "other" (bounded labels).
KNOWN_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SKIP_HEADER: Final = "X-Events-Cache-Skip"
ERROR_HEADER: Final = "X-Events-Cache-Error"
MAX_ID_BYTES: Final = 1024  # an API key or destination id, UTF-8
# The ingest side's request target carries the token id: MAX_ID_BYTES bytes,
# percent-encoded 3 bytes each, fit in 16 KiB (aiohttp's default line: 8190).
MAX_TARGET_BYTES: Final = 16384
MAX_REPORTED_ERRORS: Final = 10  # NDJSON line errors listed in one 202 answer

# Mirror and proxy listeners: every method and path goes to one handler.
ANY_PATH: Final = "/{tail:.*}"

# API listener.
CACHE_PATH: Final = "/api/v1/events/cache"  # GET (Jitsu's answer, filters), DELETE (reset)
IDS_PATH: Final = "/api/v1/events/ids"  # the summary: which ids the cache holds
STREAM_PATH: Final = "/api/v1/events/stream"  # live tail, Server-Sent Events
JOURNEY_PATH: Final = "/api/v1/events/journey"  # one event through every destination
WAIT_PATH: Final = "/api/v1/events/wait"  # long poll: until matching events are cached
ACTIVITY_PATH: Final = "/api/v1/events/activity"  # per id and minute, for charts
ERRORS_PATH: Final = "/api/v1/errors"  # error signatures, most frequent first
METRICS_PATH: Final = "/metrics"
HEALTHZ_PATH: Final = "/healthz"
READYZ_PATH: Final = "/readyz"
OPENAPI_PATH: Final = "/openapi.json"
VIEWER_PATH: Final = "/ui/"  # the viewer page; it reaches the API by relative URLs only
TOKEN_HEADER: Final = "X-Admin-Token"
DEFAULT_LIMIT: Final = 100  # events per id when `limit` is absent (Jitsu's default)
TRUNCATED_HEADER: Final = "X-Events-Cache-Truncated"  # "true" when an answer was cut
DEFAULT_IDS_LIMIT: Final = 100  # ids per summary page
MAX_IDS_LIMIT: Final = 1000
MAX_QUERY_TEXT: Final = 1000  # characters of `q`
HEARTBEAT_S: Final = 10.0  # a comment line on every live-tail stream at least this often
UNAUTHORIZED: Final = "Admin token does not match"

JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
