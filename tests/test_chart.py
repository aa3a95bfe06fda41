"""The Helm chart, rendered and linted by Helm v4's own library (helm-python-sdk).

Every value set of helm/events-cache/ci/ is rendered (parsed by a loader that fails on a
key written twice, so a duplicated label cannot hide), and every object is validated
against the Kubernetes JSON schemas of each supported Kubernetes version
(kubernetes-validate, strict: unknown fields fail), and the Prometheus Operator objects
against the vendored CRD schemas. Then the properties users rely on: Pod Security
"restricted" on every container, the ingest listener in no Service, probes that never
depend on Redis, the sidecar wiring, and a rendered configuration that the daemon's own
loader and `events-cache check-config` accept.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed"
)
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
from kubernetes_validate import utils as kv_utils  # noqa: E402

from tests.support.manifests import (  # noqa: E402
    K8S_VERSIONS,
    DuplicateKeyError,
    container_problems,
    containers,
    load_all,
    pod_problems,
    pod_specs,
    validate,
)
from tests.support.scripts import load_script  # noqa: E402

# kubernetes-validate reads and parses a version's whole `_definitions.json` (megabytes)
# on every validate() call; the files do not change during a run: parse each once.
kv_utils.schema_contents = functools.cache(kv_utils.schema_contents)

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "events-cache"
CRD_SCHEMAS = Path(__file__).resolve().parent / "data" / "crd-schemas"
VALUE_SETS = {p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*.yaml"))}
RELEASE, NAMESPACE = "ec", "ingest"
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
SIDECAR_LABEL = "events-cache.io/sidecar"


def values_of(name: str) -> dict[str, Any]:
    """The values of one ci/ value set."""
    loaded: dict[str, Any] = yaml.safe_load(VALUE_SETS[name].read_text())
    return loaded


def split(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Rendered templates to Kubernetes objects (NOTES.txt left out); a mapping with a key
    written twice fails (a duplicated label would silently keep the last value)."""
    objects = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        objects += load_all(text)
    return objects


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def rendered(chart: Any) -> dict[str, list[dict[str, Any]]]:
    """Every ci/ value set rendered once for the whole module."""
    return {
        name: split(
            chart.render(values_of(name), name=RELEASE, namespace=NAMESPACE, is_install=True)
        )
        for name in VALUE_SETS
    }


