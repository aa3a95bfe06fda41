"""`events-cache expect`: wait until matching events are cached (GET /api/v1/events/wait).

For tests and CI: exit 0 and print what matched; exit 1 on timeout, printing what matched
so far and a summary of what the cache holds for those ids (how many events, how many
rate limited in the last minute: an event refused by its id's rate limit is never
cached, and nothing else would tell); exit 2 on any other error (bad arguments, the
daemon not reachable, the token refused, Redis down: 503).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, TextIO

from daemon.cli import table
from daemon.cli.http import ApiClient, ApiError, admin_token
from daemon.cli.read import _add_filters as add_filters
from daemon.cli.read import _command as command
from daemon.cli.read import _json as as_json
from daemon.cli.read import _time as moment
from daemon.cli.read import _write_json as write_json
from daemon.core.wire import CACHE_PATH, WAIT_PATH

EXIT_MATCHED, EXIT_TIMED_OUT, EXIT_ERROR = 0, 1, 2
MAX_TIMEOUT_S = 120.0  # the daemon's cap
SOCKET_SLACK_S = 30.0  # the answer may take this much longer than the wait
_SECONDS = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def add_expect_command(commands: Any) -> None:
    """The `expect` sub-command."""
    expect = command(
        commands,
        "expect",
        "wait until matching events are cached: exit 0 and print them, 1 on timeout, 2 on "
        "any other error",
    )
    add_filters(expect)
    expect.add_argument("--event-id", help="only the event with this id (journey's rules)")
    expect.add_argument("--q", help="only events that contain this text")
    expect.add_argument("--capture", help="only events carrying this capture tag")
    expect.add_argument(
        "--since",
        help="count events cached since (RFC 3339, or a duration ago: 10m) too; by default "
        "only those cached after the wait began",
    )
    expect.add_argument("--count", type=int, default=1, help="how many must match (default 1)")
    expect.add_argument("--timeout", default="30s", help="30s, 2m, 500ms (at most 120s)")


def _seconds(text: str) -> float:
    match = _SECONDS.fullmatch(text.strip())
    if not match:
        raise ApiError(f"--timeout must be a duration like 30s, 2m or 500ms, got {text!r}")
    seconds = float(match[1]) * _UNIT_S[match[2]]
    if seconds > MAX_TIMEOUT_S:
        raise ApiError(f"--timeout must be at most {MAX_TIMEOUT_S:.0f}s, got {text!r}")
    return seconds


def expect_command(args: argparse.Namespace) -> int:
    """Run `expect`; its exit status says whether the events came."""
    out = sys.stdout
    output = args.output or ("table" if out.isatty() else "json")
    try:
        client = ApiClient(args.url, admin_token(args.token_file, os.environ))
        timeout = _seconds(args.timeout)
        params = {
            "namespace": args.namespace,
            "ids": args.ids,
            "status": args.status,
            "event_id": args.event_id,
            "q": args.q,
            "capture": args.capture,
            "since": moment(args.since, "--since"),
            "count": str(args.count),
            "timeout": f"{timeout:g}",
        }
        answer = client.get(WAIT_PATH, params, timeout + SOCKET_SLACK_S)
        _print(answer.body, output, out)
        if answer.body["matched"]:
            return EXIT_MATCHED
        print(f"events-cache expect: {_summary(client, args, answer.body)}", file=sys.stderr)
        return EXIT_TIMED_OUT
    except ApiError as e:
        print(f"events-cache expect: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _print(body: dict[str, Any], output: str, out: TextIO) -> None:
    if output == "json":
        write_json(body, out)
    elif output == "ndjson":
        for item in body["events"]:
            print(as_json(item), file=out)
    else:
        print(table.header(table.EVENT_COLUMNS), file=out)
        for item in body["events"]:
            print(table.event_row(item["namespace"], item["id"], item["event"]), file=out)


def _summary(client: ApiClient, args: argparse.Namespace, body: dict[str, Any]) -> str:
    """What timed out, and what the cache holds for those ids (one query, no events)."""
    which = f"ids {args.ids}" if args.ids else "every id"
    said = (
        f"timed out after {args.timeout}: {len(body['events'])} of {args.count} matched "
        f"(namespace {args.namespace}, {which})"
    )
    params = {"namespace": args.namespace, "ids": args.ids, "status": args.status, "limit": "0"}
    try:
        cached = client.get(CACHE_PATH, params).body
    except ApiError as e:
        return f"{said}; what the cache holds is unknown: {e}"
    said += f"; the cache holds {cached['total_events']} event(s) of {which}"
    limited = cached["last_minute_limited"]
    if limited:
        said += (
            f", and {limited} were rate limited in the last minute (not cached: the cache "
            f"keeps {cached['cache_capacity_per_interval']} per {cached['interval_seconds']} s "
            "per id)"
        )
    else:
        said += ", none rate limited in the last minute"
    return said
