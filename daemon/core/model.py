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


class Target(IntFlag):
    """Which lists of its id an entry is written to."""

    NONE = 0
    ALL = 1
    ERROR = 2
