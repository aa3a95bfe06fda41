"""Metrics kept as plain numbers on the ingest's hot path and read at scrape time: a list
add or a float add instead of prometheus_client's lock and calls per request. Only the
event loop's thread touches them; `daemon.metrics` registers their collectors.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class RequestTimes:
    """Request durations of one listener as plain numbers: per (route, method, status),
    a count per latency bucket (the last one +Inf) followed by the sum of the seconds.

    The ingest's hot path adds to a list instead of calling prometheus_client's
    histogram; the numbers join `events_cache_http_request_duration_seconds` at scrape
    time, under the same labels and buckets. Only the event loop's thread touches them.
    """

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request of `seconds`."""
        row = self.rows.get((route, method, status))
        if row is None:
            row = self.rows[route, method, status] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        row[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        row[-1] += seconds


class PlainCount:
    """One series of a counter as a plain number, for the counters the ingest moves on
    every request: no lock (every caller runs on the event loop's thread), read at scrape
    time by PlainCounters."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (as prometheus_client's Counter.inc; never negative here)."""
        self.value += amount


class PlainCounters(Collector):
    """A counter family whose series are PlainCounts: exposed as prometheus_client's
    Counter would be (`<name>_total`, the same help and labels)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: list[str],
        series: dict[tuple[str, ...], PlainCount],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._documentation, self._labels = name, documentation, labels
        self._series = series
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, labels=self._labels)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for values, count in self._series.items():
            family.add_metric(list(values), count.value)
        yield family
