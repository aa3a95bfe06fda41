"""`events-cache demo`: realistic synthetic traffic into a running sidecar, for trials.

It sends the way an ingest container does, through the Python ingest client
(`events-cache-client`, dependency-free, in clients/python and in the image; the
`events-cache-sidecar[demo]` extra declares it): incoming bodies for API keys, then what
each destination made of them (see demo_events). It runs until interrupted or
`--duration`, prints a line from the client's counters every few seconds, and a summary
at the end. A sidecar that is not there, or a client that is not installed, is a
message, not a traceback.
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from daemon.cli.demo_data import BUSY_KEY
from daemon.cli.demo_events import DEFAULT_RATE, Incoming, Item, Tally, Traffic

if TYPE_CHECKING:
    from events_cache_client import Client, Settings, Stats

DEFAULT_IDS = 4
DEFAULT_LIMIT = 100  # events per id a minute: the cache's default size and time_window_sec
DEFAULT_ERROR_RATIO = 0.1
REPORT_EVERY_S = 5.0
TICK_S = 0.05
CLOSE_TIMEOUT_S = 5.0
EXIT_FAILED = 1
MISSING_CLIENT = (
    "events-cache demo: the Python ingest client is not installed; it sends the events the "
    "way your ingest would. It comes with the demo extra: from a checkout, "
    "pip install '.[demo]' ./clients/python (the extra names events-cache-client, which "
    "clients/python provides); the image has it"
)


def _number(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < low or (high is not None and value > high):
            upper = f" and at most {high:g}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"must be at least {low:g}{upper}")
        return value

    return parse


def add_demo_command(commands: Any) -> None:
    """The `demo` sub-command."""
    demo: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="send realistic synthetic events to a running sidecar (trials, demos)",
        description=f"One API key, {BUSY_KEY} (a load test's, with no destination), takes "
        "most of --rate and soon reaches the cache's rate limit (by default 100 events per id "
        "a minute, per pod): its `rate limited` count grows. The other keys and the "
        "destinations stay under it.",
    )
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--socket",
        metavar="PATH",
        help="the sidecar's ingest socket (default: $EVENTS_CACHE_SOCKET, else "
        "$EVENTS_CACHE_URL, else /var/run/events-cache/ingest.sock)",
    )
    where.add_argument("--url", help="its loopback HTTP listener, e.g. http://127.0.0.1:8001")
    add = demo.add_argument
    add(
        "--rate",
        type=_number(float, 0.1),
        default=DEFAULT_RATE,
        help=f"incoming events/s (default {DEFAULT_RATE:g}); each other key sends under 1 a "
        f"second, {BUSY_KEY} the rest",
    )
    add(
        "--ids",
        type=_number(int, 1),
        default=DEFAULT_IDS,
        help=f"API keys and destinations (default {DEFAULT_IDS}); from 2, the first key is "
        f"{BUSY_KEY}",
    )
    add(
        "--error-ratio",
        type=_number(float, 0, 1),
        default=DEFAULT_ERROR_RATIO,
        help="share of destination results that fail; half as many bad bodies (default 0.1)",
    )
    add("--duration", type=_number(float, 0), default=0.0, help="seconds (default: until Ctrl-C)")
    add("--wait", type=_number(float, 0), default=0.0, help="seconds to wait for the sidecar")
    add("--seed", type=int, help="random seed, for the same traffic every run")
    add("--report-every", type=_number(float, 0.1), default=REPORT_EVERY_S, help="seconds")


def reachable(settings: Settings) -> str:
    """Why the sidecar cannot be reached ("" when it can): a plain connect, no request."""
    try:
        if settings.socket:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2.0)
                s.connect(settings.socket)
        else:
            parts = urllib.parse.urlsplit(settings.url)
            with socket.create_connection((parts.hostname, parts.port or 80), timeout=2.0):
                pass
    except OSError as e:
        return e.strerror or type(e).__name__
    return ""


def _wait_for(settings: Settings, wait_s: float, stop: threading.Event) -> str:
    deadline = time.monotonic() + wait_s
    while (problem := reachable(settings)) and time.monotonic() < deadline:
        if stop.wait(0.5):
            break
    return problem


def hand(client: Client, item: Item) -> None:
    """One generated item to the client, as an ingest container would call it."""
    if isinstance(item, Incoming):
        client.incoming(item.token_id, item.body, skip=item.skip, error=item.error)
    else:
        client.processed(
            item.destination_id,
            item.original,
            success=item.success,
            error=item.error,
            skip=item.skip,
            token_id=item.token_id,
        )


def busy_line(traffic: Traffic) -> str:
    """Which key the cache's rate limit will show on, so nobody takes it for a fault."""
    busy, per_minute = traffic.keys[0].id, traffic.rates[0] * 60
    if per_minute <= DEFAULT_LIMIT:
        return "events-cache demo: every key stays under the cache's default rate limit"
    others = "; the other keys stay under it" if len(traffic.keys) > 1 else ""
    return (
        f"events-cache demo: {busy} gets about {per_minute:.0f} events a minute, over the "
        f"cache's default rate limit ({DEFAULT_LIMIT} per id): its `rate limited` count "
        f"grows{others}"
    )


