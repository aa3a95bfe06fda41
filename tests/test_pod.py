"""The Helm chart's pod, played by `podman kube play` and checked from the host.

Nothing else here starts the chart's pod. scripts/pod.py (what `make pod` runs) renders
the chart with Helm v4's engine, adapts it for podman 4.3 (its module docstring says how
and why; the chart itself is not changed) and plays it: the sidecar, the demo, a stand-in
ingest and a Redis. The tests then look from the host as a user would: /readyz, the API,
the viewer, the metrics, the events of the demo and of the stand-in ingest in the cache;
and at what Kubernetes would enforce: each container's user, read-only root, capabilities,
no_new_privs, seccomp and the chart's memory and CPU limits, as the kernel sees them
(/proc and the cgroup files); last, a stop that every container ends with status 0.

Every test here is marked `pod` and needs the image that scripts/image-test builds, and
root's podman (which shares buildah's image storage): `make test-pod` runs them (it sets
EVENTS_CACHE_POD_IMAGE); without that variable the module is skipped, so `make test`
skips it. A missing podman fails the played pod's tests when $CI is set, and skips them
otherwise. The settings a host may need (EVENTS_CACHE_POD_RUNTIME=runc,
EVENTS_CACHE_POD_ULIMITS="nofile=S:H ...") are read as scripts/pod.py reads them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.scripts import load_script
from tests.support.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("EVENTS_CACHE_POD_IMAGE", "")
IN_CI = bool(os.environ.get("CI"))

pytestmark = pytest.mark.pod
if not IMAGE:
    pytest.skip("needs the image scripts/image-test builds: make test-pod", allow_module_level=True)
pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")


pod_script = load_script("pod")


# -------------------------------------------------------------- the adaptation alone


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    opts = pod_script.Options(
        image="localhost/events-cache:adapt", api_port=18080, state=tmp_path_factory.mktemp("pod")
    )
    objects: list[dict[str, Any]] = pod_script.adapt(
        pod_script.render(pod_script.chart_values(opts)), opts
    )
    return objects


def the_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (pod,) = [o for o in objects if o["kind"] == "Pod"]
    return pod


def test_adapted_objects_are_what_kube_play_takes(adapted: list[dict[str, Any]]) -> None:
    """Only ConfigMaps and one Pod: kube play refuses Secrets, and the Service, the
    ServiceAccount and the chart's test pod mean nothing to it."""
    assert sorted({o["kind"] for o in adapted}) == ["ConfigMap", "Pod"]
    spec = the_pod(adapted)["spec"]
    assert "initContainers" not in spec
    kinds = {k for v in spec["volumes"] for k in v if k != "name"}
    assert kinds <= {"configMap", "emptyDir", "hostPath"}, kinds
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            assert "subPath" not in mount, (container["name"], mount)
        for port in container.get("ports", []):
            assert port["hostIP"] == "127.0.0.1", (container["name"], port)
        for value in the_pod(adapted)["metadata"]["annotations"].values():
            assert len(value) <= 63


def test_adapted_pod_keeps_the_charts_sidecar(adapted: list[dict[str, Any]]) -> None:
    """The sidecar keeps its image, arguments, environment, security context and limits,
    and finds its files where the chart puts them: the config file (a subPath mount, now
    a file of its own) and the Secret's keys (now a ConfigMap volume)."""
    spec = the_pod(adapted)["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    assert sorted(containers) == ["demo", "events-cache", "ingest", "redis"]
    sidecar = containers["events-cache"]
    assert sidecar["image"] == "localhost/events-cache:adapt"
    assert sidecar["args"][:2] == ["--config", "/etc/events-cache/config.yaml"]
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["resources"]["limits"] == {"cpu": "1", "memory": "256Mi"}
    assert sidecar["ports"] == [
        {"name": "api", "containerPort": 8080, "protocol": "TCP", "hostIP": "127.0.0.1",
         "hostPort": 18080}
    ]  # fmt: skip
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in sidecar["volumeMounts"]}
    config_file = Path(mounts["/etc/events-cache/config.yaml"]["hostPath"]["path"])
    config = yaml.safe_load(config_file.read_text())
    assert config["meta"]["storage"]["redis"]["host"] == "127.0.0.1"
    assert config["sidecar"]["ingest"]["socket"] == "/var/run/events-cache/ingest.sock"
    secrets_map = mounts["/etc/events-cache/secrets"]["configMap"]["name"]
    (data,) = [o["data"] for o in adapted if o["metadata"]["name"] == secrets_map]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    for variable, key in [
        ("EVENTS_CACHE_ADMIN_TOKEN_FILE", "admin-token"),
        ("EVENTS_CACHE_REDIS_PASSWORD_FILE", "redis-password"),
    ]:
        assert env[variable] == f"/etc/events-cache/secrets/{key}"
        assert data[key]
    assert "--requirepass" in containers["redis"]["args"]
    assert data["redis-password"] in containers["redis"]["args"]


