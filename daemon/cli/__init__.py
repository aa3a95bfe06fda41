"""Command line of `events-cache` (and `python -m daemon`).

- `events-cache [--config PATH]` runs the daemon; `check-config` validates its file;
- `ids`, `events`, `tail`, `journey`, `activity`, `errors` read the cache of a running
  daemon through its query API;
- `expect` waits until matching events are cached (exit 0), for tests and CI;
- `export` writes every matching event as NDJSON, `replay` sends the originals again;
- `demo` sends realistic synthetic events to a running sidecar.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from daemon import __version__
from daemon.cli.demo import add_demo_command, demo_command
from daemon.cli.errors import add_errors_command, errors_command
from daemon.cli.expect import add_expect_command, expect_command
from daemon.cli.export import add_export_command, export_command
from daemon.cli.read import add_read_commands, read_command
from daemon.cli.replay import add_replay_command, replay_command
from daemon.cli.run import check_config, run_command
from daemon.config import CONFIG_ENV


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="events-cache",
        description="Keeps the last events per API key and destination in Redis "
        "(Jitsu Classic's events cache, as a sidecar), and reads them back.",
    )
    parser.add_argument("--version", action="version", version=f"events-cache {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help=f"YAML configuration file (default: ${CONFIG_ENV})"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check-config", help="validate the configuration and print the effective settings"
    )
    check.add_argument(
        "--config",
        metavar="PATH",
        dest="check_config_path",
        help=f"YAML configuration file (default: ${CONFIG_ENV})",
    )
    check.add_argument("--format", choices=("yaml", "json"), default="yaml")
    check.add_argument(
        "--strict",
        action="store_true",
        help="unknown keys are errors (with the nearest known key as a hint)",
    )
    add_read_commands(commands)
    add_expect_command(commands)
    add_errors_command(commands)
    add_demo_command(commands)
    add_export_command(commands)
    add_replay_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `events-cache` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return check_config(args.check_config_path or args.config, args.format, args.strict)
        if args.command == "demo":
            return demo_command(args)
        if args.command == "expect":
            return expect_command(args)
        if args.command == "export":
            return export_command(args)
        if args.command == "replay":
            return replay_command(args)
        if args.command == "errors":
            return errors_command(args)
        if args.command:
            return read_command(args)
        return run_command(args.config)
    except BrokenPipeError:  # `events-cache events | head`: the reader has all it wants
        sys.stderr.close()
        return 0
