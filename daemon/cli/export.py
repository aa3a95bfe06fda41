"""`events-cache export [filters]`: every matching cached event as NDJSON, on stdout.

One answer of the query API holds at most `limit` (capped at the lists' `size`) events
per id and `max_response_events` / `max_response_bytes` in all, so the export asks id by
id and pages each id's list with `before=` (the last uid received) until an answer is
neither cut (`X-Events-Cache-Truncated`) nor full. Paging one id at a time matters:
`before` pages the query's other ids by that event's time, which would repeat some.
Each page is written as it arrives, so memory stays at one answer whatever the cache
holds. An event answered cut (longer than `max_response_bytes` alone) is asked for again
whole with `uid=`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from daemon.cli import deepjson
from daemon.cli.http import TOKEN_HELP, ApiClient, ApiError, admin_token
from daemon.cli.read import DEFAULT_URL, URL_ENV, _time
from daemon.core.wire import CACHE_PATH, IDS_PATH, MAX_IDS_LIMIT

# Events per id per answer: the daemon caps it at the lists' `size`, so asking for more
# means "as many as an answer may hold".
PAGE_LIMIT = 1_000_000


@dataclass(frozen=True)
class Filters:
    """What selects the events: the query API's own parameters (times as RFC 3339)."""

    namespace: str = "token"
    ids: tuple[str, ...] = ()  # () : every id the cache holds in the namespace
    status: str | None = None
    since: str | None = None
    until: str | None = None
    q: str | None = None

    def params(self) -> dict[str, str | None]:
        """The query parameters besides the id and the page."""
        return {
            "namespace": self.namespace,
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "q": self.q,
        }


def new_command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A sub-command on the query API: --url, --token-file, --namespace and the filters."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, epilog=TOKEN_HELP
    )
    parser.add_argument("--token-file", metavar="PATH", help="a file holding the admin token")
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV, DEFAULT_URL),
        help=f"the daemon's API listener (default: ${URL_ENV} or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--namespace", choices=("token", "destination"), default="token", help="default: token"
    )
    add_filters(parser)
    return parser


def add_export_command(commands: Any) -> None:
    """`export`: NDJSON of every matching event."""
    new_command(
        commands,
        "export",
        "every matching cached event as NDJSON, paging through the whole cache",
    )


def filters_of(args: argparse.Namespace) -> Filters:
    """The filters given on the command line (durations made RFC 3339)."""
    return Filters(
        namespace=args.namespace,
        ids=split_ids(args.ids),
        status=args.status,
        since=_time(args.since, "--since"),
        until=_time(args.until, "--until"),
        q=args.q,
    )


def export_command(args: argparse.Namespace) -> int:
    """Run `export`: 0, or 1 with a message when the API fails (part may be written)."""
    try:
        client = ApiClient(args.url, admin_token(args.token_file, os.environ))
        count = export(client, filters_of(args), sys.stdout)
    except ApiError as e:
        print(f"events-cache export: {e}", file=sys.stderr)
        return 1
    print(f"(exported {count} event{'' if count == 1 else 's'})", file=sys.stderr)
    return 0


def add_filters(parser: argparse.ArgumentParser) -> None:
    """The filters `export` and `replay` share (besides --namespace)."""
    parser.add_argument("--ids", help="comma-separated ids (default: every id)")
    parser.add_argument("--status", choices=("error",), help="only errors")
    parser.add_argument("--since", help="RFC 3339 time, or a duration ago: 30s, 10m, 2h, 1d")
    parser.add_argument("--until", help="RFC 3339 time, or a duration ago")
    parser.add_argument("--q", help="only events that contain this text")


def every_id(client: ApiClient, namespace: str) -> Iterator[str]:
    """Every id the cache holds in the namespace, page by page of the summary."""
    params = {"namespace": namespace, "limit": str(MAX_IDS_LIMIT)}
    while True:
        page = client.get(IDS_PATH, params).body
        for summary in page["ids"]:
            yield str(summary["id"])
        cursor = page.get("next_cursor")
        if not cursor:
            return
        params["cursor"] = str(cursor)


def events(client: ApiClient, filters: Filters) -> Iterator[dict[str, Any]]:
    """Every matching event, id after id, each id's newest first."""
    ids = filters.ids or every_id(client, filters.namespace)
    for id_ in ids:
        yield from id_events(client, filters, id_)


def id_events(client: ApiClient, filters: Filters, id_: str) -> Iterator[dict[str, Any]]:
    """Every matching event of one id, paged with `before=` (within one id the API
    neither skips nor repeats an event)."""
    params = {**filters.params(), "id": id_, "limit": str(PAGE_LIMIT)}
    while True:
        answer = client.get(CACHE_PATH, params)
        page: list[dict[str, Any]] = answer.body["events"]
        per_id = answer.body["cache_capacity_per_interval"]
        for event in page:
            yield _whole(client, params, event) if "cut" in event else event
        # An answer is the whole rest of the list unless it was cut, or holds as many
        # events as one answer may hold of an id (the list may be longer than `size`
        # until the next trim).
        if not page or not (answer.truncated or len(page) >= per_id):
            return
        params["before"] = str(page[-1]["uid"])


def _whole(client: ApiClient, params: dict[str, str | None], event: dict[str, Any]) -> Any:
    """An event the answer held cut, asked for whole by its uid."""
    one = {**params, "uid": str(event["uid"]), "before": None}
    found = client.get(CACHE_PATH, one).body["events"]
    if not found:  # trimmed away since: what was answered is all there is
        return event
    return found[0]


def split_ids(text: str | None) -> tuple[str, ...]:
    """--ids a,b as a tuple; () for every id."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def export(client: ApiClient, filters: Filters, out: TextIO) -> int:
    """Write every matching event as one JSON line; how many."""
    count = 0
    for event in events(client, filters):
        out.write(deepjson.dumps(event) + "\n")
        count += 1
    out.flush()
    return count
