"""events_cache_http_request_duration_seconds, served from two sources: aiohttp's
listeners observe a prometheus_client histogram, the ingest side counts in plain rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import Histogram
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from daemon.metrics.plain import LATENCY_BUCKETS, RequestTimes

HTTP_DURATION = "events_cache_http_request_duration_seconds"
HTTP_DURATION_HELP = "HTTP request handling time."
HTTP_LABELS = ("listener", "route", "method", "status")


class HttpDuration(Collector):
    """events_cache_http_request_duration_seconds: the prometheus_client histogram's
    series (the API, mirror and proxy listeners) and the RequestTimes' (the ingest)."""

    def __init__(self, histogram: Histogram, times: dict[str, RequestTimes]) -> None:
        self._histogram = histogram
        self._times = times
        go_float: Callable[[float], str] = floatToGoString  # as Histogram writes `le`
        self._les = [go_float(b) for b in LATENCY_BUCKETS] + ["+Inf"]

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(HTTP_DURATION, HTTP_DURATION_HELP, labels=HTTP_LABELS)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(HTTP_DURATION, HTTP_DURATION_HELP, labels=HTTP_LABELS)
        for metric in self._histogram.collect():
            family.samples.extend(metric.samples)
        for listener, times in self._times.items():
            for (route, method, status), row in list(times.rows.items()):
                cumulative, buckets = 0.0, []
                for le, n in zip(self._les, row, strict=False):
                    cumulative += n
                    buckets.append((le, cumulative))
                family.add_metric([listener, route, method, str(status)], buckets, row[-1])
        yield family
