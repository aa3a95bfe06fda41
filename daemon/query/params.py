"""Query parameters of the query API, validated, with messages naming the parameter.

Jitsu Classic's parameters keep their rules and messages (`limit must be int`); the
additions (filters, paging, the summary, reset, the stream) follow the same style.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from daemon.core.capture import check_capture
from daemon.core.eventid import MAX_EVENT_ID, as_event_id
from daemon.core.ids import check_id
from daemon.core.model import Collection, Namespace
from daemon.core.stamp import v7_uid
from daemon.core.wire import DEFAULT_IDS_LIMIT, DEFAULT_LIMIT, MAX_IDS_LIMIT, MAX_QUERY_TEXT

_INTEGER = re.compile(r"-?[0-9]{1,18}")
MAX_UID_LENGTH = 64


class QueryError(ValueError):
    """A query parameter is wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class CacheQuery:
    """The parsed parameters of GET /api/v1/events/cache."""

    namespace: Namespace
    collection: Collection
    limit: int
    ids: tuple[str, ...] | None  # None: every id of the namespace
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""  # lower case
    before: str = ""  # a uid
    uid: str = ""  # just the entry with this uid, whole
    after: str = ""  # a version 7 uid: only entries cached after it (the stream's resume)
    capture: str = ""  # only entries carrying this capture tag

    @property
    def filtered(self) -> bool:
        """Whether anything beyond Jitsu's own parameters narrows the answer."""
        return any(
            (self.since, self.until, self.q, self.before, self.uid, self.after, self.capture)
        )


@dataclass(frozen=True, slots=True)
class StreamQuery:
    """The parsed parameters of GET /api/v1/events/stream: what it watches, and what it
    sends first (the backfill): the newest `last` cached events, or those since `since`,
    or (on a reconnect) those cached after `after`."""

    namespace: Namespace
    collection: Collection
    ids: tuple[str, ...] | None
    last: int = 0
    since: datetime | None = None
    after: str = ""  # Last-Event-ID, a version 7 uid
    unknown_anchor: bool = False  # a Last-Event-ID was given that is not a version 7 uid
    q: str = ""  # lower case: only entries with a text field holding it (the wait's read)

    @property
    def backfills(self) -> bool:
        """Whether the stream starts with cached events."""
        return bool(self.last or self.since or self.after)


@dataclass(frozen=True, slots=True)
class IdsQuery:
    """The parsed parameters of GET /api/v1/events/ids."""

    namespace: Namespace
    q: str
    limit: int
    cursor: str


@dataclass(frozen=True, slots=True)
class ResetQuery:
    """The parsed parameters of DELETE /api/v1/events/cache."""

    namespace: Namespace
    ids: tuple[str, ...]  # empty with everything=True
    everything: bool
    capture: str = ""  # only the entries carrying this tag (ids: those, or a page of the index)
    cursor: str = ""  # with capture and no ids: where the index page starts
    by_index: bool = False  # with capture and no ids: a page of the id index is read


def namespace(params: Mapping[str, str]) -> Namespace:
    """`namespace`: destination (the default, as in Jitsu) or token."""
    text = params.get("namespace", "") or Namespace.DESTINATION
    if text not in (Namespace.TOKEN, Namespace.DESTINATION):
        raise QueryError(f"namespace must be 'token' or 'destination', got {text[:100]!r}")
    return Namespace(text)


def collection(params: Mapping[str, str]) -> Collection:
    """`status`: empty (all events) or error (the errors-only lists)."""
    status = params.get("status", "")
    if status not in ("", "error"):
        raise QueryError(f"status must be empty or 'error', got {status[:100]!r}")
    return Collection.ERROR if status == "error" else Collection.ALL


def ids(params: Mapping[str, str]) -> tuple[str, ...] | None:
    """`ids` (comma-separated, each id meeting the id rule: 400 otherwise) and `id`
    (repeated, each taken whole as it is stored, so that an id written before the rule,
    `alice,bob` or one ending in a space, can still be read and reset); de-duplicated, in
    order. Neither given: None (every id); given but empty: none."""
    whole = [i for i in _every(params, "id") if i]
    if "ids" not in params and not whole:
        return None
    listed = [i.strip() for i in params.get("ids", "").split(",") if i.strip()]
    for id_ in listed:
        problem = check_id(id_)
        if problem is not None:
            raise QueryError(
                f"ids: {id_[:100]!r} {problem}; pass an id stored before this rule whole, "
                "as id=<id> (repeat id= for several)"
            )
    return tuple(dict.fromkeys([*listed, *whole]))


