"""Prometheus for real: promtool on the alert rules and on the daemon's /metrics, and a
Prometheus server scraping a running daemon.

Needs Debian's `prometheus` package (promtool and the server); each test skips with the
reason when a binary is missing. The daemon runs in-process on the suite's Redis.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.daemon import InProcessDaemon, StartDaemon
from tests.support.prometheus import (
    KUBERNETES_RELABELING,
    NOT_YET,
    PROMETHEUS,
    PROMTOOL,
    api,
    pod_target,
    running_prometheus,
    value,
)
from tests.support.servers import wait_for

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "helm" / "events-cache" / "files" / "alerts.yaml"
ALERT_TESTS = Path(__file__).resolve().parent / "data" / "alerts-test.yaml"
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)"
)


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> InProcessDaemon:
    """The daemon in-process: bucket size 5 per minute, TCP ingest only, on the suite's Redis."""
    return start_daemon(
        {
            "server": {"cache": {"events": {"size": 5, "time_window_sec": 60}}},
            "sidecar": {"ingest": {"socket": ""}, "log": {"level": "warning"}},
        }
    )


def send_events(daemon: InProcessDaemon, token: str, count: int) -> dict[str, Any]:
    body = json.dumps([{"event_type": "prometheus_test", "n": i} for i in range(count)])
    reply = daemon.post_token(token, body, via="tcp")
    assert reply.status == 202
    answer: dict[str, Any] = reply.json
    return answer


# ------------------------------------------------------------------------- rules


@needs_promtool
def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)],  # type: ignore[list-item]
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout


@needs_promtool
def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert alerts == {"EventsCacheRedisDown", "EventsCacheDroppingEvents",
                      "EventsCacheQueueNearCapacity", "EventsCacheNothingCached"}  # fmt: skip
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    fires: set[str] = set()
    quiet: set[str] = set()
    for test in tests["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert fires == alerts and quiet == alerts
    result = subprocess.run([PROMTOOL, "test", "rules", str(ALERT_TESTS)],  # type: ignore[list-item]
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_promtool_unit_tests_fail_on_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: the same file with one expectation changed does."""
    text = ALERT_TESTS.read_text().replace("exp_labels: {severity: warning, namespace: ingest, "
                                           "pod: a}", "exp_labels: {severity: warning, "
                                           "namespace: ingest, pod: b}", 1)  # fmt: skip
    broken = tmp_path / "alerts-test.yaml"
    broken.write_text(text.replace("../../helm/", f"{ROOT}/helm/"))
    result = subprocess.run([PROMTOOL, "test", "rules", str(broken)],  # type: ignore[list-item]
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


# ----------------------------------------------------------------------- /metrics


@needs_promtool
def test_daemon_metrics_pass_promtool_check_metrics(daemon: InProcessDaemon) -> None:
    send_events(daemon, "metrics-lint-key", 7)

    def limited_in_metrics() -> bytes | None:
        body = daemon.api("/metrics", token=None).raw
        return body if b"events_cache_rate_limited_total{" in body else None

    text = wait_for(limited_in_metrics, 10, 0.1, "rate-limited events in /metrics", NOT_YET)
    result = subprocess.run([PROMTOOL, "check", "metrics"],  # type: ignore[list-item]
                            input=text, capture_output=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    for family in ("events_cache_received_total", "events_cache_cached_total",
                   "events_cache_redis_write_seconds", "events_cache_build_info",
                   "events_cache_redis_errors_total", "process_resident_memory_bytes",
                   "process_cpu_seconds_total", "python_gc_objects_collected_total",
                   "python_info"):  # fmt: skip
        assert f"# TYPE {family.removesuffix('_total')}".encode() in text
    # No `_created` series, and the Kubernetes label name is left to Kubernetes.
    assert b"_created" not in text
    assert b'cache_namespace="token"' in text and b"{namespace=" not in text
    assert b",namespace=" not in text


# ------------------------------------------------------ a real Prometheus scraping


@pytest.fixture
def prometheus(daemon: InProcessDaemon, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the daemon every second as a PodMonitor would (target
    labels namespace, pod, container), with the alert rules loaded."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{
            "job_name": "events-cache",
            "static_configs": [pod_target(daemon.api_port, "ingest", "ingest-0")],
            "relabel_configs": KUBERNETES_RELABELING,
        }],
    }  # fmt: skip
    with running_prometheus(config, tmp_path / "prometheus") as base:
        yield base


def promql(base: str, query: str) -> float | None:
    """The single value of an instant query, or None when it returns nothing."""
    return value(base, query)


@needs_prometheus
@pytest.mark.e2e
def test_prometheus_scrapes_the_counts_the_test_caused(
    daemon: InProcessDaemon, prometheus: str
) -> None:
    # Bucket size 5: of 8 events for one key, 5 are cached and 3 rate limited; a second
    # key gets 2, both cached.
    first = send_events(daemon, "prom-key-1", 8)
    assert (first["accepted"], first["rate_limited"]) == (5, 3)
    second = send_events(daemon, "prom-key-2", 2)
    assert (second["accepted"], second["rate_limited"]) == (2, 0)

    # The scrape attaches the pod's Kubernetes namespace as `namespace`, as a PodMonitor or
    # ServiceMonitor does; the daemon's own label is `cache_namespace`, so nothing is
    # renamed to `exported_namespace` and both can be selected together.
    want = {
        'sum(events_cache_received_total{cache_namespace="token"})': 10,
        'sum(events_cache_cached_total{cache_namespace="token",collection="all"})': 7,
        'sum(events_cache_rate_limited_total{cache_namespace="token",collection="all"})': 3,
        'sum by (namespace) (events_cache_received_total{namespace="ingest",pod="ingest-0"})': 10,
        'count({__name__=~"events_cache_.+", exported_namespace!=""}) or vector(0)': 0,
        "sum(events_cache_dropped_total) or vector(0)": 0,
        'events_cache_redis_up{job="events-cache"}': 1,
    }

    def scraped() -> dict[str, float | None] | None:
        got = {q: promql(prometheus, q) for q in want}
        return got if got == want else None

    wait_for(scraped, 30, 0.1, f"Prometheus to scrape {want}", NOT_YET)

    # The events are really in Redis: the query API returns them.
    body = daemon.query(namespace="token", ids="prom-key-1,prom-key-2", limit=0)
    assert body["total_events"] == 7

    # The alert rules load and evaluate against the live series, and none fires.
    def rules_evaluated() -> list[dict[str, Any]] | None:
        groups = api(prometheus, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20")
                                      and r["health"] == "ok" for r in rules) else None  # fmt: skip

    rules = wait_for(rules_evaluated, 30, 0.1, "the alert rules to be evaluated", NOT_YET)
    assert {r["name"] for r in rules} == {"EventsCacheRedisDown", "EventsCacheDroppingEvents",
                                          "EventsCacheQueueNearCapacity",
                                          "EventsCacheNothingCached"}  # fmt: skip
    assert [r["name"] for r in rules if r["state"] != "inactive"] == []