# ------------------------------------------------------------------- the pod, played


def kube_quantity(value: str, cpu: bool = False) -> float:
    """A Kubernetes quantity: bytes for memory, cores for CPU."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    if cpu and value.endswith("m"):
        return int(value[:-1]) / 1000
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def cgroup_limits(pid: int) -> tuple[int, float]:
    """(memory limit in bytes, CPU limit in cores) of a process's cgroup, cgroup v1 or v2."""
    paths = dict(
        (controllers, path)
        for _, controllers, path in (
            line.split(":", 2) for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        )
    )
    base = Path("/sys/fs/cgroup")
    memory_v1 = next((p for c, p in paths.items() if "memory" in c.split(",")), None)
    cpu_v1 = next((p for c, p in paths.items() if "cpu" in c.split(",")), None)
    if memory_v1 is not None and cpu_v1 is not None:
        memory = int(
            (base / "memory" / memory_v1.lstrip("/") / "memory.limit_in_bytes").read_text()
        )
        cpu_dir = base / "cpu" / cpu_v1.lstrip("/")
        quota = int((cpu_dir / "cpu.cfs_quota_us").read_text())
        period = int((cpu_dir / "cpu.cfs_period_us").read_text())
    else:
        v2 = base / paths[""].lstrip("/")
        raw = (v2 / "memory.max").read_text().strip()
        memory = 2**63 if raw == "max" else int(raw)
        quota_text, period_text = (v2 / "cpu.max").read_text().split()
        quota = -1 if quota_text == "max" else int(quota_text)
        period = int(period_text)
    return memory, (quota / period if quota > 0 else float("inf"))


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-Admin-Token": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Played:
    """The pod under test: the script's options and pod, and timings of each phase."""

    def __init__(self, opts: Any, pod: Any) -> None:
        self.opts = opts
        self.pod = pod
        self.timings: dict[str, float] = dict(pod.timings)
        objects = list(yaml.safe_load_all(pod.yaml_path.read_text()))
        self.spec: dict[str, Any] = objects[-1]["spec"]

    def url(self, path: str) -> str:
        return f"{self.opts.api_url}{path}"

    def api(self, path: str) -> Any:
        status, body = get(self.url(path), self.opts.admin_token)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def pid(self, container: str) -> int:
        pid = int(self.pod.inspect(container)["State"]["Pid"])
        assert pid > 0, f"{container} is not running: {self.pod.logs(container)}"
        return pid


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    problem = ""
    if shutil.which("podman") is None:
        problem = "podman is not installed (apt-get install podman runc catatonit)"
    elif os.geteuid() != 0:
        problem = "needs root: root's podman shares buildah's image storage"
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    opts = pod_script.Options(
        image=IMAGE,
        name="events-cache-test",
        api_port=free_port(),
        runtime=os.environ.get("EVENTS_CACHE_POD_RUNTIME", ""),
        ulimits=os.environ.get("EVENTS_CACHE_POD_ULIMITS", "").split(),
        state=tmp_path_factory.mktemp("pod"),
        # A shorter drain than the chart's 5 s default: the stop test waits for it.
        values={"config": {"sidecar": {"shutdown": {"drain_seconds": 1}}}},
    )
    if not pod_script.image_exists(opts, IMAGE):
        pytest.fail(f"{IMAGE} is not in podman's storage: build it with scripts/image-test")
    started = time.monotonic()
    pod = pod_script.play(opts)
    played = Played(opts, pod)
    try:
        yield played
    finally:
        pod.remove()
        played.timings["total"] = time.monotonic() - started
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in played.timings.items())
        print(f"\npod test timings: {phases}")


def test_ready_healthy_and_published_on_loopback_only(played: Played) -> None:
    assert get(played.url("/readyz"))[0] == 200
    assert get(played.url("/healthz"))[0] == 200
    ports = played.pod.inspect("events-cache")["NetworkSettings"]["Ports"]
    bindings = [b for found in ports.values() for b in found or []]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(played.opts.api_port)}]


