"""What one ingest request did with its events, as the 202 answer reports it.

Every event a request hands over ends up accepted (queued for Redis), rate limited, or
dropped (the queue was full); invalid NDJSON lines are counted apart, they are not
events. Prometheus keeps the same account over time:
received = cached{all} + rate_limited{all} + dropped + still queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daemon.core.parse import LineError


@dataclass(slots=True)
class Outcome:
    """The events of one request: queued for Redis, rate limited, or dropped."""

    accepted: int = 0
    rate_limited: int = 0
    dropped: int = 0


def ingest_answer(outcome: Outcome, invalid: int, errors: Sequence[LineError]) -> dict[str, Any]:
    """The body of the ingest's 202: the counts, and the first invalid lines' messages."""
    return {
        "accepted": outcome.accepted,
        "rate_limited": outcome.rate_limited,
        "dropped": outcome.dropped,
        "invalid": invalid,
        "errors": [{"line": e.line, "message": e.message} for e in errors],
    }
