#!/usr/bin/env python3
"""Generate the values table of helm/events-cache/README.md from values.yaml.

A small helm-docs: a comment that starts with `# --` documents the key on the next
line (following `#` lines continue it), and the table between the markers
`<!-- values:start -->` and `<!-- values:end -->` of the README is rewritten with one
row per documented key: key, type, default, description. The rest of the README is
hand-written.

    scripts/helm-docs.py            # rewrite the table
    scripts/helm-docs.py --check    # exit 1 if the README is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent.parent / "helm" / "events-cache"
START, END = "<!-- values:start -->", "<!-- values:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")
ITEM = re.compile(r"^(?P<indent> *)- ")


@dataclass(frozen=True)
class Row:
    """One documented value."""

    key: str
    description: str


def parse(path: Path) -> list[Row]:
    """Documented keys of a values file, in file order."""
    rows: list[Row] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    list_indent: int | None = None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        if not stripped:
            continue
        item = ITEM.match(line)
        if item and (list_indent is None or len(item["indent"]) < list_indent):
            list_indent = len(item["indent"])
        key = KEY.match(line)
        if key is None:
            continue
        indent = len(key["indent"])
        if list_indent is not None:
            if indent > list_indent or (item and len(item["indent"]) >= list_indent):
                continue  # a key inside a list item: part of a default, not a value
            list_indent = None
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key["key"]))
        if pending is not None:
            rows.append(Row(".".join(k for _, k in stack), " ".join(pending).strip()))
            pending = None
    return rows


def lookup(values: Any, dotted: str) -> Any:
    """The default at a dotted path."""
    for part in dotted.split("."):
        values = values[part]
    return values


def type_name(value: Any) -> str:
    """The helm-docs style type of a default."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


def default_text(value: Any) -> str:
    """The default as compact JSON, escaped for a Markdown table cell."""
    text = json.dumps(value, separators=(",", ":"))
    if len(text) > 120:
        text = "see values.yaml"
    return "`" + text.replace("|", "\\|") + "`"


def table() -> str:
    """The Markdown table of all documented values."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for row in parse(CHART / "values.yaml"):
        value = lookup(values, row.key)
        description = row.description.replace("|", "\\|")
        lines.append(
            f"| `{row.key}` | {type_name(value)} | {default_text(value)} | {description} |"
        )
    return "\n".join(lines)


def render(readme: str) -> str:
    """The README with its values table regenerated."""
    try:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise SystemExit(f"README.md needs the markers {START} and {END}") from None
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the README is stale")
    args = parser.parse_args()
    readme_path = CHART / "README.md"
    current = readme_path.read_text()
    new = render(current)
    if args.check:
        if new != current:
            print(f"{readme_path} is stale: run scripts/helm-docs.py", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(new)
    print(f"wrote {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
