#!/usr/bin/env python3
"""Size limits of daemon/: no module over 300 lines, no function over 50.

scripts/check-size.py          # exit 1 and list what is over, else print nothing
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
ROOT = Path(__file__).resolve().parent.parent / "daemon"


def problems(root: Path = ROOT) -> list[str]:
    """Every module and function of the package over its limit."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(f"daemon/{rel}: {lines} lines (max {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        f"daemon/{rel}:{node.lineno} {node.name}: {length} lines "
                        f"(max {MAX_FUNCTION_LINES})"
                    )
    return found


if __name__ == "__main__":
    out = problems()
    for line in out:
        print(line)
    sys.exit(1 if out else 0)
