"""Sampling profiles of the daemon during a scenario (py-spy), and a text summary.

`python -m bench --only P3 --profile DIR` records one raw (collapsed-stack) profile per
daemon into DIR; `python -m bench.profile DIR/daemon-P3.txt` prints the functions with
the most samples, by own time and by inclusive time.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


class Recorder:
    """py-spy attached to a running process until `stop()`."""

    def __init__(self, pid: int, output: Path, rate: int = 250) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.output = output
        self.process = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "-f",
                "raw",
                "-o",
                str(output),
                "-r",
                str(rate),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def summarize(path: Path, top: int = 25) -> str:
    """Own and inclusive sample counts per function of a raw py-spy profile."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{path.name}: {total} samples", "own time:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive time:")
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    module = where.rstrip(")").rpartition(":")[0]
    marker = "site-packages/"
    if marker in module:
        module = module.split(marker, 1)[1]
    elif "/daemon/" in module:
        module = "daemon/" + module.rsplit("/daemon/", 1)[1]
    return f"{name} ({module})"


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summarize(Path(arg)))
