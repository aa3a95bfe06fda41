"""The Grafana dashboard and the alerts on real data.

A real Prometheus (Debian's) scrapes two running daemons every second, relabelled as a
Kubernetes PodMonitor would (`namespace`, `pod`, `container` target labels):

- pod `ingest-a` caches on the suite's Redis: events of both cache namespaces, some
  rate limited, malformed bodies and invalid lines; queries, a summary, a reset, bad
  and unauthorised requests, and a live-tail stream held open;
- pod `ingest-b` has a Redis that never answers and a queue of 10: its writer fails,
  its queue fills and drops, its queries answer 503 (counted as Redis errors).

Then every query of every panel, with the dashboard's variables substituted, must
return a non-empty result through Prometheus' HTTP API (and not only NaN); every metric
a panel names must have series (a metric renamed in the code and not in the dashboard
fails here); the variables' `label_values` must list the pods; and every alert
expression of files/alerts.yaml (the PrometheusRule's) must return data: pod b meets
all four conditions, and the rule engine has them pending or firing.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
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
    api,
    instant,
    pod_target,
    running_prometheus,
)
from tests.support.servers import free_port, wait_for
from tests.support.sse import Watcher

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "helm" / "events-cache" / "dashboards" / "events-cache.json"
ALERTS = ROOT / "helm" / "events-cache" / "files" / "alerts.yaml"
NAMESPACE = "ingest"
PODS = ("ingest-a", "ingest-b")
# What Grafana would put in: all pods, both cache namespaces, a rate window of 1m.
VARIABLES = {
    "$namespace": NAMESPACE,
    "$pod": ".*",
    "$cache_namespace": "token|destination",
    "$__rate_interval": "1m",
    "$__range": "5m",
}
METRIC = re.compile(r"\b((?:events_cache|process|python)_[a-z_]+)\b")

pytestmark = [
    pytest.mark.skipif(
        PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)"
    ),
    pytest.mark.e2e,
]


def panels() -> list[dict[str, Any]]:
    """The dashboard's panels with queries (rows left out)."""
    board = json.loads(DASHBOARD.read_text())
    return [p for p in board["panels"] if p.get("targets")]


