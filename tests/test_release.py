"""The release path (.github/workflows/release.yml), as far as it runs here.

- the versions agree: pyproject.toml, the chart's version and appVersion, the image its
  artifacthub annotation names, an empty default image tag, the Dockerfile's default
  VERSION (its version label) and the Kustomize component's image (scripts/release.py
  check, the workflow's first step);
- the chart steps: a copy of the chart stamped with an image digest (scripts/release.py
  stamp), linted, packaged and rendered by Helm's own library (helm-python-sdk), pins
  the sidecar image by digest and keeps its values documented; the repository's chart
  packages as it is;
- the workflow: GitHub's workflow schema (check-jsonschema's copy of schemastore's) and
  shellcheck on its `run` scripts, and the parts a release needs (a version tag, both
  platforms, the digest into the chart, the OCI push); the README names what it
  publishes. The image itself is built by scripts/image-test in .ci/run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "events-cache"
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = "ghcr.io/events-cache/events-cache"
CHARTS = "oci://ghcr.io/events-cache/charts"


def script(name: str) -> Any:
    return load_script(name)


release = script("release")


def test_versions_agree() -> None:
    assert release.problems(VERSION) == []
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == VERSION
    assert values["image"] == {**values["image"], "repository": IMAGE, "tag": "", "digest": ""}


def test_check_names_every_disagreement(tmp_path: Path) -> None:
    # pyproject, version, appVersion, annotation, Dockerfile, the Kustomize component
    assert len(release.problems("9.9.9")) == 6
    assert any("semantic version" in p for p in release.problems("latest"))
    copy = tmp_path / "repo"
    shutil.copytree(CHART, copy / "helm" / "events-cache")
    shutil.copytree(ROOT / "deploy", copy / "deploy")
    for name in ("pyproject.toml", "Dockerfile"):
        shutil.copy(ROOT / name, copy)
    assert release.problems(VERSION, copy) == []
    values = copy / "helm" / "events-cache" / "values.yaml"
    values.write_text(values.read_text().replace('  tag: ""', '  tag: "0.0.9"', 1))
    assert any("image.tag" in p for p in release.problems(VERSION, copy))
    dockerfile = copy / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(f"ARG VERSION={VERSION}", "ARG VERSION=0.1.0")
    )
    assert any("Dockerfile ARG VERSION is '0.1.0'" in p for p in release.problems(VERSION, copy))
    sidecar = copy / "deploy" / "kustomize" / "events-cache" / "sidecar.yaml"
    sidecar.write_text(sidecar.read_text().replace(f"{IMAGE}:{VERSION}", "events-cache:0.1.0"))
    assert any(
        "sidecar.yaml names 'events-cache:0.1.0'" in p for p in release.problems(VERSION, copy)
    )
    run = subprocess.run([sys.executable, ROOT / "scripts" / "release.py", "check", "v9.9.9"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 1 and "the tag says '9.9.9'" in run.stderr


@pytest.fixture(scope="module")
def helm() -> Any:
    return pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")


def test_stamped_chart_packages_and_pins_the_image_digest(helm: Any, tmp_path: Path) -> None:
    chart_dir = tmp_path / "events-cache"
    shutil.copytree(CHART, chart_dir)
    release.stamp(chart_dir, IMAGE, DIGEST, "1.2.3")
    report = helm.lint(str(chart_dir), strict=True)
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report
    archive = Path(helm.package(chart_dir, destination=tmp_path / "dist"))
    assert archive.name == "events-cache-1.2.3.tgz"
    with helm.Chart.load(archive) as packaged:
        manifests = packaged.render(
            {"ingest": {"image": {"repository": "example/ingest"}}, "redis": {"enabled": True}},
            name="r", namespace="ingest", is_install=True,
        )  # fmt: skip
    text = "\n".join(manifests.values())
    assert f'image: "{IMAGE}:1.2.3@{DIGEST}"' in text
    # Only those lines changed: every value is still documented, the comments kept.
    docs = script("helm-docs")
    assert [r.key for r in docs.parse(chart_dir / "values.yaml")] == [
        r.key for r in docs.parse(CHART / "values.yaml")
    ]
    changed = [
        (a, b)
        for a, b in zip(
            (CHART / "values.yaml").read_text().splitlines(),
            (chart_dir / "values.yaml").read_text().splitlines(),
            strict=True,
        )
        if a != b
    ]
    assert [b.strip() for _, b in changed] == [
        f'repository: "{IMAGE}"',
        'tag: "1.2.3"',
        f'digest: "{DIGEST}"',
    ]
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("1.2.3", "1.2.3")
    assert f"image: {IMAGE}:1.2.3@{DIGEST}" in chart["annotations"]["artifacthub.io/images"]
    with pytest.raises(SystemExit):
        release.stamp(chart_dir, IMAGE, "sha256:short", "1.2.3")


def test_the_repository_chart_packages_with_its_dashboard_and_alerts(
    helm: Any, tmp_path: Path
) -> None:
    archive = Path(helm.package(CHART, destination=tmp_path))
    assert archive.name == f"events-cache-{VERSION}.tgz"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for wanted in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md",
                   "files/alerts.yaml", "dashboards/events-cache.json",
                   "templates/dashboards.yaml"):  # fmt: skip
        assert f"events-cache/{wanted}" in names, wanted
    assert not any(n.startswith("events-cache/ci/") for n in names)


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_workflow_does_what_a_release_needs() -> None:
    doc = workflow()
    assert doc[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    assert doc["permissions"] == {"contents": "write", "packages": "write"}
    steps = doc["jobs"]["release"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    build = uses["docker/build-push-action"]["with"]
    assert build["platforms"] == "linux/amd64,linux/arm64" and build["push"] is True
    assert {"docker/setup-qemu-action", "docker/setup-buildx-action", "docker/login-action",
            "azure/setup-helm", "actions/checkout"} <= set(uses)  # fmt: skip
    runs = "\n".join(s.get("run", "") for s in steps)
    assert 'scripts/release.py check "$version"' in runs
    assert "scripts/release.py stamp helm/events-cache" in runs
    assert "${{ steps.image.outputs.digest }}" in WORKFLOW.read_text()
    assert re.search(r"helm package helm/events-cache .*--app-version", runs)
    assert 'helm push dist/events-cache-"$VERSION".tgz "$CHARTS"' in runs
    assert "oci://ghcr.io/$owner/charts" in runs and "ghcr.io/$owner/events-cache" in runs


def test_workflow_matches_githubs_schema(tmp_path: Path) -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    if not checker.exists():
        pytest.skip("check-jsonschema is not installed (the lint extra)")

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        argv = [str(checker), "--builtin-schema", "vendor.github-workflows", str(path)]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    ok = check(WORKFLOW)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "release.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    assert check(broken).returncode != 0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_workflow_run_scripts_pass_shellcheck(tmp_path: Path) -> None:
    for n, step in enumerate(s for s in workflow()["jobs"]["release"]["steps"] if "run" in s):
        # Expressions are filled in by GitHub before the shell runs: a plain word here.
        text = re.sub(r"\$\{\{[^}]*\}\}", "expr", step["run"])
        path = tmp_path / f"step-{n}.sh"
        path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + text)
        result = subprocess.run(["shellcheck", "--severity=warning", str(path)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert result.returncode == 0, (step["name"], result.stdout)


def test_readme_names_the_published_locations() -> None:
    readme = (ROOT / "README.md").read_text()
    install = readme[readme.index("## Install") :]
    assert f"{IMAGE}:{VERSION}" in install
    assert f"{CHARTS}/events-cache --version {VERSION}" in install
    assert ".github/workflows/release.yml" in install
