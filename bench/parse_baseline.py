"""The baseline of P2: parse the same NDJSON lines with orjson, in one process.

`python -m bench.parse_baseline BODIES SECONDS` parses the bodies (length-prefixed
frames, as the load generator's) line by line in turn for SECONDS and prints one JSON
line with events/s. Bounded by time.
"""

from __future__ import annotations

import json
import sys
import time

import orjson

from tests.support.load import read_requests


def main() -> None:
    """Parse for the given time; print events/s."""
    bodies = read_requests(sys.argv[1])
    seconds = float(sys.argv[2])
    loads = orjson.loads
    events = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for body in bodies:
            for line in body.split(b"\n"):
                loads(line)
                events += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"events": events, "seconds": elapsed, "eps": events / elapsed}))


if __name__ == "__main__":
    main()
