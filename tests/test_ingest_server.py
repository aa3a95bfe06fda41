"""The ingest's low-level server: the path dispatch matches aiohttp's router, and its
request times reach `events_cache_http_request_duration_seconds` with the same labels
and buckets as prometheus_client's histogram gives the other listeners.
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from daemon.metrics import Metrics
from daemon.web.front.routes import token_of
from tests.support.daemon import StartDaemon
from tests.support.scrape import parse_metrics

DURATION = "events_cache_http_request_duration_seconds"


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/v1/token/k/events", "k"),
        ("/v1/token/a%2Fb/events", "a/b"),  # an escaped "/" is part of the id
        ("/v1/token/50%25/events", "50%"),
        ("/v1/token/a%20b/events", "a b"),
        ("/v1/token/caf%C3%A9/events", "café"),
        ("/v1/token/%FF/events", "%FF"),  # escapes that are not UTF-8 stay as sent
        ("/v1/token/%7Bx%7D/events", "{x}"),  # braces: the id rule takes them
        ("/v1/token/{x}/events", "{x}"),
        ("/v1/token//events", None),
        ("/v1/token/events", None),
        ("/v1/token/a/b/events", None),
        ("/v1/token/k/events/", None),
        ("/v1/token/k/event", None),
        ("/v1/events", None),
    ],
)
def test_token_of_takes_one_percent_decoded_segment(path: str, token: str | None) -> None:
    assert token_of(path.encode()) == token


def test_request_times_scrape_as_the_histogram_would() -> None:
    metrics = Metrics("test")
    durations = (0.0001, 0.0005, 0.0007, 0.003, 0.04, 3.0)
    for seconds in durations:
        metrics.ingest_times.observe("/v1/events", "POST", 202, seconds)
        metrics.http_duration.labels("api", "/v1/events", "POST", "202").observe(seconds)
    samples = parse_metrics(generate_latest(metrics.registry).decode())
    ours = {k: v for k, v in samples.items() if k.startswith(DURATION) and "ingest" in k}
    theirs = {k: v for k, v in samples.items() if k.startswith(DURATION) and '"api"' in k}
    assert len(ours) == len(theirs) == 15  # 13 buckets, _count, _sum
    assert {k.replace('"ingest"', '"api"'): v for k, v in ours.items()} == pytest.approx(theirs)
    le = DURATION + '_bucket{le="0.0005",listener="ingest",method="POST",route="/v1/events",'
    assert samples[le + 'status="202"}'] == 2  # le is inclusive, as Prometheus' is


def test_ingest_requests_are_counted_per_route_method_and_status(
    start_daemon: StartDaemon,
) -> None:
    daemon = start_daemon()
    for via in ("unix", "tcp"):
        assert daemon.post_token("k", b'{"a": 1}', via=via).status == 202
    assert daemon.post_token("a/b", b'{"a": 1}').status == 202
    assert daemon.post_ndjson([{"namespace": "token", "id": "k", "event": {}}]).status == 202
    assert daemon.ingest("/v1/events", method="GET").status == 405
    assert daemon.ingest("/v1/events", method="PROPFIND").status == 405
    assert daemon.ingest("/nope").status == 404
    m = daemon.metrics()

    def count(route: str, method: str, status: int) -> float:
        """The series' count, once its buckets are checked: 13, cumulative, +Inf = count."""
        labels = f'listener="ingest",method="{method}",route="{route}",status="{status}"'
        found = {k: v for k, v in m.items() if k.startswith(DURATION) and labels in k}
        buckets = [v for k, v in found.items() if "_bucket" in k]
        assert len(buckets) == 13 and buckets == sorted(buckets), found
        assert buckets[-1] == found[f"{DURATION}_count{{{labels}}}"], found
        assert found[f"{DURATION}_sum{{{labels}}}"] > 0, found
        return buckets[-1]

    assert count("/v1/token/{token_id}/events", "POST", 202) == 3
    assert count("/v1/events", "POST", 202) == 1
    assert count("unmatched", "GET", 405) == 1
    assert count("unmatched", "other", 405) == 1
    assert count("unmatched", "POST", 404) == 1