def render(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    return split(chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = find(objects, "Deployment")
    return dep


def sidecar_of(pod: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Where the sidecar is ("initContainers" or "containers") and its spec."""
    for where in ("initContainers", "containers"):
        for c in pod.get(where, []):
            if c["name"] == "events-cache":
                return where, c
    raise AssertionError("no events-cache container in the pod")


# ----------------------------------------------------------------------------- lint


def test_lint_defaults_has_no_warnings() -> None:
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lint_value_set_is_clean(value_set: str) -> None:
    for version in (K8S_VERSIONS[0], K8S_VERSIONS[-1]):
        report = helm.lint(
            str(CHART), values_of(value_set), strict=True, kube_version=f"v{version}"
        )
        assert report["errors"] == [], (version, report)
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], (version, report)


def test_chart_requires_kubernetes_with_native_sidecars(chart: Any) -> None:
    # Enforced by helm install against the cluster's version (lint and offline render
    # do not know the cluster), so the constraint itself is what can be checked here.
    assert chart.metadata["kubeVersion"] == ">=1.29.0-0"
    assert (
        chart.metadata["appVersion"] == chart.values["image"]["tag"]
        or chart.values["image"]["tag"] == ""
    )


# ------------------------------------------------------------------------ schemas


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_objects_validate_against_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    objects = [o for o in rendered[value_set] if o["kind"] not in CRD_KINDS]
    assert objects
    assert validate(objects, K8S_VERSIONS) == []


def test_kubernetes_schemas_reject_a_misspelt_field(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    broken = copy.deepcopy(deployment(rendered["defaults"]))
    broken["spec"]["template"]["spec"]["initContainers"][0]["startupProbes"] = {}
    with pytest.raises(kv_utils.ValidationError):
        kv_utils.validate(broken, K8S_VERSIONS[0], strict=True)


def test_every_value_set_is_checked_on_every_supported_version() -> None:
    assert len(VALUE_SETS) >= 9
    assert K8S_VERSIONS[0].startswith("1.29")
    assert len(K8S_VERSIONS) >= 3


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_operator_objects_validate_against_crd_schemas(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    for obj in rendered[value_set]:
        if obj["kind"] in CRD_KINDS:
            schema = json.loads(
                (CRD_SCHEMAS / f"{obj['kind'].lower()}-monitoring-v1.json").read_text()
            )
            jsonschema.validate(obj, schema)


def test_crd_schemas_reject_a_misspelt_field(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (monitor,) = find(rendered["monitors"], "PodMonitor")
    broken = copy.deepcopy(monitor)
    broken["spec"]["podMetricsEndpoint"] = broken["spec"].pop("podMetricsEndpoints")
    schema = json.loads((CRD_SCHEMAS / "podmonitor-monitoring-v1.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_monitors_render_only_when_enabled(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kinds = {o["kind"] for o in rendered["monitors"]}
    assert CRD_KINDS <= kinds
    assert not CRD_KINDS & {o["kind"] for o in rendered["defaults"]}


# --------------------------------------------------------------------- NOTES.txt


@pytest.fixture(scope="module")
def notes(chart: Any) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Every ci/ value set: what `helm install` prints (NOTES.txt) and the objects."""
    out = {}
    for name in VALUE_SETS:
        manifests = chart.render(
            values_of(name), name=RELEASE, namespace=NAMESPACE, is_install=True
        )
        (text,) = [text for template, text in manifests.items() if template.endswith("NOTES.txt")]
        out[name] = (text, split(manifests))
    return out


def shell_lines(text: str) -> str:
    """The commands NOTES.txt shows (indented lines, with their continuations)."""
    return "\n".join(line.strip() for line in text.splitlines() if line.startswith("  "))


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_notes_commands_are_shell_and_use_every_variable_they_set(
    notes: dict[str, tuple[str, list[dict[str, Any]]]], value_set: str
) -> None:
    text, _ = notes[value_set]
    commands = shell_lines(text)
    result = subprocess.run(["bash", "-n"], input=commands, capture_output=True, text=True)
    assert result.returncode == 0, (result.stderr, commands)
    exported = re.findall(r"export (\w+)=", commands)
    assert exported
    for name in exported:
        assert f"${name}" in commands, f"NOTES.txt exports {name} and never uses it"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_notes_port_forward_the_query_service_and_read_the_token_from_its_secret(
    notes: dict[str, tuple[str, list[dict[str, Any]]]], value_set: str
) -> None:
    text, objects = notes[value_set]
    (forward,) = re.findall(r"kubectl port-forward --namespace (\S+) svc/(\S+) 8080:(\d+)", text)
    (query,) = [s for s in find(objects, "Service") if SIDECAR_LABEL in s["spec"]["selector"]]
    assert forward == (NAMESPACE, query["metadata"]["name"], str(query["spec"]["ports"][0]["port"]))
    ((secret_name, key),) = re.findall(
        r'kubectl get secret --namespace \S+ (\S+) \\\n\s+-o jsonpath="\{\.data\.(\S+?)\}"', text
    )
    # The Secret and key the sidecar's token file is projected from.
    pod = deployment(objects)["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "events-cache-secrets"]
    (admin,) = [
        s["secret"]
        for s in volume["projected"]["sources"]
        if s["secret"]["items"][0]["path"] == "admin-token"
    ]
    assert (secret_name, key) == (admin["name"], admin["items"][0]["key"])
    for secret in find(objects, "Secret", secret_name):  # the chart's own, if it makes one
        assert key in secret["data"]


def test_notes_show_the_viewer_unless_it_is_off(chart: Any) -> None:
    def text_of(values: dict[str, Any]) -> str:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        return manifests["events-cache/templates/NOTES.txt"]

    on = text_of(values_of("demo"))
    assert "open http://127.0.0.1:8080/ui/ and paste the token" in on
    assert 'echo "$EVENTS_CACHE_ADMIN_TOKEN"' in on
    values = values_of("demo")
    values["config"] = {"sidecar": {"api": {"viewer": False}}}
    off = text_of(values)
    assert "/ui/" not in off and "The viewer is off" in off
    assert "POD" not in on + off


# -------------------------------------------------------------- pod security


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_container_meets_pod_security_restricted(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    """The chart's own containers (sidecar, demo, Redis, the test pod) always; the ingest
    container where the values ask for it (ingest.restricted), and then without a
    read-only root filesystem, which stays the user's choice."""
    ingest_values = values_of(value_set).get("ingest", {})
    specs = pod_specs(rendered[value_set])
    assert specs
    problems = []
    for where, pod in specs:
        problems += [f"{where}: {p}" for p in pod_problems(pod)]
        for c in containers(pod):
            if c["name"] == "ingest":
                if ingest_values.get("restricted"):
                    found = container_problems(c, pod, read_only_root=False)
                    problems += [f"{where}: {p}" for p in found]
                continue
            problems += [f"{where}: {p}" for p in container_problems(c, pod)]
    assert problems == []


def test_ingest_container_gets_only_what_the_user_asks(chart: Any) -> None:
    """Nothing forced on the user's container: no security context of the chart's, no
    pod-level user; `{}` means nothing; ingest.restricted adds the restricted settings
    under the user's own, which win."""
    values = values_of("defaults")
    pod = deployment(render(chart, values))["spec"]["template"]["spec"]
    (ingest,) = pod["containers"]
    assert "securityContext" not in ingest
    assert pod["securityContext"] == {"fsGroup": 10001}  # the socket, whatever the user
    _, sidecar = sidecar_of(pod)
    assert container_problems(sidecar, pod) == []  # the sidecar's own context suffices

    given = {"runAsUser": 1000, "readOnlyRootFilesystem": False}
    values["ingest"] = {**values["ingest"], "securityContext": given}
    pod = deployment(render(chart, values))["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"] == given

    values["ingest"]["restricted"] = True
    pod = deployment(render(chart, values))["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"] == {
        **given,
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container_problems(pod["containers"][0], pod, read_only_root=False) == []


def test_helm_test_pod_is_restricted_and_queries_the_api(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    (pod,) = find(rendered["defaults"], "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = " ".join(pod["spec"]["containers"][0]["command"])
    assert "/api/v1/events/cache" in script and "X-Admin-Token" in script
    assert f"ec-events-cache.{NAMESPACE}.svc:8080" in script


# --------------------------------------------------------- services and wiring


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_no_service_or_ingress_exposes_the_ingest_listener(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    values = values_of(value_set)
    ingest_port = values.get("sidecar", {}).get("ingestPort", 8001)
    objects = rendered[value_set]
    dep = deployment(objects)
    _, sidecar = sidecar_of(dep["spec"]["template"]["spec"])
    sidecar_ports = {p["containerPort"] for p in sidecar.get("ports", [])}
    assert ingest_port not in sidecar_ports  # the ingest listener is loopback only
    for svc in find(objects, "Service"):
        for port in svc["spec"]["ports"]:
            assert ingest_port not in (port["port"], port.get("targetPort")), svc
            assert "ingest.sock" not in json.dumps(port)
    (query,) = find(objects, "Service", "ec-events-cache")
    assert query["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in query["spec"]["ports"]] == [(8080, 8080)]
    for ing in find(objects, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] == "ec-events-cache"
    config = yaml.safe_load(find(objects, "ConfigMap", "ec-events-cache")[0]["data"]["config.yaml"])
    assert config["sidecar"]["ingest"]["listen"].startswith("127.0.0.1:")


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_query_service_and_pod_monitor_select_only_the_sidecar_label(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    """A key of the chart's own, whose value is the release's full name: it never collides
    with the pod's labels, and the Deployment's own selector stays the usual pair."""
    objects = rendered[value_set]
    dep = deployment(objects)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/name": "events-cache",
        "app.kubernetes.io/instance": "ec",
    }
    assert selector.items() <= labels.items()
    assert labels[SIDECAR_LABEL] == "ec-events-cache"
    (query,) = find(objects, "Service", "ec-events-cache")
    assert query["spec"]["selector"] == {SIDECAR_LABEL: "ec-events-cache"}
    for monitor in find(objects, "PodMonitor"):
        assert monitor["spec"]["selector"]["matchLabels"] == {SIDECAR_LABEL: "ec-events-cache"}
    for svc in find(objects, "Service"):
        assert svc["spec"]["selector"].items() <= labels.items() or svc["metadata"][
            "name"
        ].endswith("-redis"), svc["metadata"]["name"]


def test_keys_given_twice_are_written_once_and_the_charts_win(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """commonLabels, podLabels, podAnnotations and service.labels repeat the chart's own
    keys in this value set; `split` would fail on a key written twice."""
    objects = rendered["overlapping-keys"]
    dep = deployment(objects)
    pod = dep["spec"]["template"]["metadata"]
    assert pod["labels"]["app.kubernetes.io/name"] == "events-cache"
    assert pod["labels"]["app.kubernetes.io/instance"] == "ec"
    assert pod["labels"][SIDECAR_LABEL] == "ec-events-cache"
    assert pod["labels"]["team"] == "ingest"  # podLabels over commonLabels
    assert pod["labels"]["app.kubernetes.io/component"] == "ingest"  # commonLabels
    assert pod["annotations"]["prometheus.io/scrape"] == "false"  # the user's choice
    assert pod["annotations"]["checksum/config"] != "not-the-checksum"
    assert dep["metadata"]["labels"]["app.kubernetes.io/name"] == "events-cache"
    (query,) = find(objects, "Service", "ec-events-cache")
    assert query["metadata"]["labels"]["app.kubernetes.io/component"] == "query-api"
    assert query["metadata"]["labels"]["team"] == "query"
    (monitor,) = find(objects, "PodMonitor")
    assert monitor["metadata"]["labels"]["team"] == "monitoring"


def test_the_loader_refuses_a_key_written_twice() -> None:
    with pytest.raises(DuplicateKeyError):
        load_all("metadata:\n  labels:\n    a: '1'\n    a: '2'\n")


def test_native_sidecar_starts_before_the_ingest_and_waits_for_the_socket(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    pod = deployment(rendered["defaults"])["spec"]["template"]["spec"]
    where, sidecar = sidecar_of(pod)
    assert where == "initContainers"
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["exec"]["command"] == [
        "test",
        "-S",
        "/var/run/events-cache/ingest.sock",
    ]
    (ingest,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in ingest["env"]}
    assert env["EVENTS_CACHE_SOCKET"] == "/var/run/events-cache/ingest.sock"
    assert env["EVENTS_CACHE_URL"] == "http://127.0.0.1:8001"
    socket_mounts = [
        m["mountPath"]
        for c in (sidecar, ingest)
        for m in c["volumeMounts"]
        if m["name"] == "events-cache-socket"
    ]
    assert socket_mounts == ["/var/run/events-cache", "/var/run/events-cache"]
    (socket_volume,) = [v for v in pod["volumes"] if v["name"] == "events-cache-socket"]
    assert "emptyDir" in socket_volume
    # The ingest's shutdown (20 s) + drain (5 s) + flush (10 s) + margin.
    assert pod["terminationGracePeriodSeconds"] >= 20 + 5 + 10


def test_demo_container_for_a_trial(chart: Any, rendered: dict[str, list[dict[str, Any]]]) -> None:
    """demo.enabled: `events-cache demo` from the sidecar's image over the socket, with
    the sidecar's restricted context; without an ingest image it stands in for the
    ingest. Off (the default): no trace of it."""
    pod = deployment(rendered["demo"])["spec"]["template"]["spec"]
    (demo,) = pod["containers"]
    _, sidecar = sidecar_of(pod)
    assert demo["name"] == "demo" and demo["image"] == sidecar["image"]
    assert demo["args"] == [
        "demo",
        "--socket",
        "/var/run/events-cache/ingest.sock",
        "--rate",
        "5",
        "--ids",
        "4",
        "--error-ratio",
        "0.1",
        "--wait",
        "60",
    ]
    assert demo["securityContext"] == sidecar["securityContext"]
    assert demo["resources"]["limits"]["memory"] == "96Mi"
    assert demo["volumeMounts"] == [
        {"name": "events-cache-socket", "mountPath": "/var/run/events-cache"}
    ]
    assert container_problems(demo, pod) == []
    for value_set in VALUE_SETS:
        if value_set != "demo":
            names = [
                c["name"]
                for c in containers(deployment(rendered[value_set])["spec"]["template"]["spec"])
            ]
            assert "demo" not in names, value_set
    values = {**values_of("defaults"), "demo": {"enabled": True}}
    pod = deployment(render(chart, values))["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["ingest", "demo"]


def test_classic_sidecar_is_a_plain_container(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod = deployment(rendered["classic-sidecar"])["spec"]["template"]["spec"]
    where, sidecar = sidecar_of(pod)
    assert where == "containers"
    assert "restartPolicy" not in sidecar
    assert "initContainers" not in pod
    assert [c["name"] for c in pod["containers"]] == ["ingest", "events-cache"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_probes_never_depend_on_redis(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    _, sidecar = sidecar_of(deployment(rendered[value_set])["spec"]["template"]["spec"])
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "httpGet" not in sidecar["startupProbe"] or sidecar["startupProbe"]["httpGet"][
        "path"
    ] in ("/healthz", "/readyz")


def test_image_digest_pinning(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod = deployment(rendered["external-tls"])["spec"]["template"]["spec"]
    _, sidecar = sidecar_of(pod)
    assert sidecar["image"] == (
        "ghcr.io/events-cache/events-cache:0.2.0@sha256:" + "fedcba9876543210" * 4
    )
    assert pod["containers"][0]["image"] == (
        "registry.example.internal/ingest:latest@sha256:" + "0123456789abcdef" * 4
    )


def test_checksum_annotation_rolls_pods_on_config_change(chart: Any) -> None:
    base = values_of("defaults")
    changed = copy.deepcopy(base)
    changed["config"] = {"sidecar": {"log": {"level": "debug"}}}

    def checksum(values: dict[str, Any]) -> str:
        dep = deployment(render(chart, values))
        return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(base) == checksum(copy.deepcopy(base))
    assert checksum(base) != checksum(changed)


def test_grace_period_follows_the_daemons_shutdown_settings(chart: Any) -> None:
    """With no config the daemon's own defaults count (drain 5 s, flush 10 s, from the
    generated files/daemon-defaults.yaml); values.config overrides them."""
    values = values_of("defaults")
    values.setdefault("ingest", {})["shutdownSeconds"] = 20

    def grace(config: dict[str, Any]) -> int:
        pod = deployment(render(chart, {**values, "config": config}))["spec"]["template"]["spec"]
        return int(pod["terminationGracePeriodSeconds"])

    assert grace({}) == 20 + 5 + 10 + 5
    assert grace({"sidecar": {"shutdown": {"drain_seconds": 30}}}) == 20 + 30 + 10 + 5
    assert grace({"sidecar": {"shutdown": {"flush_timeout_seconds": 2.5}}}) == 20 + 5 + 3 + 5


def test_secrets_wiring(rendered: dict[str, list[dict[str, Any]]]) -> None:
    # Generated admin token, no Redis password.
    (secret,) = find(rendered["defaults"], "Secret")
    token = base64.b64decode(secret["data"]["admin-token"]).decode()
    assert len(token) == 40 and token.isalnum()
    # existingSecret: no chart Secret, the projected volume names the user's Secrets.
    objects = rendered["existing-secret"]
    assert find(objects, "Secret") == []
    pod = deployment(objects)["spec"]["template"]["spec"]
    (secrets,) = [v for v in pod["volumes"] if v["name"] == "events-cache-secrets"]
    sources = [s["secret"] for s in secrets["projected"]["sources"]]
    assert [(s["name"], s["items"][0]["key"], s["items"][0]["path"]) for s in sources] == [
        ("events-cache-admin", "token", "admin-token"),
        ("redis-credentials", "redis-password", "redis-password"),
    ]
    _, sidecar = sidecar_of(pod)
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["EVENTS_CACHE_ADMIN_TOKEN_FILE"] == "/etc/events-cache/secrets/admin-token"
    assert env["EVENTS_CACHE_REDIS_PASSWORD_FILE"] == "/etc/events-cache/secrets/redis-password"
    for c in pod["containers"] + pod.get("initContainers", []):
        assert not [
            e
            for e in c.get("env", [])
            if "PASSWORD" in e["name"] and "value" in e and not e["name"].endswith("_FILE")
        ], "secrets only as files"


def test_explicit_admin_token_is_used(chart: Any) -> None:
    values = values_of("defaults")
    values["auth"] = {"adminToken": "given-token"}
    (secret,) = find(render(chart, values), "Secret")
    assert base64.b64decode(secret["data"]["admin-token"]).decode() == "given-token"


def test_chart_managed_redis(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["redis-managed"]
    (sts,) = find(objects, "StatefulSet")
    assert (
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    )
    (redis,) = sts["spec"]["template"]["spec"]["containers"]
    assert redis["livenessProbe"] and redis["readinessProbe"]
    assert "--requirepass" in redis["args"]
    config = yaml.safe_load(find(objects, "ConfigMap", "ec-events-cache")[0]["data"]["config.yaml"])
    assert config["meta"]["storage"]["redis"]["host"] == f"ec-events-cache-redis.{NAMESPACE}.svc"
    (secret,) = find(objects, "Secret")
    assert len(base64.b64decode(secret["data"]["redis-password"])) == 32
    assert find(objects, "ConfigMap", "ec-extra")  # extraObjects, through tpl
    dep = deployment(objects)
    assert dep["metadata"]["labels"]["team"] == "data"
    assert dep["spec"]["template"]["metadata"]["labels"]["team"] == "data"


def test_prometheus_rule_renders_the_alerts_file(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (rule,) = find(rendered["monitors"], "PrometheusRule")
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    want = [r["alert"] for g in source["groups"] for r in g["rules"]]
    groups = rule["spec"]["groups"]
    got = [r["alert"] for r in groups[0]["rules"]]
    assert got == [a for a in want if a != "EventsCacheQueueNearCapacity"]  # disabledAlerts
    for r in groups[0]["rules"]:
        original = next(s for g in source["groups"] for s in g["rules"] if s["alert"] == r["alert"])
        assert r["expr"] == original["expr"]
        assert r["labels"] == {**original["labels"], "team": "data"}
    assert groups[1]["rules"][0]["alert"] == "EventsCacheHighQueryLatency"


def test_dashboard_configmap_ships_the_generated_json(
    rendered: dict[str, list[dict[str, Any]]], chart: Any
) -> None:
    assert not find(rendered["defaults"], "ConfigMap", "ec-events-cache-dashboards")
    (cm,) = find(rendered["monitors"], "ConfigMap", "ec-events-cache-dashboards")
    meta = cm["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["labels"]["app.kubernetes.io/name"] == "events-cache"
    assert meta["annotations"] == {"grafana_folder": "Ingest"}
    dashboards = sorted((CHART / "dashboards").glob("*.json"))
    assert [p.name for p in dashboards] == ["events-cache.json"]
    # The file byte for byte (Grafana's `{{legend}}` braces are not templated).
    assert cm["data"] == {p.name: p.read_text().rstrip("\n") for p in dashboards}
    assert json.loads(cm["data"]["events-cache.json"])["uid"] == "events-cache"
    # The sidecar's label and the namespace are the user's to choose.
    values = values_of("monitors")
    values["dashboards"] = {"enabled": True, "label": "dash", "labelValue": "yes",
                            "labels": {"team": "data"}, "annotations": {"note": "x"}}  # fmt: skip
    (cm,) = find(render(chart, values), "ConfigMap", "ec-events-cache-dashboards")
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert {"dash": "yes", "team": "data"}.items() <= cm["metadata"]["labels"].items()
    assert "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["annotations"] == {"note": "x"}


def test_dashboard_json_is_up_to_date() -> None:
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk not installed")
    generator = _script("dashboard")
    assert generator.render() == generator.OUT.read_text(), (
        "helm/events-cache/dashboards/events-cache.json is stale: run scripts/dashboard.py"
    )
    readme = generator.README.read_text()
    assert generator.readme(readme) == readme, "the README's panel list is stale"
    assert (
        generator.START in readme and "| Queue and Redis | Redis errors per operation |" in readme
    )


def test_network_policy(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (policy,) = find(rendered["networkpolicy"], "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    api, ingest = spec["ingress"]
    assert api["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert ingest["ports"] == [{"port": 8000, "protocol": "TCP"}]
    redis_rule = spec["egress"][1]
    assert (
        redis_rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        == "events-cache-redis"
    )


def test_missing_required_values_fail_with_a_message(chart: Any) -> None:
    with pytest.raises(helm.HelmError, match=r"ingest\.image\.repository is required"):
        render(chart, {"externalRedis": {"host": "redis"}})
    with pytest.raises(helm.HelmError, match=r"externalRedis\.host"):
        render(chart, {"ingest": {"image": {"repository": "ingest"}}})


# ------------------------------------------------------- values.schema.json


@pytest.mark.parametrize(
    "bad",
    [
        {"sidecar": {"native": "yes"}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"image": {"digest": "latest"}},
        {"replicaCount": -1},
        {"imageTag": "1.0"},
        {"sidecar": {"apiPort": 70000}},
        {"config": {"sidecar": {"log": {"level": "loud"}}}},
        {"config": {"server": {"cache": {"events": {"size": 0}}}}},
        {"config": {"server": {"admin_token": "secrets never go into the ConfigMap"}}},
        {"externalRedis": {"port": "6379"}},
        {"service": {"type": "ExternalName"}},
    ],
)
def test_schema_rejects_invalid_values(chart: Any, bad: dict[str, Any]) -> None:
    values = {**values_of("defaults"), **bad}
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_schema_accepts_value_sets_and_global(chart: Any, value_set: str) -> None:
    chart.validate_schema({**values_of(value_set), "global": {"imageRegistry": "mirror"}})


def _script(name: str) -> Any:
    return load_script(name)


def test_schema_is_generated_from_values_and_covers_every_value() -> None:
    schema_script = _script("helm-schema")
    assert (CHART / "values.schema.json").read_text() == schema_script.render(), (
        "values.schema.json is stale: run scripts/helm-schema.py"
    )
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        assert "type" in node, path
        if isinstance(value, dict) and value and "properties" in node:
            assert node.get("additionalProperties") is False, path
            for key, sub in value.items():
                assert key in node["properties"], f"{path}.{key} not in the schema"
                walk(sub, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "")
    assert "global" in schema["properties"]


def test_readme_values_table_is_up_to_date() -> None:
    docs = _script("helm-docs")
    readme = (CHART / "README.md").read_text()
    assert docs.render(readme) == readme, "README.md is stale: run scripts/helm-docs.py"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {row.key for row in docs.parse(CHART / "values.yaml")}

    def leaves(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                yield from leaves(sub, f"{path}.{key}" if path else key)
        else:
            yield path

    undocumented = [
        leaf
        for leaf in leaves(values, "")
        if not any(leaf == d or leaf.startswith(d + ".") for d in documented)
    ]
    assert undocumented == []


# ------------------------------------------- the daemon accepts the rendered config


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_config_passes_the_daemons_loader_and_check_config(
    rendered: dict[str, list[dict[str, Any]]], value_set: str, tmp_path: Path
) -> None:
    from daemon.config import load_config

    objects = rendered[value_set]
    text = find(objects, "ConfigMap", "ec-events-cache")[0]["data"]["config.yaml"]
    config = yaml.safe_load(text)
    redis = config["meta"]["storage"]["redis"]
    if redis.get("tls_ca_file"):
        # The CA comes from a Secret mounted in the pod; here a file stands in for it.
        assert redis["tls_ca_file"] == "/etc/events-cache/redis-tls/ca.crt"
        ca = tmp_path / "ca.crt"
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        text = text.replace("/etc/events-cache/redis-tls/ca.crt", str(ca))
    path = tmp_path / "config.yaml"
    path.write_text(text)

    # The secret files the pod would mount, from the rendered Secret where it is the chart's.
    pod = deployment(objects)["spec"]["template"]["spec"]
    _, sidecar = sidecar_of(pod)
    env = {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}
    files = {
        "admin-token": "token-from-an-existing-secret",
        "redis-password": "password-from-an-existing-secret",
    }
    for secret in find(objects, "Secret"):
        for key, value in secret["data"].items():
            files["admin-token" if key == "admin-token" else "redis-password"] = base64.b64decode(
                value
            ).decode()
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    for name, mounted in env.items():
        if name.endswith("_FILE"):
            local = tmp_path / Path(mounted).name
            local.write_text(files[Path(mounted).name])
            run_env[name] = str(local)

    loaded = load_config(str(path), env=run_env)
    assert loaded.warnings == (), "the chart renders keys the daemon does not know"

    result = subprocess.run(
        [sys.executable, "-m", "daemon", "check-config", "--config", str(path)],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    settings = yaml.safe_load(result.stdout)
    assert settings["sidecar"]["ingest"]["socket"] == "/var/run/events-cache/ingest.sock"
    assert settings["sidecar"]["api"]["listen"] == "0.0.0.0:8080"
    for secret_value in files.values():
        assert secret_value not in result.stdout, "check-config must redact secrets"
