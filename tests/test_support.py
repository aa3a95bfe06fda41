"""The test harness itself: what the other tests rely on when they read logs, poll, scrape
metrics or pick a database, so a broken helper fails here and not as a silent pass."""

from __future__ import annotations

import pytest

from tests.support.daemon import InProcessDaemon, StartDaemon, deep_update
from tests.support.procstat import percentile
from tests.support.scrape import accounted, metric_sum, parse_metrics, sample_key
from tests.support.servers import (
    ephemeral_ports_start,
    free_port,
    port_is_free,
    wait_for,
    worker_database,
)

EXPOSITION = """\
# HELP events_cache_received_total Events handed to the sidecar.
# TYPE events_cache_received_total counter
events_cache_received_total{cache_namespace="token"} 5.0
events_cache_received_total{cache_namespace="destination"} 2.0
# HELP events_cache_cached_total Events written to Redis, per collection.
# TYPE events_cache_cached_total counter
events_cache_cached_total{cache_namespace="token",collection="all"} 4.0
events_cache_cached_total{cache_namespace="token",collection="error"} 1.0
events_cache_cached_total{cache_namespace="destination",collection="all"} 2.0
# HELP events_cache_dropped_total Accepted events that never reached Redis.
# TYPE events_cache_dropped_total counter
events_cache_dropped_total{reason="queue_full"} 1.0
# HELP events_cache_queue_depth Events waiting for a Redis writer.
# TYPE events_cache_queue_depth gauge
events_cache_queue_depth 0.0
"""


def test_in_process_logs_are_each_daemons_own(start_daemon: StartDaemon) -> None:
    first, second = start_daemon(), start_daemon()
    assert first.stop() == 0
    assert '"event":"started"' in first.log() and '"event":"stopped"' in first.log()
    assert '"event":"started"' in second.log()
    assert '"event":"stopped"' not in second.log()
    assert not first.alive and second.alive


def test_an_error_in_a_handler_reaches_the_daemons_log(
    start_daemon: StartDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `clean_log` in test_e2e_bad_input looks for does show up in-process."""
    from daemon.query.service import QueryService

    async def broken(*_: object) -> None:
        raise ValueError("broken on purpose")

    daemon: InProcessDaemon = start_daemon()
    monkeypatch.setattr(QueryService, "events_cache", broken)
    reply = daemon.api("/api/v1/events/cache", {"ids": "a"})
    assert reply.status == 500 and b"broken on purpose" not in reply.raw
    log = daemon.log()
    assert "request failed" in log and "Traceback" in log and "broken on purpose" in log


def test_wait_for_returns_the_value_or_fails_naming_what() -> None:
    calls: list[int] = []

    def third_time() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else None

    assert wait_for(third_time, timeout=5, interval=0) == 3
    with pytest.raises(AssertionError, match=r"the impossible not met within 0\.05s"):
        wait_for(lambda: False, timeout=0.05, what="the impossible")
    with pytest.raises(OSError):
        wait_for(_refused, timeout=0.05)
    with pytest.raises(AssertionError, match="ConnectionRefusedError"):
        wait_for(_refused, timeout=0.05, ignore=(OSError,))


def _refused() -> bool:
    raise ConnectionRefusedError("nobody listens")


def test_metrics_parsing_and_the_accounting_identity() -> None:
    samples = parse_metrics(EXPOSITION)
    key = sample_key("events_cache_cached_total", {"cache_namespace": "token", "collection": "all"})
    assert key == 'events_cache_cached_total{cache_namespace="token",collection="all"}'
    assert samples[key] == 4.0
    assert samples["events_cache_queue_depth"] == 0.0
    # token: 5 received, 4 cached in all, 1 dropped (dropped has no namespace label)
    assert accounted(samples, "token") == (5.0, 5.0)
    assert accounted(samples, "destination") == (2.0, 3.0)
    assert accounted(samples) == (7.0, 7.0)
    # Whole labels only: the old label name finds nothing.
    assert metric_sum(samples, "events_cache_received_total", 'cache_namespace="token"') == 5.0
    assert metric_sum(samples, "events_cache_received_total", 'namespace="token"') == 0.0


def test_free_ports_are_random_and_below_the_ephemeral_range() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) > 1
    assert all(20000 <= p < ephemeral_ports_start() and port_is_free(p) for p in ports)


def test_worker_database() -> None:
    url = "redis://127.0.0.1:6379/13"
    assert worker_database(url, "") == url
    assert worker_database(url, "gw0") == url
    assert worker_database(url, "gw1") == "redis://127.0.0.1:6379/14"
    assert worker_database("redis://:pw@h:1", "gw2") == "redis://:pw@h:1/2"


def test_deep_update_and_percentile() -> None:
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
    assert deep_update(base, {"a": {"c": {"d": 4}, "f": 5}, "e": {"g": 6}}) == {
        "a": {"b": 1, "c": {"d": 4}, "f": 5},
        "e": {"g": 6},
    }
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unsorted
    assert [percentile(values, p) for p in (0, 1, 50, 99, 99.5, 100)] == [1, 1, 50, 99, 100, 100]
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) == 0.0


@pytest.mark.xdist_group("heavy")
def test_xdist_groups_are_honoured(request: pytest.FixtureRequest) -> None:
    """Under `--dist loadgroup` (make test) a grouped test's id carries its group, which is
    how xdist keeps the group on one worker; pytest 9.2 silently broke that."""
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist's workers
        pytest.skip("not running under --dist loadgroup")
    assert request.node.nodeid.endswith("@heavy"), request.node.nodeid


def test_free_port_never_gives_the_same_port_twice_in_a_row() -> None:
    """A daemon's ports are picked one after the other before any is bound: they must
    differ (the configuration refuses two listeners on one address)."""
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
