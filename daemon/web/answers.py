"""The JSON answers of the ingest-side listeners, the 202 with its counts among them.

Kept apart from the handlers (`daemon.web.ingest`) so that the answer's shape, and the
cache of the few plain 202s a busy pod repeats, have one home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from daemon.core.accounting import Outcome, ingest_answer
from daemon.core.parse import LineError


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON answer: its status, its encoded body, and whether the connection must close
    after it (the request's body was not read to its end)."""

    status: int
    body: bytes
    close: bool = False
    headers: bytes = b""  # more header lines, each as b"\r\nName: value"


def answer(doc: object, status: int, close: bool = False) -> Answer:
    """`doc` as a JSON answer."""
    return Answer(status, orjson.dumps(doc), close)


def message(status: int, text: str, close: bool = False) -> Answer:
    """The error shape of every listener: {"message": ...}."""
    return answer({"message": text}, status, close)


# The 202s of requests with no invalid line, by their counts: a busy pod answers the same
# few (one event accepted, one limited) over and over.
_PLAIN_ANSWERS: dict[tuple[int, int, int, bool], Answer] = {}
_MAX_PLAIN_ANSWERS = 1024


def accepted(
    outcome: Outcome,
    invalid: int = 0,
    errors: list[LineError] | None = None,
    limited: list[dict[str, Any]] | None = None,
) -> Answer:
    """The 202 answer with the request's counts; with `limited` (POST /v1/events, even
    empty: it tells the client that count lines are understood), the ids held back."""
    if invalid or errors or limited:
        doc = ingest_answer(outcome, invalid, errors or [])
        if limited is not None:
            doc["limited"] = limited
        return answer(doc, 202)
    counts = (outcome.accepted, outcome.rate_limited, outcome.dropped, limited is not None)
    plain = _PLAIN_ANSWERS.get(counts)
    if plain is None:
        if len(_PLAIN_ANSWERS) >= _MAX_PLAIN_ANSWERS:
            _PLAIN_ANSWERS.clear()
        doc = ingest_answer(outcome, 0, ())
        if limited is not None:
            doc["limited"] = []
        plain = _PLAIN_ANSWERS[counts] = answer(doc, 202)
    return plain