def substitute(expr: str, variables: dict[str, str] = VARIABLES) -> str:
    """The expression as Grafana sends it (longest names first: $pod is not $pods)."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(name, variables[name])
    assert "$" not in expr, expr
    return expr


def test_every_panel_query_uses_the_selections() -> None:
    found = panels()
    assert len(found) >= 20
    for panel in found:
        assert panel["description"].endswith("?"), panel["title"]  # the question it answers
        for target in panel["targets"]:
            expr = target["expr"]
            assert 'namespace=~"$namespace"' in expr and 'pod=~"$pod"' in expr, expr
            if "cache_namespace" in expr or "received_total" in expr:
                assert 'cache_namespace=~"$cache_namespace"' in expr, expr
            assert "exported_namespace" not in expr and "or vector(" not in expr, expr
    variables = {v["name"] for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert variables == {"datasource", "namespace", "pod", "cache_namespace"}


def ingest_load(daemon: InProcessDaemon, stop: threading.Event) -> None:
    """Events of both cache namespaces until stopped: some limited, malformed, invalid."""
    n = 0
    while not stop.is_set():
        n += 1
        daemon.post_token(f"key-{n % 3}", json.dumps([{"event_type": "pageview", "n": n}] * 3))
        daemon.post_token("key-0", b"not json")
        daemon.post_ndjson(
            [
                {"namespace": "destination", "id": "pg", "original": {"n": n}, "success": {}},
                {"namespace": "destination", "id": "pg", "original": {"n": n}, "error": "down"},
                {"namespace": "nowhere"},
                {"namespace": "token", "id": "key-0", "original": {"n": n}, "capture": "dash"},
            ]
        )
        time.sleep(0.1)


def api_load(daemon: InProcessDaemon) -> None:
    """Queries, a summary, a reset, a bad and an unauthorised request."""
    cache = "/api/v1/events/cache"
    assert daemon.api(cache, {"namespace": "token", "ids": "key-1"}).status == 200
    assert daemon.api(cache, {"namespace": "destination"}).status == 200
    assert daemon.api("/api/v1/events/ids", {"namespace": "token"}).status == 200
    assert daemon.api(cache, {"namespace": "token", "ids": "key-2"}, method="DELETE").status == 200
    assert daemon.api(cache, {"limit": "x"}).status == 400
    assert daemon.api(cache, {}, token="wrong").status == 401


@pytest.fixture
def scraped(start_daemon: StartDaemon, tmp_path: Path) -> Iterator[str]:
    """Two daemons under load, scraped by Prometheus; yields its base URL."""
    a = start_daemon(
        {"server": {"cache": {"events": {"size": 5, "time_window_sec": 60}}},
         "sidecar": {"log": {"level": "warning"}}}
    )  # fmt: skip
    b = start_daemon(
        {"server": {"cache": {"events": {"size": 1000}, "pool": {"size": 1}}},
         "sidecar": {"ingest": {"queue_size": 10}, "log": {"level": "error"}}},
        url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    )  # fmt: skip
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{
            "job_name": f"podMonitor/{NAMESPACE}/events-cache/0",
            "static_configs": [pod_target(d.api_port, NAMESPACE, pod)
                               for d, pod in zip((a, b), PODS, strict=True)],
            "relabel_configs": KUBERNETES_RELABELING,
        }],
    }  # fmt: skip
    with running_prometheus(config, tmp_path / "prometheus") as base:
        wait_for(lambda: len(instant(base, "up == 1")) == 2, timeout=30, interval=0.2,
                 what="both targets scraped", ignore=NOT_YET)  # fmt: skip
        stop = threading.Event()
        loader = threading.Thread(target=ingest_load, args=(a, stop), daemon=True)
        loader.start()
        watcher = Watcher(a.api_port, "namespace=token").start()
        try:
            # b: a first event fails its writer, which then waits for Redis; 30 more fill
            # the queue (10) and the rest is dropped.
            assert b.post_token("b-key", json.dumps({"n": 0})).status == 202
            wait_for(lambda: b.metric("events_cache_dropped_total", reason="redis_error") >= 1)
            b.post_token("b-key", json.dumps([{"n": n} for n in range(30)]))
            for _ in range(3):
                api_load(a)
                for path in ("/api/v1/events/cache", "/api/v1/events/ids"):
                    assert b.api(path, {"namespace": "token"}).status == 503
                time.sleep(1.5)
            yield base
        finally:
            stop.set()
            loader.join(10)
            watcher.close()


def failing(base: str, exprs: list[str]) -> dict[str, str]:
    """Expressions whose result is empty or only NaN, with why."""
    bad = {}
    for expr in exprs:
        result = instant(base, expr)
        if not result:
            bad[expr] = "empty"
        elif all(math.isnan(float(r["value"][1])) for r in result):
            bad[expr] = "only NaN"
    return bad


def test_every_panel_and_alert_returns_data(scraped: str) -> None:
    base = scraped
    exprs = [substitute(t["expr"]) for p in panels() for t in p["targets"]]
    # The same with one pod selected: a's panels have data on their own.
    one_pod = {**VARIABLES, "$pod": PODS[0]}
    exprs += [substitute(t["expr"], one_pod) for p in panels() for t in p["targets"]]
    last: dict[str, str] = {}

    def all_have_data() -> bool:
        nonlocal last
        last = failing(base, exprs)
        return not last

    try:
        wait_for(all_have_data, timeout=30, interval=1, what="every panel to have data",
                 ignore=NOT_YET)  # fmt: skip
    except AssertionError:
        pytest.fail(f"panels without data: {json.dumps(last, indent=1)}")

    # Every metric a panel names has series: a rename in the code fails here.
    names = sorted({m for e in exprs for m in METRIC.findall(e)})
    assert len(names) >= 15
    missing = [n for n in names if not instant(base, f'count({n}{{namespace="{NAMESPACE}"}})')]
    assert missing == []
    # The scrape's Kubernetes labels and the daemon's own coexist; nothing is renamed.
    assert instant(base, '{exported_namespace!=""}') == []
    rows = instant(base, "sum by (pod, cache_namespace) (events_cache_received_total)")
    assert {(r["metric"]["pod"], r["metric"]["cache_namespace"]) for r in rows} == {
        (pod, ns) for pod in PODS for ns in ("token", "destination")
    }

    # The variables' label_values queries list what they should.
    board = json.loads(DASHBOARD.read_text())
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert found, variable
        metric, label = found.groups()
        values = api(base, f"/api/v1/label/{label}/values", **{"match[]": substitute(metric)})
        want = {"namespace": {NAMESPACE}, "pod": set(PODS),
                "cache_namespace": {"token", "destination"}}[label]  # fmt: skip
        assert set(values) == want, (variable["name"], values)

    # Each alert's expression returns data (pod b meets every condition), and the rule
    # engine evaluates the same rules to pending (their `for:` has not passed) or firing.
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert failing(base, [r["expr"] for r in rules]) == {}
    for rule in rules:
        pods = {r["metric"].get("pod") for r in instant(base, rule["expr"])}
        assert "ingest-b" in pods, rule["alert"]

    def alerts_active() -> bool:
        groups = api(base, "/api/v1/rules")["groups"]
        states = {r["name"]: r["state"] for g in groups for r in g["rules"]}
        return set(states) == {r["alert"] for r in rules} and "inactive" not in states.values()

    wait_for(alerts_active, timeout=20, interval=0.5, what="every alert pending or firing")
