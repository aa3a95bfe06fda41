"""`events-cache ids | events | tail | journey`: the cache from a terminal, through the query API.

A table on a terminal, JSON (or NDJSON) otherwise, so the same command serves a person
and a pipe. The admin token comes from a file or the environment (`http.TOKEN_HELP`),
never from the command line (it would stay in the shell's history).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from daemon.cli import deepjson, table
from daemon.cli.activity import HELP, activity_command, add_activity_arguments
from daemon.cli.http import TOKEN_HELP, ApiClient, ApiError, SseEvent, admin_token
from daemon.core.model import Namespace
from daemon.core.wire import (
    CACHE_PATH,
    DEFAULT_IDS_LIMIT,
    DEFAULT_LIMIT,
    IDS_PATH,
    JOURNEY_PATH,
    STREAM_PATH,
)

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "EVENTS_CACHE_API_URL"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
RECONNECT_S = 1.0  # tail: between attempts to connect again
RECONNECT_TRIES = 60  # and how many, before it gives up
_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def add_read_commands(commands: Any) -> None:
    """The `ids`, `events`, `tail` and `journey` sub-commands."""
    ids = _command(commands, "ids", "which ids the cache holds, most recently active first")
    ids.add_argument("--q", help="only ids that contain this text")
    ids.add_argument("--limit", type=int, default=DEFAULT_IDS_LIMIT, help="ids per page")
    ids.add_argument("--all", action="store_true", help="follow every page")
    events = _command(commands, "events", "the cached events of some or all ids")
    _add_filters(events)
    events.add_argument(
        "--limit", type=int, help="at most this many events per id, newest first (default 100)"
    )
    events.add_argument("--since", help="RFC 3339 time, or a duration ago: 30s, 10m, 2h, 1d")
    events.add_argument("--until", help="RFC 3339 time, or a duration ago")
    events.add_argument("--q", help="only events that contain this text")
    tail = _command(commands, "tail", "follow events as any sidecar caches them (Ctrl-C ends)")
    _add_filters(tail)
    start = tail.add_mutually_exclusive_group()
    start.add_argument(
        "--last", type=int, metavar="N", help="first the newest N cached events, oldest first"
    )
    start.add_argument(
        "--since", help="first the events cached since: RFC 3339 time, or a duration ago: 10m"
    )

    journey = _command(
        commands, "journey", "what every destination made of one event", namespaced=False
    )
    journey.add_argument("event_id", metavar="EVENT_ID", help="the event's own id")
    add_activity_arguments(_command(commands, "activity", HELP))


def _command(
    commands: Any, name: str, help_text: str, namespaced: bool = True
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, epilog=TOKEN_HELP
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="a file holding the admin token (see below)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV, DEFAULT_URL),
        help=f"the daemon's API listener (default: ${URL_ENV} or {DEFAULT_URL})",
    )
    if namespaced:
        parser.add_argument(
            "--namespace", choices=("token", "destination"), default="token", help="default: token"
        )
    parser.add_argument(
        "--output",
        choices=("table", "json", "ndjson"),
        help="default: table on a terminal, else json (ndjson for tail)",
    )
    return parser


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ids", help="comma-separated ids (default: every id)")
    parser.add_argument("--status", choices=("error",), help="only errors")


def read_command(args: argparse.Namespace) -> int:
    """Run `ids`, `events`, `tail` or `journey`; a clear message and exit 1 when the API fails."""
    out = sys.stdout
    output = args.output or ("table" if out.isatty() else "json")
    try:
        client = ApiClient(args.url, admin_token(args.token_file, os.environ))
        if args.command == "ids":
            return _ids(client, args, output, out)
        if args.command == "events":
            return _events(client, args, output, out)
        if args.command == "journey":
            return _journey(client, args.event_id, output, out)
        if args.command == "activity":
            return activity_command(client, args, output, out)
        return _tail(client, args, args.output or ("table" if out.isatty() else "ndjson"), out)
    except ApiError as e:
        print(f"events-cache {args.command}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _ids(client: ApiClient, args: argparse.Namespace, output: str, out: TextIO) -> int:
    params = {"namespace": args.namespace, "q": args.q, "limit": str(args.limit)}
    if output == "table":
        print(table.header(table.ID_COLUMNS), file=out)
    while True:
        page = client.get(IDS_PATH, params).body
        if output == "json":
            _write_json(page, out)
        for summary in page["ids"] if output != "json" else ():
            line = table.id_row(summary) if output == "table" else _json(summary)
            print(line, file=out)
        cursor = page.get("next_cursor")
        if not (args.all and cursor):
            if cursor and output == "table":
                print("(more: --all lists every page)", file=sys.stderr)
            return 0
        params["cursor"] = cursor


def _events(client: ApiClient, args: argparse.Namespace, output: str, out: TextIO) -> int:
    params = {
        "namespace": args.namespace,
        "ids": args.ids,
        "status": args.status,
        "limit": None if args.limit is None else str(args.limit),
        "since": _time(args.since, "--since"),
        "until": _time(args.until, "--until"),
        "q": args.q,
    }
    answer = client.get(CACHE_PATH, params)
    body = answer.body
    if output == "json":
        _write_json(body, out)
    elif output == "ndjson":
        for event in body["events"]:
            print(_json(event), file=out)
    else:
        _events_table(args.namespace, body, args.limit, out)
    if answer.truncated:
        print(
            "(answer cut at sidecar.api.max_response_events or max_response_bytes: narrow it)",
            file=sys.stderr,
        )
    return 0


def _events_table(namespace: str, body: dict[str, Any], limit: int | None, out: TextIO) -> None:
    events = sorted(body["events"], key=lambda e: str(e.get("timestamp", "")), reverse=True)
    print(table.header(table.EVENT_COLUMNS), file=out)
    ids: set[str] = set()
    for event in events:
        id_ = table.event_id(namespace, event)
        ids.add(id_)
        print(table.event_row(namespace, id_, event), file=out)
    per_id = min(DEFAULT_LIMIT if limit is None else limit, body["cache_capacity_per_interval"])
    summary = (
        f"{body['response_events']} shown of {body['total_events']} cached, "
        f"from {len(ids)} id{'' if len(ids) == 1 else 's'}, at most {per_id} per id (--limit)"
    )
    if body["last_minute_limited"]:
        summary += (
            f"; {body['last_minute_limited']} limited in the last minute (the cache keeps "
            f"{body['cache_capacity_per_interval']} per {body['interval_seconds']} s per id)"
        )
    print(f"({summary})", file=sys.stderr)


def _journey(client: ApiClient, event_id: str, output: str, out: TextIO) -> int:
    """One event's entries: the API key's, then each destination's outcome."""
    answer = client.get(JOURNEY_PATH, {"event_id": event_id})
    body = answer.body
    if output == "json":
        _write_json(body, out)
    elif output == "ndjson":
        for event in body["received"]:
            print(_json({"namespace": "token", "event": event}), file=out)
        for outcome in body["destinations"]:
            print(_json({"namespace": "destination", **outcome}), file=out)
    else:
        print(table.header(table.EVENT_COLUMNS), file=out)
        for event in body["received"]:
            id_ = table.event_id(Namespace.TOKEN, event)
            state = table.status(Namespace.TOKEN, event)  # a plain one was received, as is
            state = "received" if state == "success" else state
            print(table.event_row(Namespace.TOKEN, id_, event, state), file=out)
        for outcome in body["destinations"]:
            id_, event = outcome["destination_id"], outcome["event"]
            row = table.event_row(Namespace.DESTINATION, id_, event, outcome["status"])
            print(row, file=out)
        print(
            f"(event {event_id}: received {len(body['received'])} time(s) by the API key, "
            f"{len(body['destinations'])} destination outcome(s))",
            file=sys.stderr,
        )
    if answer.truncated:
        print("(answer cut at sidecar.api.max_response_bytes)", file=sys.stderr)
    return 0


