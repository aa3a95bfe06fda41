"""Parameters of GET /api/v1/events/wait, validated, with messages naming the parameter
(the same rules as the other queries' for what they share: `daemon.query.params`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from daemon.core.eventid import MAX_EVENT_ID, as_event_id
from daemon.core.model import Collection, Namespace
from daemon.core.wire import MAX_QUERY_TEXT
from daemon.query.params import (
    QueryError,
    capture_tag,
    collection,
    ids,
    integer,
    moment,
    namespace,
    text_param,
)

MAX_TIMEOUT_S = 120.0  # a longer timeout is taken as this
DEFAULT_TIMEOUT_S = 30.0
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?s?")


@dataclass(frozen=True, slots=True)
class WaitQuery:
    """What a long poll waits for: `count` cached events of the namespace's ids (None:
    any id) and collection, carrying `event_id` (empty: any), holding `q` (lower case,
    empty: any), carrying the capture tag `capture` (empty: any), and cached after the
    wait began, or since `since` when given."""

    namespace: Namespace
    collection: Collection
    ids: tuple[str, ...] | None
    event_id: str
    q: str
    capture: str
    since: datetime | None
    count: int
    timeout_s: float


def _timeout(params: Mapping[str, str]) -> float:
    value = params.get("timeout", "")
    if value == "":
        return DEFAULT_TIMEOUT_S
    if not _SECONDS.fullmatch(value):
        raise QueryError(
            f"timeout must be a number of seconds (e.g. 30 or 2.5), got {value[:100]!r}"
        )
    seconds = float(value.removesuffix("s"))
    return min(seconds, MAX_TIMEOUT_S) if math.isfinite(seconds) else MAX_TIMEOUT_S


def _event_id(params: Mapping[str, str], rules_on: bool) -> str:
    value = params.get("event_id", "")
    if not value:
        return ""
    if as_event_id(value) is None:
        raise QueryError(f"event_id must be at most {MAX_EVENT_ID} characters, with no NUL")
    if not rules_on:
        raise QueryError(
            "event_id needs sidecar.journey.event_id_from (where an event's id is); "
            "it is empty on this sidecar"
        )
    return value


def parse_wait(params: Mapping[str, str], max_events: int, rules_on: bool) -> WaitQuery:
    """GET /api/v1/events/wait; `count` at most `max_events` (`max_response_events`),
    `timeout` capped at MAX_TIMEOUT_S; `rules_on`: event ids can be found."""
    count = integer(params, "count", 1, "count must be int")
    if not 1 <= count <= max_events:
        raise QueryError(f"count must be between 1 and {max_events} (max_response_events)")
    return WaitQuery(
        namespace=namespace(params),
        collection=collection(params),
        ids=ids(params),
        event_id=_event_id(params, rules_on),
        q=text_param(params, "q", MAX_QUERY_TEXT).lower(),
        capture=capture_tag(params),
        since=moment(params, "since"),
        count=count,
        timeout_s=_timeout(params),
    )
