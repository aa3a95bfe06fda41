"""Checks shared by the tests of rendered Kubernetes manifests (chart and Kustomize).

- `load_all`: YAML documents parsed by a loader that fails on a key written twice (PyYAML's
  own keeps the last one silently, which is how a duplicated selector label slips by).
- `validate`: every object against the Kubernetes JSON schemas of a version, strictly.
- `restricted_problems`: the Pod Security Standards "restricted" checks of one pod spec.
"""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes_validate import utils as kv_utils

# Every Kubernetes minor from the chart's kubeVersion floor (native sidecars, 1.29) up to
# the newest that kubernetes-validate ships.
K8S_VERSIONS = [
    v for v in kv_utils.all_versions() if tuple(int(x) for x in v.split(".")[:2]) >= (1, 29)
]
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "downwardAPI",
    "emptyDir",
    "projected",
    "secret",
    "csi",
    "persistentVolumeClaim",
    "ephemeral",
    "image",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with a key written twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_all(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML text; duplicate keys fail."""
    return [doc for doc in yaml.load_all(text, Loader=UniqueKeyLoader) if doc]


def validate(objects: list[dict[str, Any]], versions: list[str]) -> list[str]:
    """Schema failures of `objects` on each Kubernetes version (strict: unknown fields fail)."""
    failures = []
    for version in versions:
        for obj in objects:
            try:
                kv_utils.validate(obj, version, strict=True)
            except kv_utils.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                failures.append(
                    f"{version} {obj['kind']}/{obj['metadata']['name']} {path}: {e.message}"
                )
    return failures


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(object name, pod spec) of every workload and bare pod."""
    specs = []
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            specs.append(
                (f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"])
            )
        elif obj["kind"] == "Pod":
            specs.append((f"Pod/{obj['metadata']['name']}", obj["spec"]))
    return specs


def container_problems(
    c: dict[str, Any], pod: dict[str, Any], read_only_root: bool = True
) -> list[str]:
    """What keeps one container of `pod` from "restricted" (and, by default, from a
    read-only root filesystem, which this project wants of its own containers)."""
    psc = pod.get("securityContext", {})
    sc = c.get("securityContext", {})
    checks = {
        "allowPrivilegeEscalation false": sc.get("allowPrivilegeEscalation") is False,
        "capabilities drop ALL": sc.get("capabilities", {}).get("drop") == ["ALL"],
        "only NET_BIND_SERVICE added": set(sc.get("capabilities", {}).get("add", []))
        <= {"NET_BIND_SERVICE"},
        "runAsNonRoot": sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True,
        "runAsUser not 0": sc.get("runAsUser", psc.get("runAsUser")) != 0,
        "seccomp RuntimeDefault or Localhost": sc.get(
            "seccompProfile", psc.get("seccompProfile", {})
        ).get("type")
        in ("RuntimeDefault", "Localhost"),
        "not privileged": not sc.get("privileged"),
        "no hostPort": all("hostPort" not in p for p in c.get("ports", [])),
    }
    if read_only_root:
        checks["readOnlyRootFilesystem"] = sc.get("readOnlyRootFilesystem") is True
    return [f"container {c['name']}: {name}" for name, ok in checks.items() if not ok]


def pod_problems(pod: dict[str, Any]) -> list[str]:
    """What keeps the pod itself (host namespaces, volume types) from "restricted"."""
    problems = [flag for flag in ("hostNetwork", "hostPID", "hostIPC") if pod.get(flag)]
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    return problems


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Init containers (native sidecars among them) and containers of a pod spec."""
    return [*pod.get("initContainers", []), *pod.get("containers", [])]