def _every(params: Mapping[str, str], name: str) -> list[str]:
    """Every value of a repeated query parameter (a plain mapping holds at most one)."""
    getall = getattr(params, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = params.get(name)
    return [value] if value is not None else []


def integer(params: Mapping[str, str], name: str, default: int, message: str) -> int:
    text = params.get(name, "")
    if text == "":
        return default
    if not _INTEGER.fullmatch(text):
        raise QueryError(message)
    return int(text)


def moment(params: Mapping[str, str], name: str) -> datetime | None:
    text = params.get(name, "")
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or "T" not in text.upper():
        raise QueryError(f"{name} must be RFC 3339 with a time zone, e.g. 2024-05-01T12:00:00Z")
    return value


def text_param(params: Mapping[str, str], name: str, limit: int) -> str:
    text = params.get(name, "")
    if len(text) > limit:
        raise QueryError(f"{name} must be at most {limit} characters")
    return text


def parse_query(params: Mapping[str, str], size: int) -> CacheQuery:
    """GET /api/v1/events/cache; `limit` is capped at `size`."""
    limit = integer(params, "limit", DEFAULT_LIMIT, "limit must be int")
    if limit < 0:
        raise QueryError("limit must be >= 0")
    since, until = moment(params, "since"), moment(params, "until")  # since > until: none
    before, uid = (
        text_param(params, "before", MAX_UID_LENGTH),
        text_param(params, "uid", MAX_UID_LENGTH),
    )
    if before and uid:
        raise QueryError("give either uid (one entry) or before (a page), not both")
    return CacheQuery(
        namespace=namespace(params),
        collection=collection(params),
        limit=min(limit, size),
        ids=ids(params),
        since=since,
        until=until,
        q=text_param(params, "q", MAX_QUERY_TEXT).lower(),
        before=before,
        uid=uid,
        capture=capture_tag(params),
    )


def capture_tag(params: Mapping[str, str]) -> str:
    """`capture`: a tag as the ingest takes it (daemon.core.capture), or "" (none)."""
    tag = params.get("capture", "")
    problem = check_capture(tag) if tag else None
    if problem:
        raise QueryError(f"capture {problem}")
    return tag


def parse_stream(params: Mapping[str, str], last_event_id: str, cap: int) -> StreamQuery:
    """GET /api/v1/events/stream; `last` is capped at `cap`. A Last-Event-ID that is a
    version 7 uid replaces `last` and `since` (a reconnect resumes where it left off);
    any other is ignored (and said so: `unknown_anchor`)."""
    last = integer(params, "last", 0, "last must be int")
    if last < 0:
        raise QueryError("last must be >= 0")
    since = moment(params, "since")
    if last and since:
        raise QueryError("give either last (the newest N events) or since (a time), not both")
    after = (v7_uid(last_event_id) if len(last_event_id) <= MAX_UID_LENGTH else None) or ""
    watched = ids(params)
    return StreamQuery(
        namespace=namespace(params),
        collection=collection(params),
        ids=watched,
        last=0 if after else min(last, cap),
        since=None if after else since,
        after=after,
        unknown_anchor=bool(last_event_id.strip()) and not after,
    )


def parse_ids_query(params: Mapping[str, str]) -> IdsQuery:
    """GET /api/v1/events/ids."""
    limit = integer(params, "limit", DEFAULT_IDS_LIMIT, "limit must be int")
    if not 1 <= limit <= MAX_IDS_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_IDS_LIMIT}")
    return IdsQuery(
        namespace=namespace(params),
        q=text_param(params, "q", MAX_QUERY_TEXT),
        limit=limit,
        cursor=text_param(params, "cursor", 4 * MAX_QUERY_TEXT),
    )


def parse_reset(params: Mapping[str, str]) -> ResetQuery:
    """DELETE /api/v1/events/cache: `ids` is required, or `all=true` for everything."""
    everything_text = params.get("all", "false")
    if everything_text not in ("true", "false"):
        raise QueryError(f"all must be 'true' or 'false', got {everything_text[:100]!r}")
    everything = everything_text == "true"
    named = ids(params)
    tag = capture_tag(params)
    if tag:
        return _reset_captured(params, tag, everything, named)
    if everything and named:
        raise QueryError("give either ids or all=true, not both")
    if not everything and not named:
        raise QueryError(
            "ids is required (comma-separated, or repeated id=), or all=true to reset the namespace"
        )
    return ResetQuery(namespace(params), named or (), everything)


# DELETE by capture: the ids whose lists one request reads (given, or a page of the index).
MAX_CAPTURE_RESET_IDS = 200


def _reset_captured(
    params: Mapping[str, str], tag: str, everything: bool, named: tuple[str, ...] | None
) -> ResetQuery:
    if everything:
        raise QueryError("give capture with ids or alone, not with all=true")
    if named is not None and len(named) > MAX_CAPTURE_RESET_IDS:
        raise QueryError(
            f"with capture, give at most {MAX_CAPTURE_RESET_IDS} ids a request, got {len(named)}"
        )
    cursor = text_param(params, "cursor", 4 * MAX_QUERY_TEXT)
    if cursor and named is not None:
        raise QueryError("with capture, cursor pages through the id index: give it without ids")
    return ResetQuery(namespace(params), named or (), False, tag, cursor, by_index=named is None)


def parse_journey(params: Mapping[str, str]) -> str:
    """GET /api/v1/events/journey: `event_id`, required, at most MAX_EVENT_ID characters."""
    event_id = params.get("event_id", "")
    if not event_id:
        raise QueryError("event_id is required")
    if as_event_id(event_id) is None:
        raise QueryError(f"event_id must be at most {MAX_EVENT_ID} characters, with no NUL")
    return event_id
