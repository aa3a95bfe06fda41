"""A real Prometheus server (Debian's `prometheus`) for tests: start it on a free port
with a configuration, query it through its HTTP API, stop it.

Scrape configurations here imitate Kubernetes: `pod_target` gives a static target the
`__meta_kubernetes_*` labels a pod's discovery would, and `KUBERNETES_RELABELING` turns
them into the `namespace`, `pod` and `container` target labels a PodMonitor attaches.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.servers import free_port, wait_for

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
# Connection and parse errors while a server comes up count as "not yet".
NOT_YET = (OSError, ValueError)

KUBERNETES_RELABELING = [
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
]


def pod_target(
    port: int, namespace: str, pod: str, container: str = "events-cache"
) -> dict[str, Any]:
    """A static target labelled as Kubernetes service discovery labels a pod's port."""
    return {
        "targets": [f"127.0.0.1:{port}"],
        "labels": {
            "__meta_kubernetes_namespace": namespace,
            "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_container_name": container,
        },
    }


def http_get(url: str, headers: Mapping[str, str] | None = None) -> bytes:
    """GET a URL; the body."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
        return body


def api(base: str, path: str, **params: Any) -> Any:
    """`data` of a successful Prometheus API answer (AssertionError otherwise)."""
    query = urllib.parse.urlencode(params, doseq=True)
    body = json.loads(http_get(f"{base}{path}?{query}"))
    assert body["status"] == "success", body
    return body["data"]


def instant(base: str, expr: str) -> list[dict[str, Any]]:
    """The result vector of an instant query."""
    data = api(base, "/api/v1/query", query=expr)
    result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
    return result


def value(base: str, expr: str) -> float | None:
    """The single value of an instant query, or None when it returns nothing."""
    result = instant(base, expr)
    return float(result[0]["value"][1]) if result else None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_prometheus(config: Mapping[str, Any], directory: Path) -> Iterator[str]:
    """Prometheus with `config` (prometheus.yml as a mapping) until the block ends; yields
    its base URL once it is ready."""
    assert PROMETHEUS is not None, "prometheus is not installed"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (directory / "prometheus.yml").write_text(yaml.safe_dump(dict(config)))
    base = f"http://127.0.0.1:{port}"
    with (directory / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, cwd=directory,
        )  # fmt: skip
        try:
            wait_for(lambda: process.poll() is None and http_get(f"{base}/-/ready"), timeout=30,
                     interval=0.1, what="Prometheus to be ready", ignore=NOT_YET)  # fmt: skip
            yield base
        finally:
            _stop(process)
