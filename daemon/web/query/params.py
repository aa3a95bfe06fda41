"""Query parameters of GET /api/v1/events/cache: validated, with messages naming them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from daemon.core.model import Collection, Namespace
from daemon.core.wire import DEFAULT_LIMIT

_INTEGER = re.compile(r"-?[0-9]{1,18}")


class QueryError(ValueError):
    """A query parameter is wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class CacheQuery:
    """The parsed parameters of one query."""

    namespace: Namespace
    collection: Collection
    limit: int
    ids: tuple[str, ...] | None  # None: every id of the namespace


def parse_query(params: Mapping[str, str], size: int) -> CacheQuery:
    """Validate the query string; raise QueryError with a message naming the parameter."""
    namespace_text = params.get("namespace", "") or Namespace.DESTINATION
    if namespace_text not in (Namespace.TOKEN, Namespace.DESTINATION):
        raise QueryError(
            f"namespace must be 'token' or 'destination', got {namespace_text[:100]!r}"
        )
    status = params.get("status", "")
    if status not in ("", "error"):
        raise QueryError(f"status must be empty or 'error', got {status[:100]!r}")
    limit_text = params.get("limit", "")
    if limit_text == "":
        limit = DEFAULT_LIMIT
    else:
        if not _INTEGER.fullmatch(limit_text):
            raise QueryError("limit must be int")
        limit = int(limit_text)
        if limit < 0:
            raise QueryError("limit must be >= 0")
    ids: tuple[str, ...] | None = None
    if "ids" in params:
        ids = tuple(dict.fromkeys(i.strip() for i in params["ids"].split(",") if i.strip()))
    return CacheQuery(
        namespace=Namespace(namespace_text),
        collection=Collection.ERROR if status == "error" else Collection.ALL,
        limit=min(limit, size),
        ids=ids,
    )
