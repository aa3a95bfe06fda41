"""`events-cache errors`: why things fail, grouped (`GET /api/v1/errors`), most frequent
signature first: a table on a terminal, JSON (or one signature a line as NDJSON)
otherwise, like `events-cache ids`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from daemon.cli import table
from daemon.cli.http import ApiClient, ApiError, admin_token
from daemon.cli.read import EXIT_FAILED, _command, _json, _time, _write_json
from daemon.core.wire import ERRORS_PATH

COLUMNS = (("COUNT", 7), ("LAST SEEN", 27), ("IDS", 30), ("SIGNATURE", 0))
SHOWN_IDS = 3  # ids named in a table row, the most frequent


def add_errors_command(commands: Any) -> None:
    """The `errors` sub-command."""
    about = "error signatures, most frequent first (errors that differ only in values, grouped)"
    errors = _command(commands, "errors", about, namespaced=False)
    errors.add_argument(
        "--namespace",
        choices=("token", "destination"),
        default="destination",
        help="default: destination",
    )
    errors.add_argument("--ids", help="comma-separated ids (default: every id)")
    errors.add_argument(
        "--since", help="RFC 3339 time, or a duration ago: 10m, 1h (default: the last hour)"
    )


def _ids_cell(ids: list[dict[str, Any]]) -> str:
    shown = ", ".join(f"{i['id']} ({i['count']})" for i in ids[:SHOWN_IDS])
    return shown + (f" +{len(ids) - SHOWN_IDS}" if len(ids) > SHOWN_IDS else "")


def errors_command(args: argparse.Namespace) -> int:
    """Run `errors`; a clear message and exit 1 when the API fails."""
    out: TextIO = sys.stdout
    output = args.output or ("table" if out.isatty() else "json")
    try:
        client = ApiClient(args.url, admin_token(args.token_file, os.environ))
        params = {
            "namespace": args.namespace,
            "ids": args.ids,
            "since": _time(args.since, "--since"),
        }
        answer = client.get(ERRORS_PATH, params)
    except ApiError as e:
        print(f"events-cache errors: {e}", file=sys.stderr)
        return EXIT_FAILED
    signatures = answer.body["signatures"]
    if output == "json":
        _write_json(answer.body, out)
    elif output == "ndjson":
        for sig in signatures:
            print(_json(sig), file=out)
    else:
        print(table.header(COLUMNS), file=out)
        for sig in signatures:
            cells = (sig["count"], sig["last_seen"], _ids_cell(sig["ids"]), sig["signature"])
            print(table.row(cells, COLUMNS), file=out)
        if not signatures:
            print(f"(no errors in the {args.namespace} namespace)", file=sys.stderr)
    if answer.truncated:
        print("(answer cut: the most frequent signatures and ids only)", file=sys.stderr)
    return 0