def test_api_needs_the_admin_token(played: Played) -> None:
    status, _ = get(played.url("/api/v1/events/ids?namespace=token"))
    assert status == 401
    status, _ = get(played.url("/api/v1/events/ids?namespace=token"), "not-the-token")
    assert status == 401
    assert played.api("/api/v1/events/ids?namespace=token")["namespace"] == "token"


def test_viewer_is_served(played: Played) -> None:
    status, page = get(played.url("/ui/"))
    assert status == 200 and b"<html" in page.lower()
    assets = re.findall(rb'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert assets, page[:300]
    for asset in assets:
        assert get(played.url("/ui/" + asset.decode().removeprefix("./")))[0] == 200, asset


def test_demo_and_standin_ingest_events_are_cached(played: Played) -> None:
    """The demo's keys (js.…, s2s.…) and the stand-in ingest's key and destination reach
    the cache through the socket, are written to the pod's Redis and read back."""
    started = time.monotonic()

    def token_ids() -> set[str] | None:
        ids = {i["id"] for i in played.api("/api/v1/events/ids?namespace=token")["ids"]}
        demo = {i for i in ids if i.startswith(("js.", "s2s."))}
        return ids if demo and pod_script.STANDIN_TOKEN in ids else None

    def destination_ids() -> set[str] | None:
        # The demo's destination results follow its keys' events (the busy key has none).
        ids = {i["id"] for i in played.api("/api/v1/events/ids?namespace=destination")["ids"]}
        demo = ids & {"pg_main", "clickhouse_events", "webhook_crm", "bigquery_dwh"}
        return ids if demo and pod_script.STANDIN_DESTINATION in ids else None

    wait_for(token_ids, timeout=30, interval=0.5, what="the demo's and the stand-in's ids")
    wait_for(destination_ids, timeout=30, interval=0.5, what="their destinations' ids")
    played.timings["events"] = time.monotonic() - started
    answer = played.api(
        f"/api/v1/events/cache?namespace=token&ids={pod_script.STANDIN_TOKEN}&limit=5"
    )
    assert answer["events"], answer
    assert all(e["original"]["event_type"] == "standin" for e in answer["events"])
    metrics = get(played.url("/metrics"))[1].decode()
    assert re.search(r"^events_cache_redis_up 1(\.0)?$", metrics, re.M)


@pytest.mark.parametrize("container", ["events-cache", "demo", "ingest", "redis"])
def test_container_runs_restricted(played: Played, container: str) -> None:
    """As Kubernetes would run it: uid/gid 10001, read-only root, no capabilities at all,
    no_new_privs, a seccomp filter; the kernel's view, not only podman's configuration."""
    inspected = played.pod.inspect(container)
    assert inspected["Config"]["User"] == "10001:10001"
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    status = proc_status(played.pid(container))
    assert status["Uid"].split() == ["10001"] * 4
    assert status["Gid"].split() == ["10001"] * 4
    for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[caps], 16) == 0, (caps, status[caps])
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # filter mode


@pytest.mark.parametrize("container", ["events-cache", "demo", "ingest", "redis"])
def test_container_limits_are_applied(played: Played, container: str) -> None:
    """The memory and CPU limits of the rendered pod, in the container's cgroup."""
    (spec,) = [c for c in played.spec["containers"] if c["name"] == container]
    limits = spec["resources"]["limits"]
    memory, cpus = cgroup_limits(played.pid(container))
    assert memory == kube_quantity(limits["memory"])
    assert cpus == pytest.approx(kube_quantity(limits["cpu"], cpu=True))


def test_root_filesystem_is_read_only(played: Played) -> None:
    """Writing outside the volumes fails inside the sidecar's container."""
    done = pod_script.podman(
        played.opts, "exec", played.opts.container("events-cache"),
        "/opt/events-cache/bin/python", "-c", "open('/opt/events-cache/x', 'w')",
        check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr


def test_stop_ends_every_container_with_status_0(played: Played) -> None:
    """Last: SIGTERM to the pod; the sidecar drains, flushes and exits 0, as do the demo,
    the stand-in ingest and Redis."""
    codes = played.pod.stop()
    played.timings["stop"] = played.pod.timings["stop"]
    logs = {c: played.pod.logs(c) for c in codes}
    assert codes == {"events-cache": 0, "demo": 0, "ingest": 0, "redis": 0}, logs
    assert played.pod.timings["stop"] < played.pod.stop_seconds, "stopped by SIGKILL"
