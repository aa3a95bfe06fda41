"""What a process costs, from /proc, and the one percentile definition we report."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (0 when /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    user, system = user_system_s(pid)
    return user + system


def user_system_s(pid: int) -> tuple[float, float]:
    """User and system (the kernel's work for it: syscalls, socket copies) CPU seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank: the smallest value with at least p %
    of the values at or below it; 0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = math.ceil(p * len(ordered) / 100)
    return float(ordered[min(len(ordered), max(rank, 1)) - 1])
