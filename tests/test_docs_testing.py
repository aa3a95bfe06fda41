"""docs/testing.md says what works: its configuration loads under `check-config --strict`'s
rules, its GitHub Actions job matches GitHub's workflow schema (the copy check-jsonschema
vendors from SchemaStore) and its `run` scripts pass shellcheck, and its command lines
parse with the CLI's own parser."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.cli import _parser
from daemon.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(language: str) -> list[str]:
    return [text for lang, text in BLOCK.findall(DOC.read_text()) if lang == language]


def workflow_text() -> str:
    [text] = [b for b in blocks("yaml") if b.startswith("# .github/workflows/")]
    return text


def test_the_configuration_loads_strictly(tmp_path: Path) -> None:
    [text] = [b for b in blocks("yaml") if b.startswith("# events-cache.yaml")]
    path = tmp_path / "events-cache.yaml"
    path.write_text(text)
    config = load_config(str(path), env={}, strict=True)
    reply = config.sidecar.mirror.reply
    assert (reply.status, reply.body) == (200, '{"status":"ok"}')
    assert reply.headers.as_dict()["Access-Control-Allow-Origin"] == "*"
    # The workflow mounts that file where its EVENTS_CACHE_CONFIG says.
    assert "EVENTS_CACHE_CONFIG=/etc/events-cache/config.yaml" in workflow_text()


def test_the_workflow_matches_githubs_schema(tmp_path: Path) -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    if not checker.exists():
        pytest.skip("check-jsonschema is not installed (the lint extra)")

    def check(text: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "tracking-tests.yml"
        path.write_text(text)
        argv = [str(checker), "--builtin-schema", "vendor.github-workflows", str(path)]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    ok = check(workflow_text())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert check(workflow_text().replace("services:", "service:")).returncode != 0
    assert check(workflow_text().replace("ports: [", "port: [")).returncode != 0


def test_the_workflow_runs_the_image_beside_a_redis_service() -> None:
    job: dict[str, Any] = yaml.safe_load(workflow_text())["jobs"]["tests"]
    assert job["services"]["redis"]["ports"] == ["6379:6379"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert '"$EVENTS_CACHE_IMAGE"' in runs and "--network host" in runs
    assert job["env"]["EVENTS_CACHE_IMAGE"].startswith("ghcr.io/events-cache/events-cache:")
    assert "events-cache export --namespace token --ids js.ci-key" in runs


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_the_workflow_run_scripts_pass_shellcheck(tmp_path: Path) -> None:
    steps = yaml.safe_load(workflow_text())["jobs"]["tests"]["steps"]
    for n, step in enumerate(s for s in steps if "run" in s):
        path = tmp_path / f"step-{n}.sh"
        path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + step["run"])
        result = subprocess.run(["shellcheck", "--severity=warning", str(path)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert result.returncode == 0, (step.get("name"), result.stdout)


def test_every_command_line_parses() -> None:
    lines = [
        line
        for block in blocks("sh")
        for line in block.replace("\\\n", " ").splitlines()
        if line.startswith("events-cache ")
    ]
    assert len(lines) == 5
    for line in lines:
        # the shell's redirection and background aside
        words = shlex.split(line.partition(" > ")[0].removesuffix(" &"))
        args = _parser().parse_args(words[1:])
        assert args.command in ("export", "replay", "expect"), line
