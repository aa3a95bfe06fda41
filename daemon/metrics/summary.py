"""The one summary line at shutdown: totals of the event counters that add up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from daemon.core.model import Collection

_TOTALS = ("received", "cached", "rate_limited", "dropped")


def totals(registry: CollectorRegistry) -> dict[str, float]:
    """Totals of the event counters for the one summary line at shutdown, which add
    up: received = cached + rate_limited + dropped (+ still queued, nothing once
    flushed); the error lists' counts apart, since an error is counted in both."""
    samples = [
        s
        for family in registry.collect()
        if family.name.removeprefix("events_cache_") in _TOTALS
        for s in family.samples
        if s.name.endswith("_total")
    ]

    def total(name: str, collection: str = "") -> float:
        return sum(
            s.value
            for s in samples
            if s.name == f"events_cache_{name}_total"
            and (not collection or s.labels.get("collection") == collection)
        )

    return {
        "received": total("received"),
        "cached": total("cached", Collection.ALL),
        "rate_limited": total("rate_limited", Collection.ALL),
        "dropped": total("dropped"),
        "cached_errors": total("cached", Collection.ERROR),
        "rate_limited_errors": total("rate_limited", Collection.ERROR),
    }
