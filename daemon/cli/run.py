"""Running the daemon and checking its configuration from the command line.

One top-level catch: a start-up problem is logged and exits non-zero with its own code;
configuration problems exit 1 naming each key.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import replace

import orjson
import structlog
import yaml

from daemon.app import NO_REDIS_MESSAGE, App, StartupError
from daemon.cli.banner import print_first_steps, token_source
from daemon.config import (
    Config,
    ConfigError,
    Problem,
    effective_settings,
    hint,
    load_config,
)
from daemon.config.load import admin_token_gap
from daemon.log import setup_logging
from daemon.serve import EXIT_STARTUP_FAILURE, event_loop_runner, run
from daemon.store.client import settings_problem
from daemon.store.embedded import find_server_binary

EXIT_CONFIG_ERROR = 1


def _config_errors(error: ConfigError) -> str:
    lines = ["invalid configuration:"]
    lines += [f"  {p.location}: {p.error}" for p in error.problems]
    lines += [_unknown_key_warning(key) for key in error.warnings]
    return "\n".join(lines)


def _unknown_key_warning(key: str) -> str:
    return f"warning: unknown key {key} (ignored){hint(key)}"


def check_config(path: str | None, fmt: str, strict: bool = False) -> int:
    """Validate and print the effective settings, secrets redacted; exit 1 naming every
    key at fault, for anything the daemon would refuse to start with."""
    try:
        config = load_config(path, strict=strict)
        if not config.redis.configured and find_server_binary() is None:
            # The embedded default without a server binary: the daemon would exit 3.
            raise ConfigError([Problem("meta.storage.redis.host", NO_REDIS_MESSAGE)])
        problem = settings_problem(config.redis) if config.redis.configured else None
        if problem:  # the daemon would exit 3 on this too
            where = "EVENTS_CACHE_REDIS_URL" if config.redis.url else "meta.storage.redis.host"
            raise ConfigError([Problem(where, problem)])
    except ConfigError as e:
        print(_config_errors(e), file=sys.stderr)
        return EXIT_CONFIG_ERROR
    for key in config.warnings:
        print(_unknown_key_warning(key), file=sys.stderr)
    for advice in config.advice:
        print(f"warning: {advice}", file=sys.stderr)
    settings = effective_settings(config)
    if fmt == "json":
        print(orjson.dumps(settings, option=orjson.OPT_INDENT_2).decode())
    else:
        print(yaml.safe_dump(settings, sort_keys=False), end="")
    return 0


def _with_generated_token(config: Config) -> tuple[Config, str]:
    """The embedded default with no admin token: one generated for this run."""
    if admin_token_gap(config) != "generate":
        return config, ""
    token = secrets.token_urlsafe(24)
    return replace(config, server=replace(config.server, admin_token=(token,))), token


def run_daemon(config: Config) -> int:
    """Run the daemon until stopped; startup problems raise StartupError."""
    config, token = _with_generated_token(config)

    def on_started(app: App) -> None:
        if app.embedded:
            print_first_steps(app.config, token_source(app.config, token))

    result: int = event_loop_runner()(run(App(config), on_started))
    return result


def run_command(config_path: str | None) -> int:
    """`events-cache [--config PATH]`: load, set up logging, run until stopped."""
    try:
        config = load_config(config_path)
    except ConfigError as e:
        print(_config_errors(e), file=sys.stderr)
        return EXIT_CONFIG_ERROR
    setup_logging(config.sidecar.log.level, config.sidecar.log.format)
    log = structlog.get_logger("daemon")
    for key in config.warnings:
        log.warning("unknown configuration key ignored", key=key, hint=hint(key).strip("; "))
    for advice in config.advice:
        log.warning("configuration to change", advice=advice)
    try:
        return run_daemon(config)
    except StartupError as e:
        log.error("cannot start", reason=str(e))
        return EXIT_STARTUP_FAILURE
    except Exception:
        log.exception("crashed")
        return EXIT_STARTUP_FAILURE
