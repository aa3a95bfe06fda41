"""Parameters of GET /api/v1/errors, validated (the rules shared with the other queries
are `daemon.query.params`')."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from daemon.core.model import Namespace
from daemon.query.params import QueryError, ids, moment, namespace


@dataclass(frozen=True, slots=True)
class ErrorsQuery:
    """The parsed parameters of GET /api/v1/errors."""

    namespace: Namespace
    ids: tuple[str, ...] | None  # None: every id of the namespace
    since: datetime | None = None


MAX_ERRORS_IDS = 1000  # ids one GET /api/v1/errors may name


def parse_errors(params: Mapping[str, str]) -> ErrorsQuery:
    """GET /api/v1/errors: `namespace`, `ids` (at most MAX_ERRORS_IDS), `since`."""
    named = ids(params)
    if named is not None and len(named) > MAX_ERRORS_IDS:
        raise QueryError(f"ids: at most {MAX_ERRORS_IDS} ids, got {len(named)}")
    return ErrorsQuery(namespace(params), named, moment(params, "since"))
