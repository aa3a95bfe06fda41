"""`events-cache activity`: per id, what every pod received, cached, cached as errors and
rate limited over the last minutes (GET /api/v1/events/activity), as sums and a
sparkline of the received events per minute: a chart in one line of a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from daemon.cli import deepjson, table
from daemon.cli.http import ApiClient
from daemon.core.wire import ACTIVITY_PATH

HELP = "per id and minute: events received, cached, errors, rate limited (every pod)"
COLUMNS = (
    ("ID", 28),
    ("RECEIVED", 8),
    ("CACHED", 8),
    ("ERRORS", 7),
    ("LIMITED", 7),
    ("RECEIVED PER MINUTE, OLDEST FIRST", 0),
)
BARS = "▁▂▃▄▅▆▇█"  # the lowest is also a minute with nothing


def add_activity_arguments(parser: argparse.ArgumentParser) -> None:
    """`--ids` and `--minutes` (`--namespace` and the rest are every read command's)."""
    parser.add_argument("--ids", help="comma-separated ids (default: the 100 most recently active)")
    parser.add_argument(
        "--minutes", type=int, default=60, help="how many minutes, ending now: 1 to 60 (60)"
    )


def sparkline(counts: Sequence[int]) -> str:
    """One bar per count, scaled to the largest; nothing counted is the lowest bar."""
    top, steps = max(counts, default=0), len(BARS) - 1
    return "".join(BARS[1 + (n * steps - 1) // top if n else 0] for n in counts)


def activity_command(client: ApiClient, args: argparse.Namespace, output: str, out: TextIO) -> int:
    """Print the activity: JSON as answered, NDJSON one id a line, or a table."""
    params = {"namespace": args.namespace, "ids": args.ids, "minutes": str(args.minutes)}
    answer = client.get(ACTIVITY_PATH, params)
    body = answer.body
    if output == "json":
        print(deepjson.dumps(body, indent=True), file=out)
    elif output == "ndjson":
        for row in body["ids"]:
            print(deepjson.dumps({"minutes": body["minutes"], **row}), file=out)
    else:
        print(table.header(COLUMNS), file=out)
        for row in body["ids"]:
            kinds = ("received", "cached", "errors", "rate_limited")
            cells = [row["id"], *(sum(row[kind]) for kind in kinds), sparkline(row["received"])]
            print(table.row(cells, COLUMNS), file=out)
        minutes = body["minutes"]
        print(f"({len(body['ids'])} id(s), {minutes[0]} to {minutes[-1]})", file=sys.stderr)
    if answer.truncated:
        print("(answer cut at sidecar.api.max_response_bytes)", file=sys.stderr)
    return 0
