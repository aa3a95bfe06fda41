"""The key layout in Redis, in one place.

Jitsu Classic's keys, so that both can share one Redis during a migration:
- `events_cache:<namespace>#<id>` all events of an id, newest first (a List);
- `events_cache:<namespace>#<id>:error` its error events only;
and the sidecar's own bookkeeping, under the same prefix:
- `events_cache:index:<namespace>` the id index (a Sorted Set, score = last write time);
- `events_cache:limited:<namespace>#<id>:<collection>:<minute>` limited-event counts
  of every sidecar, one hash field per second;
- `events_cache:journey:<bucket>:<shard>` which lists the event ids of one shard (of
  JOURNEY_SHARDS, by a hash of the id) cached in a five-minute window went to (the
  journey's index, expiring `sidecar.journey.retention_minutes` after the window);
- `events_cache:activity:<namespace>#<id>:<hour>` an id's activity counts of every
  sidecar in one hour, one hash field per minute and kind (`daemon.store.activity`);
- `events_cache:errors:<namespace>:<minute>` error signatures cached in a minute, with
  `:first`, `:last`, `:sigs` and `:ids:<signature hash>` beside it (`daemon.store.errors`);
- `events_cache:tail:watchers` exists while a live-tail stream is open on any sidecar,
  and `events_cache:tail` is the Pub/Sub channel the writers then publish batches to
  (`events_cache:tail:db<N>` on database N > 0: channels are server-wide, keys are not).
"""

from __future__ import annotations

from daemon.core.model import Collection

KEY_PREFIX = "events_cache:"
LIMITED_KEY_TTL_S = 180  # a minute's hash is read for two minutes, then expires
# The live tail: a batch's entries are published here while this key exists (any
# sidecar with an open stream keeps it alive; see daemon.pipeline.tailswitch).
TAIL_CHANNEL = f"{KEY_PREFIX}tail"
TAIL_WATCHERS_KEY = f"{KEY_PREFIX}tail:watchers"


def tail_channel(database: int) -> str:
    """The live tail's channel for the sidecars of one database. Pub/Sub channels are
    shared by every database of a server, so sidecars on database 13 and 14 of one Redis
    (two environments, say) would otherwise see each other's events."""
    return TAIL_CHANNEL if database == 0 else f"{TAIL_CHANNEL}:db{database}"


def events_key(namespace: str, id_: str, collection: Collection = Collection.ALL) -> str:
    """The List of an id's events (all, or errors only)."""
    suffix = ":error" if collection == Collection.ERROR else ""
    return f"{KEY_PREFIX}{namespace}#{id_}{suffix}"


def index_key(namespace: str) -> str:
    """The Sorted Set of ids that have been written, by last write time."""
    return f"{KEY_PREFIX}index:{namespace}"


def limited_key(namespace: str, id_: str, collection: str, minute: int) -> str:
    """The hash of one minute's limited counts for an id and collection."""
    return f"{KEY_PREFIX}limited:{namespace}#{id_}:{collection}:{minute}"


def journey_key(bucket: int, shard: int) -> str:
    """The Sorted Set of the event ids of one shard (`daemon.store.journey.journey_shard`)
    cached in one JOURNEY_BUCKET_S window (`bucket` is its start over the width), each
    with the lists it went to (`daemon.store.journey`)."""
    return f"{KEY_PREFIX}journey:{bucket}:{shard}"


def activity_key(namespace: str, id_: str, hour: int) -> str:
    """The hash of an id's activity counts in one hour (seconds since the epoch // 3600)."""
    return f"{KEY_PREFIX}activity:{namespace}#{id_}:{hour}"


def errors_key(namespace: str, minute: int, part: str = "") -> str:
    """A key of the error signatures counted in one minute (`daemon.store.errors`): the
    counts (no `part`), or its `first`, `last`, `sigs` or `ids:<hash>` key."""
    return f"{KEY_PREFIX}errors:{namespace}:{minute}{':' if part else ''}{part}"
