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
from daemon.config import (
    Config,
    ConfigError,
    Problem,
    effective_settings,
    hint,
    load_config,
)
from daemon.log import setup_logging
from daemon.serve import EXIT_STARTUP_FAILURE, event_loop_runner, run
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
    except ConfigError as e:
        print(_config_errors(e), file=sys.stderr)
        return EXIT_CONFIG_ERROR
    for key in config.warnings:
        print(_unknown_key_warning(key), file=sys.stderr)
    settings = effective_settings(config)
    if fmt == "json":
        print(orjson.dumps(settings, option=orjson.OPT_INDENT_2).decode())
    else:
        print(yaml.safe_dump(settings, sort_keys=False), end="")
    return 0


def _with_generated_token(config: Config) -> tuple[Config, str]:
    """The embedded default with no admin token: one generated for this run."""
    if config.admin_tokens or config.redis.configured:
        return config, ""
    token = secrets.token_urlsafe(24)
    return replace(config, server=replace(config.server, admin_token=(token,))), token


def _print_first_steps(config: Config, token: str) -> None:
    """Show the generated token once, on stderr (never in a log line), with the two
    commands that send an event and read it back."""
    api = config.sidecar.api.listen
    assert api is not None  # the loader refuses a configuration without it
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
    ingest = config.ingest
    event = '-d \'{"event_type":"pageview"}\''
    send = (
        f"curl --unix-socket {ingest.socket} -X POST "
        f"http://localhost/v1/token/my-api-key/events {event}"
        if ingest.socket
        else f"curl -X POST http://{ingest.listen}/v1/token/my-api-key/events {event}"
    )
    print(
        "\nevents-cache: no admin token configured; generated one for this run:\n"
        f"  {token}\n"
        "Send an event and read it back:\n"
        f"  {send}\n"
        f"  curl -H 'X-Admin-Token: {token}' "
        f"'http://{host}:{api.port}/api/v1/events/cache?namespace=token&ids=my-api-key'\n",
        file=sys.stderr,
        flush=True,
    )


def run_daemon(config: Config) -> int:
    """Run the daemon until stopped; startup problems raise StartupError."""
    config, token = _with_generated_token(config)

    def on_started(app: App) -> None:
        if token and app.embedded:
            _print_first_steps(app.config, token)

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
    try:
        return run_daemon(config)
    except StartupError as e:
        log.error("cannot start", reason=str(e))
        return EXIT_STARTUP_FAILURE
    except Exception:
        log.exception("crashed")
        return EXIT_STARTUP_FAILURE
