"""`events-cache replay --to URL [filters] [--rate N] [--dry-run]`: send cached originals again.

What is sent is always what the collector received: the originals of the API keys'
entries (the token namespace), one POST each, with `Idempotency-Key: <uid>` and the key
where `--to` says. Replaying a destination's entries would push their events into every
other destination again, so `--namespace destination` (with `--status error`: a
destination's failures) selects entries whose event ids lead, through the journey, to
the token-side originals; an original failed by several destinations is sent once.
Entries with no original (a malformed body) are skipped and counted; a destination
entry with no event id, or whose original is no longer cached, is reported as not
replayable. Exit 0 when every answer was 2xx, 1 when one was not (or none came), 2 on a
usage error or when the query API fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from daemon.cli import deepjson
from daemon.cli.export import events, filters_of, new_command
from daemon.cli.http import ApiClient, ApiError, admin_token
from daemon.cli.resend import Sender, Summary, Target, UsageError, body_of
from daemon.config.sidecar import JourneySettings
from daemon.core.eventid import EventIdFinder, EventIdRuleError
from daemon.core.model import Namespace
from daemon.core.wire import JOURNEY_PATH

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_RATE = 10.0


@dataclass(frozen=True)
class Original:
    """One token-side entry to send: its API key, uid and original."""

    key: str
    uid: str
    original: Any


def add_replay_command(commands: Any) -> None:
    """The `replay` sub-command."""
    parser = new_command(
        commands,
        "replay",
        "send the cached originals of the matching events again, one POST each",
    )
    parser.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="where to send, e.g. https://collector/api/v1/s2s/event?token={token} "
        "({token}: the event's API key)",
    )
    parser.add_argument(
        "--token-header", metavar="NAME", help="put the API key in this header (X-Auth-Token)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"requests per second (default {DEFAULT_RATE:g}; 0: no limit)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the requests (NDJSON) instead of sending"
    )
    parser.add_argument(
        "--event-id-from",
        action="append",
        metavar="RULE",
        help="with --namespace destination: where an entry's event id is, as the daemon's "
        "sidecar.journey.event_id_from (repeat; default: that key's default)",
    )
    parser.add_argument("--output", choices=("text", "json"), default="text", help="the summary")


def replay_command(args: argparse.Namespace) -> int:
    """Run `replay`; the exit code says whether every answer was 2xx."""
    try:
        if args.rate < 0:
            raise UsageError(f"--rate must be >= 0, got {args.rate:g}")
        target = Target.parse(args.to, args.token_header)
        rules = args.event_id_from or JourneySettings().event_id_from
        finder = EventIdFinder(rules)
        client = ApiClient(args.url, admin_token(args.token_file, os.environ))
    except (UsageError, EventIdRuleError, ApiError) as e:
        print(f"events-cache replay: {e}", file=sys.stderr)
        return EXIT_USAGE
    summary = Summary()
    try:
        _send(originals(client, args, finder, summary), target, args, summary, sys.stdout)
    except ApiError as e:  # the query API failed midway: say what was sent until then
        print(f"events-cache replay: {e}", file=sys.stderr)
        _report(summary, args)
        return EXIT_USAGE
    _report(summary, args)
    return EXIT_FAILED if summary.failed else EXIT_OK


def originals(
    client: ApiClient, args: argparse.Namespace, finder: EventIdFinder, summary: Summary
) -> Iterator[Original]:
    """The token-side originals the filters select, each once."""
    filters = filters_of(args)
    if filters.namespace == Namespace.TOKEN:
        for entry in events(client, filters):
            found = _original(entry, summary)
            if found is not None:
                yield found
        return
    seen: set[str] = set()
    for entry in events(client, filters):
        uid = str(entry.get("uid", ""))
        success = entry.get("success")
        event_id = finder.find(entry.get("original"), deepjson.dumps(success) if success else None)
        if event_id is None:
            summary.cannot(uid, "no event id in the entry (sidecar.journey.event_id_from)")
        elif event_id in seen:
            summary.already_sent += 1
        else:
            seen.add(event_id)
            found = _through_journey(client, event_id, uid, summary)
            if found is not None:
                yield found


def _through_journey(
    client: ApiClient, event_id: str, uid: str, summary: Summary
) -> Original | None:
    """The first token-side entry of an event (the one the collector received first)."""
    try:
        received = client.get(JOURNEY_PATH, {"event_id": event_id}).body["received"]
    except ApiError as e:
        if e.status != 404:
            raise
        received = []
    if not received:
        summary.cannot(uid, f"event {event_id}: its original is no longer cached")
        return None
    first = min(received, key=lambda e: (str(e.get("timestamp", "")), str(e.get("uid", ""))))
    return _original(first, summary)


def _original(entry: dict[str, Any], summary: Summary) -> Original | None:
    """A token entry as something to send, or None (counted) when it has no original."""
    original, key, uid = entry.get("original"), entry.get("token_id"), entry.get("uid")
    if "malformed" in entry or not isinstance(original, dict | list) or not key or not uid:
        summary.malformed += 1
        return None
    return Original(str(key), str(uid), original)


def _send(
    chosen: Iterator[Original],
    target: Target,
    args: argparse.Namespace,
    summary: Summary,
    out: TextIO,
) -> None:
    sender = Sender(args.rate)
    try:
        for one in chosen:
            url, headers = target.request(one.key, one.uid)
            if args.dry_run:
                request = {"method": "POST", "url": url, "headers": headers, "body": one.original}
                out.write(deepjson.dumps(request) + "\n")
                summary.statuses["dry run"] += 1
                continue
            status, text = sender.post(url, headers, body_of(one.original))
            summary.answer(one.uid, one.key, status, text)
    finally:
        sender.close()
        out.flush()


def _report(summary: Summary, args: argparse.Namespace) -> None:
    """The summary: on stdout, or on stderr after a dry run's requests."""
    out = sys.stderr if args.dry_run else sys.stdout
    if args.output == "json":
        print(deepjson.dumps(summary.as_json()), file=out)
    else:
        print("\n".join(summary.lines(args.dry_run)), file=out)
