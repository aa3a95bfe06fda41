"""The bench's smoke mode runs every scenario briefly and prints a complete table.

No timing is asserted: this only keeps `python -m bench` from rotting (and with it the
parts of `tests/support` that only the bench uses).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "P1cpu 1 id, limited, tcp: CPU per request",
    "P1bcpu 1000 ids, cached, tcp: CPU per request",
    "P1fast 1 id, limited, tcp: CPU per request",
    "P1b 1000 ids, cached, unix",
    "P1b 1000 ids, cached, tcp",
    "P2 NDJSON",
    "P3 end-to-end",
    "P3b Redis commands per cached event",
    "P3b cached events per write round trip",
    "P4 query 1 id(s)",
    "P4 query 10 id(s)",
    "P4 query 50 id(s)",
    "P5 RSS under overload",
    "F1 summary page of 100 of 10,000 ids",
    "J1 journey of 1 of 1,000 entries",
    "E1 error signatures of 500 errors",
    "T1 tail, 1 watcher",
    "T1 tail, 10 watchers",
    "T2 10 watchers: CPU added per cached event",
    "T2 P1b unix with 10 watchers",
    "W1 wait: ingest on another daemon to the wait's answer p99",
    "W2 P1b unix with 100 waits / with none: req/s",
    "B1 /healthz, hostile 1 MiB bodies to ingest and mirror: max",
    "B2 peak RSS",
    "P6 tee proxy, 16 connections: CPU per request",
    "C1 client + sidecar, 5,000 events/s, 1,000 ids: CPU per event",
)
# Figures reported without a target ("-" in the met? column).
REPORTED = (
    "P1 1 id, limited, unix",
    "P1 1 id, limited, tcp",
    "B1 /healthz, hostile 1 MiB bodies to ingest and mirror: p99",
    "P6 tee proxy, 1 connection: added latency p50",
    "P6 tee proxy, 1 connection: added latency p99",
    "S1 wrong admin token, HTTP: spread of medians",
    "S1 wrong admin token, TokenCheck.allows: spread of medians",
    "S1 wrong admin token, hmac.compare_digest: spread of medians",
)


@pytest.mark.timeout(300)
@pytest.mark.xdist_group("heavy")  # saturates both cores: never beside the fault scenarios
def test_bench_smoke_prints_every_figure() -> None:
    missing = [tool for tool in ("wrk", "redis-benchmark") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install -y wrk redis-tools)")
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [
        line
        for line in out.stdout.splitlines()
        if line.startswith(("| P", "| F", "| J", "| E", "| T", "| W", "| B", "| S", "| C"))
    ]
    for figure in FIGURES + REPORTED:
        matching = [r for r in rows if r.startswith(f"| {figure}")]
        assert len(matching) == 1, (figure, out.stdout[-3000:], out.stderr[-2000:])
        cells = [c.strip() for c in matching[0].strip("|").split("|")]
        met = ("-",) if figure in REPORTED else ("yes", "NO")
        assert len(cells) == 6 and cells[5] in met, matching[0]
    assert len(rows) == len(FIGURES) + len(REPORTED)
    assert "figures in" in out.stdout


@pytest.mark.timeout(120)
def test_queue_memory_per_event_stays_near_the_documented_figure(tmp_path: Path) -> None:
    """docs/faults.md: about 2,000 bytes per queued event of 1.4 KB (event + ~550 B)."""
    from bench.queue_memory import measure

    result = measure("ndjson", [2000, 12000], tmp_path)
    per_event = result["bytes_per_queued_event"]
    assert isinstance(per_event, int) and 1500 <= per_event <= 3000, result
