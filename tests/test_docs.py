"""The documents and the chart say what the code does.

- every `events_cache_*` metric named in docs/, the README and the chart (values, alerts,
  dashboards, templates, value sets) exists in the daemon's registry;
- every PromQL example of the documents (```promql blocks) parses: promtool checks them
  as recording rules of a generated rule file;
- the LICENSE file is the license the package metadata, the chart and the image declare;
- every test docs/security.md's results name exists.
(The empty token id's 404 of docs/api.md is tested in tests/test_e2e_bad_input.py.)
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from daemon.metrics import Metrics
from tests.support.prometheus import PROMTOOL

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "events-cache"
NAME = re.compile(r"\bevents_cache_[a-z0-9_]+")
NOT_METRICS = {"events_cache_client"}  # the Python ingest client's import name
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)```", re.S)


def documents() -> list[Path]:
    """Everything users read or install: the docs, the READMEs, the chart's files."""
    chart = [p for p in CHART.rglob("*") if p.is_file() and p.suffix in {".md", ".yaml",
             ".json", ".tpl", ".txt"} and p.name != "values.schema.json"]  # fmt: skip
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(chart)]


def registry_names() -> set[str]:
    """Every series name the daemon's registry can expose (histogram suffixes included)."""
    names: set[str] = set()
    for family in Metrics("0").registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def test_every_metric_named_in_the_docs_and_the_chart_exists() -> None:
    known = registry_names()
    named: dict[str, set[str]] = {}
    for path in documents():
        for name in NAME.findall(path.read_text()):
            if name not in NOT_METRICS:
                named.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert len(named) >= 15  # the scan finds them
    unknown = {name: sorted(paths) for name, paths in named.items() if name not in known}
    assert unknown == {}


def promql_examples() -> list[tuple[str, str]]:
    """(where, expression) of every line of every ```promql block that is not a comment."""
    found = []
    for path in documents():
        for block in PROMQL_BLOCK.findall(path.read_text()):
            for line in block.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    found.append((str(path.relative_to(ROOT)), line.strip()))
    return found


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_every_promql_example_parses(tmp_path: Path) -> None:
    examples = promql_examples()
    assert len(examples) >= 10
    for where, expr in examples:
        assert "exported_namespace" not in expr, (where, expr)
    rules = {"groups": [{"name": "docs", "rules": [
        {"record": f"docs:example_{n}", "expr": expr} for n, (_, expr) in enumerate(examples)
    ]}]}  # fmt: skip
    path = tmp_path / "examples.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)],  # type: ignore[list-item]
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(examples)} rules found" in result.stdout


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_refuses_a_broken_example(tmp_path: Path) -> None:
    """The check can fail: a bracket left open does."""
    path = tmp_path / "broken.yaml"
    broken = "sum by (reason) (rate(events_cache_dropped_total[5m])"
    rule = {"record": "d:x", "expr": broken}
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [rule]}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)],  # type: ignore[list-item]
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0


def test_license_file_matches_the_declared_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    for project in (ROOT, ROOT / "clients" / "python"):
        meta = tomllib.loads((project / "pyproject.toml").read_text())
        # PEP 639: an SPDX expression and the file with its text. The older table form
        # (`license = { text = "MIT" }`) makes setuptools warn on every build and install.
        assert meta["project"]["license"] == "MIT", project
        assert meta["project"]["license-files"] == ["LICENSE"], project
        assert (project / "LICENSE").read_text() == text, f"{project}/LICENSE is not the same"
        (setuptools,) = [
            Requirement(r) for r in meta["build-system"]["requires"] if r.startswith("setuptools")
        ]
        assert not setuptools.specifier.contains("76.1"), "setuptools < 77 refuses a string license"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["artifacthub.io/license"] == "MIT"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'org.opencontainers.image.licenses="MIT"' in dockerfile
    # The image builds both wheels from what it copies: license-files must be there, and
    # in the build context, which .dockerignore narrows to what the Dockerfile copies.
    assert re.search(r"^COPY [^\n]*\bLICENSE\b", dockerfile, re.M)
    context = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"!LICENSE", "!clients/python/LICENSE"} <= set(context)


TEST_REFERENCE = re.compile(r"(tests/[a-z0-9_/]+\.py)?::(test_[a-z0-9_]+)")


def test_every_test_named_in_the_security_results_exists() -> None:
    """docs/security.md's "Results of the checks" names the test of each check: each
    `tests/file.py::name` (and `::name` after it, of the same file) is a test there."""
    results = (ROOT / "docs" / "security.md").read_text().split("## Results of the checks")[1]
    named = 0
    for row in results.splitlines():
        current = None
        for file, name in TEST_REFERENCE.findall(row):
            current = file or current
            assert current is not None, row[:200]
            source = (ROOT / current).read_text()
            assert re.search(rf"^def {name}\(", source, re.M), f"{current}::{name}"
            named += 1
    assert named >= 20
