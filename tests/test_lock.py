"""docker/requirements.lock (written by `make lock`, uv) agrees with pyproject.toml.

The image installs the lock with `pip install --require-hashes`: a dependency added or
re-ranged in pyproject.toml without `make lock` would otherwise surface only when the
image is built.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "docker" / "requirements.lock"


def pins() -> dict[str, tuple[str, int]]:
    """{name: (version, number of hashes)} of the lock."""
    out: dict[str, tuple[str, int]] = {}
    name = ""
    for raw in LOCK.read_text().splitlines():
        line = raw.strip()
        if "==" in line and not line.startswith(("#", "--")):
            requirement = line.split(";")[0].rstrip(" \\")
            name, _, version = requirement.partition("==")
            name = canonicalize_name(name)
            out[name] = (version.strip(), 0)
        elif line.startswith("--hash=sha256:") and name:
            version, hashes = out[name]
            out[name] = (version, hashes + 1)
    return out


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    locked = pins()
    for text in dependencies:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in the lock: run make lock"
        version, _ = locked[name]
        assert requirement.specifier.contains(version), (
            f"{name}=={version} is outside {requirement.specifier}: run make lock"
        )


def test_every_pin_carries_hashes() -> None:
    locked = pins()
    assert len(locked) >= 10
    assert all(hashes > 0 for _, hashes in locked.values()), locked
    assert "make lock" in LOCK.read_text().splitlines()[1]


def test_redis_py_parses_replies_with_hiredis() -> None:
    """hiredis is a runtime dependency for its parser (a query's replies were parsed in
    pure Python in most of its time, issue 12). redis-py ignores a hiredis older than it
    supports and falls back to its own parser without a word: the range in pyproject.toml
    must stay one that redis-py takes."""
    from redis._parsers import _AsyncHiredisParser
    from redis.asyncio.connection import DefaultParser

    assert DefaultParser is _AsyncHiredisParser
