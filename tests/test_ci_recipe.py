"""docs/testing.md's GitHub Actions job, its steps run here with podman (issue 23, point 5).

The steps are read from the workflow in the doc, so what runs cannot drift from what a
user copies. Each `run` script goes to bash as GitHub's runner gives it
(`bash --noprofile --norc -eo pipefail`), after a `docker` shell function that calls
podman (with scripts/pod.py's opt-in runtime and rlimits), in a workspace holding the
doc's configuration as `ci/events-cache.yaml`, with the job's environment and
`EVENTS_CACHE_IMAGE` set to the image scripts/image-test builds. What differs from the
runner, and why:

- The Redis service (`services.redis`, `6379:6379`) is a throwaway valkey-server on a free
  loopback port, and the start step's `EVENTS_CACHE_REDIS_URL` is rewritten to that port:
  this machine's own Redis holds 127.0.0.1:6379 (the redis7 suite's), so nothing else
  can publish it, and the recipe's cache must not write there.
- The `uses:` steps (checkout, setup-node, upload-artifact) and `npm ci` are not run; in
  place of `npm test`, a tracker stand-in (curl, with that step's own environment) posts
  one event to the mirror as Jitsu's JS SDK does (`/api/v1/event?token=`);
  tests/test_e2e_jitsu_sdk.py drives the real SDK against the mirror.
- The log step (`if: failure()`) runs too, to check it shows the daemon's log.

`--network host` works here as on the runner: the container's 8080 and 8002 are the
host's. The test is marked `pod` and run by `make test-pod` (EVENTS_CACHE_POD_IMAGE);
without that variable it is skipped (`make test`); a missing podman skips it, or fails it
when $CI is set, as tests/test_pod.py does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.scripts import load_script
from tests.support.servers import RedisServer, port_is_free, server_binary
from tests.test_docs_testing import blocks, workflow_text

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("EVENTS_CACHE_POD_IMAGE", "")
IN_CI = bool(os.environ.get("CI"))
CONTAINER = "events-cache"  # the start step's --name
SERVICE_URL = "redis://127.0.0.1:6379/0"  # what the start step reaches the service at
STEP_TIMEOUT_S = 90  # the start step waits up to 60 s for /readyz

pytestmark = pytest.mark.pod
if not IMAGE:
    pytest.skip("needs the image scripts/image-test builds: make test-pod", allow_module_level=True)

# The `run` steps that are not run here (see the module docstring), by their command.
NOT_RUN = {"npm ci", "npm test"}

# In place of `npm test`: what a page's Jitsu tracker sends, with the step's environment.
TRACKER_STANDIN = r"""
body=$(printf '{"event_id":"%s","event_type":"ci_recipe","api_key":"%s","src":"jitsu",%s}' \
  "$EVENT_ID" "$JITSU_KEY" '"user":{"anonymous_id":"ci"}')
curl -fsS -X POST -H 'Content-Type: application/json' --data "$body" \
  "$JITSU_TRACKING_HOST/api/v1/event?token=$JITSU_KEY"
"""


class Job:
    """The doc's job, run step by step in a workspace."""

    def __init__(self, workspace: Path, podman_env: dict[str, str]) -> None:
        self.spec: dict[str, Any] = yaml.safe_load(workflow_text())["jobs"]["tests"]
        self.workspace = workspace
        self.env = {**podman_env, **{k: str(v) for k, v in self.spec["env"].items()}}
        self.env["EVENTS_CACHE_IMAGE"] = IMAGE

    def step(self, name: str) -> dict[str, Any]:
        (found,) = [s for s in self.spec["steps"] if s.get("name", "").startswith(name)]
        return found

    def run(
        self, script: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A `run` script as the runner's bash runs it, `docker` being podman."""
        path = self.workspace.parent / "step.sh"
        path.write_text('docker() { podman "$@"; }\n' + script)
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)]
        return subprocess.run(
            argv, cwd=self.workspace, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False,
        )  # fmt: skip

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True)


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    if shutil.which("podman") is None:
        problem = "podman is not installed (apt-get install podman runc catatonit)"
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    pod_script = load_script("pod")
    opts = pod_script.Options(
        image=IMAGE,
        runtime=os.environ.get("EVENTS_CACHE_POD_RUNTIME", ""),
        ulimits=os.environ.get("EVENTS_CACHE_POD_ULIMITS", "").split(),
        state=tmp_path / "podman",
    )
    if not pod_script.image_exists(opts, IMAGE):
        pytest.fail(f"{IMAGE} is not in podman's storage: build it with scripts/image-test")
    workspace = tmp_path / "workspace"
    (workspace / "ci").mkdir(parents=True)
    [config] = [b for b in blocks("yaml") if b.startswith("# events-cache.yaml")]
    (workspace / "ci" / "events-cache.yaml").write_text(config)
    job = Job(workspace, pod_script.podman_env(opts))
    leftover = job.podman("container", "exists", CONTAINER).returncode == 0
    assert not leftover, f"a container {CONTAINER} exists already: podman rm -f {CONTAINER}"
    for port in (8080, 8002):  # the step's readyz URL and the doc's mirror listener
        assert port_is_free(port), f"127.0.0.1:{port} is taken: the recipe's ports are fixed"
    try:
        yield job
    finally:
        job.podman("rm", "-f", "-t", "2", CONTAINER)


def test_the_workflows_steps_run_with_podman(job: Job, tmp_path: Path) -> None:
    runs = [s["run"].strip() for s in job.spec["steps"] if "run" in s]
    assert NOT_RUN <= set(runs)
    # Every other `run` step is one of the three run below: a new one in the doc fails here.
    assert len(runs) == len(NOT_RUN) + 3, runs

    # The service: a throwaway server, the start step's URL pointed at its port.
    assert job.spec["services"]["redis"]["ports"] == ["6379:6379"]
    redis = RedisServer(server_binary("valkey"), tmp_path / "redis")
    redis.start()
    try:
        start = job.step("Start the events cache")["run"]
        assert start.count(SERVICE_URL) == 1, start
        started = job.run(start.replace(SERVICE_URL, redis.url))
        assert started.returncode == 0, started.stdout + started.stderr
        inspected = json.loads(job.podman("inspect", CONTAINER).stdout)[0]
        assert inspected["ImageName"] == IMAGE
        assert inspected["HostConfig"]["NetworkMode"] == "host"

        # In place of `npm test`: the tracker sends one event with the step's environment.
        tests_env = {k: str(v) for k, v in job.step("The application's tests")["env"].items()}
        event_id = f"ci-recipe-{uuid.uuid4().hex}"
        sent = job.run(TRACKER_STANDIN, {**tests_env, "EVENT_ID": event_id})
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout == '{"status":"ok"}', sent.stdout  # the doc's mirror reply

        exported = job.run(job.step("What the collector would have received")["run"])
        assert exported.returncode == 0, exported.stdout + exported.stderr
        assert exported.stdout.split() == ["1", "tracked-events.ndjson"], exported.stdout
        lines = (job.workspace / "tracked-events.ndjson").read_text().splitlines()
        (entry,) = [json.loads(line) for line in lines]
        assert entry["original"]["event_id"] == event_id, entry
        assert entry["original"]["api_key"] == tests_env["JITSU_KEY"]

        logged = job.run(job.step("The events cache's log")["run"])
        assert logged.returncode == 0, logged.stderr
        log = logged.stdout + logged.stderr
        # The daemon's start line: its Redis reached, the doc's mirror listener configured.
        assert "redis_up=True" in log and "'listen': '0.0.0.0:8002'" in log, log
    finally:
        redis.kill()