def progress(elapsed: float, tally: Tally, stats: Stats) -> str:
    """The periodic line: what was generated, and what the sidecar made of it."""
    rate = tally.events / elapsed if elapsed > 0 else 0.0
    line = (
        f"{elapsed:7.1f}s  events {tally.events} ({rate:.1f}/s), destination results "
        f"{tally.results}  | sidecar: sent {stats.sent}, accepted {stats.accepted}, rate limited "
        f"{stats.rate_limited}, invalid {stats.invalid}, dropped {stats.dropped}"
    )
    if stats.dropped_unavailable and stats.last_errors:
        line += f"  ({stats.last_errors[-1]})"
    return line


def summary(elapsed: float, traffic: Traffic, stats: Stats) -> str:
    """The closing lines."""
    t = traffic.tally
    return (
        f"events-cache demo: {elapsed:.1f} s, {t.events} events in {t.requests} requests "
        f"for {len(traffic.keys)} API keys ({t.malformed} not JSON, {t.rejected} rejected "
        f"by the ingest, {t.skipped} skipped); {t.results} destination results "
        f"({t.result_errors} errors, {t.result_skips} skipped)\n"
        f"sidecar: {stats.sent} entries sent, accepted {stats.accepted}, rate limited "
        f"{stats.rate_limited}, invalid {stats.invalid}, dropped {stats.dropped}\n"
        "read them back: events-cache ids / events / tail (with EVENTS_CACHE_ADMIN_TOKEN), "
        "or the viewer at /ui/ of the sidecar's API"
    )


def send(
    client: Client,
    traffic: Traffic,
    args: argparse.Namespace,
    stop: threading.Event,
    out: TextIO,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Hand events over at `args.rate` until stopped or `args.duration`; the seconds run."""
    start = clock()
    next_report = start + args.report_every
    burst = max(int(args.rate), 1)  # after a pause, catch up by one second at most
    while not stop.is_set():
        now = clock()
        elapsed = now - start
        if args.duration and elapsed >= args.duration:
            return elapsed
        target = int(args.rate * elapsed) + 1
        behind = target - traffic.tally.events
        if behind > burst:  # the clock jumped (a suspended laptop): no flood afterwards
            start += (behind - burst) / args.rate
            target -= behind - burst
        while traffic.tally.events < target:
            for item in traffic.request(time.time()):
                hand(client, item)
        if now >= next_report:
            print(progress(elapsed, traffic.tally, client.stats()), file=out, flush=True)
            next_report += args.report_every
        stop.wait(TICK_S)
    return clock() - start


def demo_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run `events-cache demo`; exit 1 with a message when the sidecar is not there."""
    try:
        from events_cache_client import Client
    except ImportError:
        print(MISSING_CLIENT, file=sys.stderr)
        return EXIT_FAILED
    try:
        client = Client(socket=args.socket, url=args.url)
    except ValueError as e:
        print(f"events-cache demo: {e}", file=sys.stderr)
        return EXIT_FAILED
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the loop ends, the client flushes, the summary is printed

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _demo(client, args, stop, out)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        client.close(timeout=CLOSE_TIMEOUT_S)


def _demo(client: Client, args: argparse.Namespace, stop: threading.Event, out: TextIO) -> int:
    target = client.settings.target
    problem = reachable(client.settings)
    if problem and args.wait:
        print(
            f"events-cache demo: waiting up to {args.wait:g} s for a sidecar at {target}", file=out
        )
        problem = _wait_for(client.settings, args.wait, stop)
    if problem:
        where = "--socket PATH or --url URL" + (
            "" if args.socket or args.url else " (or EVENTS_CACHE_SOCKET / EVENTS_CACHE_URL)"
        )
        print(
            f"events-cache demo: no sidecar at {target}: {problem}.\n"
            "Start one (`make run`, or `events-cache --config FILE`), or point the demo at "
            f"its ingest listener with {where}.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    traffic = Traffic(args.ids, args.error_ratio, random.Random(args.seed), args.rate)
    until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
    print(
        f"events-cache demo: about {args.rate:g} events/s for {len(traffic.keys)} API keys and "
        f"{args.ids} destinations to {target}, {until}\n{busy_line(traffic)}",
        file=out,
        flush=True,
    )
    elapsed = send(client, traffic, args, stop, out)
    client.flush(timeout=CLOSE_TIMEOUT_S)
    print(summary(elapsed, traffic, client.stats()), file=out, flush=True)
    return 0 if client.stats().accepted or not traffic.tally.events else EXIT_FAILED