def _tail(client: ApiClient, args: argparse.Namespace, output: str, out: TextIO) -> int:
    params = {
        "namespace": args.namespace,
        "ids": args.ids,
        "status": args.status,
        "last": None if args.last is None else str(args.last),
        "since": _time(args.since, "--since"),
    }
    if output == "table":
        print(table.header(table.EVENT_COLUMNS), file=out, flush=True)
    last_id, tries, first = "", 0, True
    while True:
        try:
            for sse in client.stream(STREAM_PATH, params, last_id):
                tries = 0
                last_id = _print_event(sse, output, out) or last_id
        except ApiError:
            if first or tries >= RECONNECT_TRIES:
                raise  # the first connection, or the daemon stays away
        except OSError:
            pass  # the connection broke: connect again
        first = False
        if tries == 0:
            print(
                "events-cache tail: the stream ended; reconnecting (from the last event "
                "shown, so nothing is missed)",
                file=sys.stderr,
            )
        tries += 1
        time.sleep(RECONNECT_S)


def _print_event(sse: SseEvent, output: str, out: TextIO) -> str:
    """Print one event of the stream; its id when it is an entry."""
    data = deepjson.loads(sse.data)
    if sse.event == "gap":
        missed = data.get("missed")
        count = "some" if missed is None else str(missed)
        print(f"-- {count} events missed: {data.get('reason', '')} --", file=sys.stderr)
        return ""
    if output == "table":
        line = table.event_row(data["namespace"], data["id"], data["event"])
    else:
        line = _json(data)
    print(line, file=out, flush=True)
    return sse.id


def _time(text: str | None, name: str) -> str | None:
    """RFC 3339 as given, or a duration ago (10m) as RFC 3339 in UTC."""
    if not text:
        return None
    match = _DURATION.fullmatch(text)
    if match:
        delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
        return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(f"{name} must be RFC 3339 or a duration like 10m, got {text!r}") from None
    return text


def _json(doc: Any) -> str:
    return deepjson.dumps(doc)


def _write_json(doc: Any, out: TextIO) -> None:
    print(deepjson.dumps(doc, indent=True), file=out)
