"""C1's ingest: the Python client fed raw bodies it is told are parsed, at a paced rate.

`python -m bench.cost_client --socket PATH [--rate 5000] [--keys 1000] [--zipf 1.1]
[--warmup 60] [--window 10] [--windows 1]` generates its events first (fixed seed:
each key's ~1.45 KB Jitsu events, keys drawn Zipf), prints `ready`, then calls
`Client.incoming(key, body, parsed=True)` at `--rate` events/s, the due events every
`--tick` seconds (an ingest handing over what its requests brought). When the warm-up
is over, and at the end of each window after it, it prints `mark` the moment it is
reached (the bench reads both processes' CPU then). After the last it closes the
client and prints one JSON line: per window the events offered and its seconds, the
events behind the schedule at the end, the client's counters. It runs in a process of
its own so that its CPU is its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path

import orjson

from bench import events as ev

# The worktree's client, not the one the venv happens to import.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python" / "src"))

from events_cache_client import Client

VARIANTS = 4  # events generated per key, taken in turn


def zipf_keys(keys: int, exponent: float, count: int, seed: int) -> list[int]:
    """`count` key indexes drawn with P(k) proportional to 1 / (k + 1) ** exponent."""
    weights = list(itertools.accumulate(1 / (k + 1) ** exponent for k in range(keys)))
    return random.Random(seed).choices(range(keys), cum_weights=weights, k=count)


def bodies(ids: list[str], seed: int) -> list[list[bytes]]:
    """VARIANTS raw bodies per id, each an event of that API key."""
    rng = random.Random(seed)
    return [[orjson.dumps(ev.make_event(rng, i)) for _ in range(VARIANTS)] for i in ids]


def main() -> None:
    """Generate, pace, report."""
    p = argparse.ArgumentParser(prog="python -m bench.cost_client")
    p.add_argument("--socket", required=True)
    p.add_argument("--rate", type=float, default=5000.0)
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--zipf", type=float, default=1.1)
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--windows", type=int, default=1)
    p.add_argument("--tick", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=ev.SEED)
    a = p.parse_args()
    ids = ev.token_ids(a.keys)
    per_key = bodies(ids, a.seed)
    total = int(a.rate * (a.warmup + a.window * a.windows)) + 1
    order = zipf_keys(a.keys, a.zipf, total, a.seed)
    calls = [(ids[k], per_key[k][n % VARIANTS]) for n, k in enumerate(order)]
    del order, per_key
    cache = Client(socket=a.socket)
    print("ready", flush=True)
    incoming = cache.incoming
    start = time.perf_counter()
    marks = [start + a.warmup + n * a.window for n in range(a.windows + 1)]
    at: list[tuple[int, float]] = []  # (events offered, time) at each mark
    sent = 0
    tick = 0
    while len(at) < len(marks):
        now = time.perf_counter()
        if now >= marks[len(at)]:
            at.append((sent, now))
            print("mark", flush=True)
        due = min(int((now - start) * a.rate), total)
        for token, body in calls[sent:due]:
            incoming(token, body, parsed=True)
        sent = max(sent, due)
        tick += 1
        pause = start + tick * a.tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    behind = int((at[-1][1] - start) * a.rate) - at[-1][0]
    cache.close(timeout=10)
    windows = [{"offered": b[0] - e[0], "seconds": b[1] - e[1]} for e, b in itertools.pairwise(at)]
    result = {"windows": windows, "behind": behind, "stats": cache.stats().as_dict()}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
