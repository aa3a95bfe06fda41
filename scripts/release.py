#!/usr/bin/env python3
"""The release's chart steps, shared by .github/workflows/release.yml and the tests.

    scripts/release.py check VERSION
        exit 1 unless VERSION (the tag without its `v`) is the version of pyproject.toml,
        the chart's `version` and `appVersion`, the image in its artifacthub
        annotation, the Dockerfile's default VERSION (the image's version label) and the
        tag of the Kustomize component's image; the chart's default image tag must be
        empty (= appVersion).
    scripts/release.py stamp CHART_DIR --image REPOSITORY --digest sha256:... --version V
        write the published image (repository, tag V, digest) into CHART_DIR/values.yaml
        and V into CHART_DIR/Chart.yaml, editing only those lines (comments stay, so the
        packaged chart's values are still documented). Run on the checkout in CI, before
        `helm package`.

Standard library only: the workflow runs it with the runner's python3.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "events-cache"
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def chart_field(text: str, key: str) -> str:
    """A top-level scalar of Chart.yaml (quotes removed)."""
    found = re.search(rf"^{key}:\s*\"?([^\"\n]*)\"?\s*$", text, re.M)
    return found.group(1) if found else ""


def image_block(values: str) -> tuple[int, int]:
    """Start and end offsets of the top-level `image:` block of values.yaml."""
    start = re.search(r"^image:\s*$", values, re.M)
    if start is None:
        raise SystemExit("values.yaml has no top-level image: block")
    end = re.search(r"^\S", values[start.end() :], re.M)
    return start.end(), start.end() + (end.start() if end else len(values) - start.end())


def image_value(values: str, key: str) -> str:
    """`image.<key>` of values.yaml (quotes removed)."""
    begin, end = image_block(values)
    found = re.search(rf"^  {key}:\s*\"?([^\"\n]*)\"?\s*$", values[begin:end], re.M)
    return found.group(1) if found else ""


def problems(version: str, root: Path = ROOT) -> list[str]:
    """What disagrees with VERSION."""
    chart_dir = root / "helm" / "events-cache"
    chart = (chart_dir / "Chart.yaml").read_text()
    values = (chart_dir / "values.yaml").read_text()
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    found = []
    if not SEMVER.match(version):
        found.append(f"{version!r} is not a semantic version (tag v1.2.3 or v1.2.3-rc.1)")
    for where, value in (
        ("pyproject.toml [project].version", pyproject),
        ("Chart.yaml version", chart_field(chart, "version")),
        ("Chart.yaml appVersion", chart_field(chart, "appVersion")),
    ):
        if value != version:
            found.append(f"{where} is {value!r}, the tag says {version!r}")
    dockerfile = re.search(r"^ARG VERSION=(\S*)\s*$", (root / "Dockerfile").read_text(), re.M)
    if dockerfile is None or dockerfile.group(1) != version:
        found.append(
            f"Dockerfile ARG VERSION is {dockerfile and dockerfile.group(1)!r}, "
            f"the tag says {version!r}"
        )
    if image_value(values, "tag"):
        found.append("values.yaml image.tag must stay empty (it defaults to appVersion)")
    repository = image_value(values, "repository")
    annotated = re.search(r"^\s+image:\s*(\S+)\s*$", chart, re.M)
    if annotated is None or annotated.group(1) != f"{repository}:{version}":
        found.append(
            f"Chart.yaml artifacthub.io/images names {annotated and annotated.group(1)!r}, "
            f"expected {repository}:{version}"
        )
    sidecar = (root / "deploy" / "kustomize" / "events-cache" / "sidecar.yaml").read_text()
    component = re.search(r"^\s+image:\s*(\S+)\s*$", sidecar, re.M)
    if component is None or component.group(1) != f"{repository}:{version}":
        found.append(
            f"deploy/kustomize/events-cache/sidecar.yaml names "
            f"{component and component.group(1)!r}, expected {repository}:{version}"
        )
    return found


def stamp(chart_dir: Path, image: str, digest: str, version: str) -> None:
    """Write the published image and the version into the chart."""
    if not DIGEST.match(digest):
        raise SystemExit(f"not an image digest: {digest!r}")
    values_path, chart_path = chart_dir / "values.yaml", chart_dir / "Chart.yaml"
    values = values_path.read_text()
    current = image_value(values, "repository")
    begin, end = image_block(values)
    block = values[begin:end]
    for key, value in (("repository", image), ("tag", version), ("digest", digest)):
        block, count = re.subn(rf"^(  {key}:).*$", rf'\g<1> "{value}"', block, count=1, flags=re.M)
        if count != 1:
            raise SystemExit(f"values.yaml image.{key} not found")
    values_path.write_text(values[:begin] + block + values[end:])
    chart = chart_path.read_text()
    chart = re.sub(r"^version:.*$", f"version: {version}", chart, count=1, flags=re.M)
    chart = re.sub(r"^appVersion:.*$", f'appVersion: "{version}"', chart, count=1, flags=re.M)
    chart, count = re.subn(  # the artifacthub.io/images annotation
        rf"^(\s+image:\s*){re.escape(current)}:\S+\s*$",
        lambda m: f"{m.group(1)}{image}:{version}@{digest}",
        chart,
        count=1,
        flags=re.M,
    )
    if count != 1:
        raise SystemExit(f"Chart.yaml names no image {current}:... in artifacthub.io/images")
    chart_path.write_text(chart)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="versions agree with the tag")
    check.add_argument("version")
    stamp_cmd = commands.add_parser("stamp", help="write the published image into a chart")
    stamp_cmd.add_argument("chart", type=Path)
    stamp_cmd.add_argument("--image", required=True)
    stamp_cmd.add_argument("--digest", required=True)
    stamp_cmd.add_argument("--version", required=True)
    args = parser.parse_args()
    if args.command == "check":
        found = problems(args.version.removeprefix("v"))
        for problem in found:
            print(f"release check: {problem}", file=sys.stderr)
        return 1 if found else 0
    stamp(args.chart, args.image, args.digest, args.version)
    print(f"stamped {args.chart}: {args.image}:{args.version}@{args.digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
