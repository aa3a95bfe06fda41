"""What a first run prints once started: where to look and what to type.

Only the embedded default prints it (a trial on one machine: `make run`); a daemon
beside a real Redis prints nothing but its log. It goes to stderr, never to a log line,
since it may show the admin token.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from daemon.cli.http import TOKEN_ENV, TOKEN_FILE_ENV
from daemon.config import Config


@dataclass(frozen=True, slots=True)
class TokenSource:
    """Where the admin token came from, to tell the CLI the same way."""

    token: str
    generated: bool = False
    file: str = ""  # the file it was read from, when it was
    from_env: bool = False  # EVENTS_CACHE_ADMIN_TOKEN


def token_source(config: Config, generated: str) -> TokenSource:
    """The first admin token and where it came from (by the loader's precedence)."""
    if generated:
        return TokenSource(generated, generated=True)
    token = config.admin_tokens[0] if config.admin_tokens else ""
    if os.environ.get(TOKEN_FILE_ENV):
        return TokenSource(token, file=os.environ[TOKEN_FILE_ENV])
    if os.environ.get(TOKEN_ENV):
        return TokenSource(token, from_env=True)
    return TokenSource(token, file=config.server.admin_token_file)


def program() -> str:
    """How to start this program again from the same directory: `events-cache` when
    that is what PATH finds, else the path it was started by (`.venv/bin/events-cache`
    under `make run`), else `python -m daemon` with this interpreter."""
    path = Path(sys.argv[0] if sys.argv else "").absolute()
    if path.name != "events-cache":
        return f"{shlex.quote(sys.executable)} -m daemon"
    found = shutil.which("events-cache")
    if found and Path(found).absolute() == path:
        return "events-cache"
    cwd = Path.cwd()
    return shlex.quote(str(path.relative_to(cwd) if path.is_relative_to(cwd) else path))


def first_steps(config: Config, source: TokenSource, prog: str) -> str:
    """The banner: the viewer, the token, the CLI, the demo, and two curl commands."""
    api = config.sidecar.api.listen
    assert api is not None  # the loader refuses a configuration without it
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
    base = f"http://{host}:{api.port}"
    ingest = config.ingest
    event = '-d \'{"event_type":"pageview"}\''
    if ingest.socket:
        send = (
            f"curl --unix-socket {shlex.quote(ingest.socket)} -X POST "
            f"http://localhost/v1/token/my-api-key/events {event}"
        )
        demo = f"{prog} demo --socket {shlex.quote(ingest.socket)}"
    else:
        send = f"curl -X POST http://{ingest.listen}/v1/token/my-api-key/events {event}"
        demo = f"{prog} demo --url http://{ingest.listen}"
    token_hint, export, header_token = _token_lines(source)
    url = "" if base == "http://127.0.0.1:8080" else f" --url {base}"
    lines = [
        "",
        "events-cache is ready, on an embedded Valkey/Redis (its data lives only as long "
        "as this process).",
        f"  Viewer:      {base}/ui/   (paste the admin token when it asks)",
        f"  Admin token: {token_hint}",
        "  In a second terminal:",
        f"    {demo}   # demo traffic (`make demo` does the same)",
        f"    {export}",
        f"    {prog} ids{url}   # the ids cached, busiest first",
        f"    {prog} events --ids my-api-key{url}   # an id's events",
        f"    {prog} tail{url}   # follow what is cached, live (Ctrl-C ends it)",
        "  Send an event and read it back:",
        f"    {send}",
        f"    curl -H 'X-Admin-Token: {header_token}' "
        f"'{base}/api/v1/events/cache?namespace=token&ids=my-api-key'",
        "",
    ]
    return "\n".join(lines)


def _token_lines(source: TokenSource) -> tuple[str, str, str]:
    """The token line, the shell line that hands the token to the CLI, and the token
    for curl."""
    if source.generated:
        hint = f"{source.token}   (generated for this run; not kept)"
        return hint, f"export {TOKEN_ENV}={source.token}", source.token
    if source.file:
        hint = f"{source.token}   (from {source.file}: kept across runs)"
        return hint, f"export {TOKEN_FILE_ENV}={shlex.quote(source.file)}", source.token
    if source.from_env:
        hint = f"the value of ${TOKEN_ENV} the daemon was started with"
        return hint, f"export {TOKEN_ENV}=...   # that value", f"${TOKEN_ENV}"
    hint = "server.admin_token of the configuration"
    return hint, f"export {TOKEN_ENV}=...   # that value", "..."


def print_first_steps(config: Config, source: TokenSource) -> None:
    """Print the banner once, on stderr."""
    print(first_steps(config, source, program()), file=sys.stderr, flush=True)
