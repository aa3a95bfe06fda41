"""A small client of the query API for the command line (standard library only).

Errors a person can act on become ApiError with a message that says what to do: the
daemon is not there (wrong --url), the token is refused, Redis is down (503).
"""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from daemon.cli import deepjson
from daemon.core.wire import TOKEN_HEADER, TRUNCATED_HEADER

TIMEOUT_S = 30.0
TOKEN_ENV = "EVENTS_CACHE_ADMIN_TOKEN"
TOKEN_FILE_ENV = "EVENTS_CACHE_ADMIN_TOKEN_FILE"
TOKEN_HELP = (
    f"The admin token is read from --token-file PATH, else from the file named by "
    f"${TOKEN_FILE_ENV}, else from ${TOKEN_ENV} (the daemon's own order); never from the "
    "command line, where it would stay in the shell's history. `make run` keeps its "
    "token in .run/admin-token."
)


class ApiError(Exception):
    """The query API could not answer; the message says why and what to do; `status`
    is the HTTP status when the API answered with one (0 otherwise)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def admin_token(token_file: str | None, environ: Mapping[str, str]) -> str:
    """The admin token, by the precedence TOKEN_HELP states; ApiError saying how to
    give one when there is none."""
    path = token_file or environ.get(TOKEN_FILE_ENV, "")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ApiError(f"cannot read the admin token from {path}: {e}") from e
        if not token or not token[0].strip():
            raise ApiError(f"{path} holds no admin token")
        return token[0].strip()
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV]
    raise ApiError(
        f"no admin token: set {TOKEN_ENV}, or pass --token-file PATH "
        "(`make run` keeps its token in .run/admin-token; the daemon printed it at start)"
    )


@dataclass(frozen=True)
class Answer:
    """A JSON answer and whether the daemon cut it (max_response_events or _bytes)."""

    body: Any
    truncated: bool


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Event: its type, id and data (None for a comment)."""

    event: str
    id: str
    data: str


class ApiClient:
    """GET requests with the admin token, against one daemon's API listener."""

    def __init__(self, url: str, token: str) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApiError(f"--url must be http(s)://host:port, got {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._token = token

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _send(
        self,
        path: str,
        params: Mapping[str, str | None],
        timeout: float | None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        target = f"{self._prefix}{path}" + (f"?{query}" if query else "")
        conn = self._connection(timeout)
        try:
            conn.request("GET", target, headers={**(headers or {}), TOKEN_HEADER: self._token})
            response = conn.getresponse()
        except OSError as e:
            conn.close()
            raise ApiError(
                f"cannot reach the events-cache API at {self.url}: {e.strerror or e} "
                "(is the daemon running, and is --url right?)"
            ) from e
        if response.status != 200:
            body = response.read()
            conn.close()
            raise ApiError(_failure(response.status, body, self.url), response.status)
        return conn, response

    def get(
        self, path: str, params: Mapping[str, str | None], timeout: float = TIMEOUT_S
    ) -> Answer:
        """GET a JSON answer (`timeout`: a long poll's socket timeout is longer)."""
        conn, response = self._send(path, params, timeout)
        try:
            body = deepjson.loads(response.read())
            truncated = response.getheader(TRUNCATED_HEADER) == "true"
        except (ValueError, OSError) as e:
            raise ApiError(f"{self.url} did not answer with JSON: {e}") from e
        finally:
            conn.close()
        return Answer(body, truncated)

    def stream(
        self, path: str, params: Mapping[str, str | None], last_event_id: str = ""
    ) -> Iterator[SseEvent]:
        """Follow a Server-Sent Events stream until the daemon ends it (a reconnect
        passes the id of the last event it got)."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else None
        conn, response = self._send(path, params, None, headers)
        try:
            yield from _events(response)
        finally:
            conn.close()


def _events(response: http.client.HTTPResponse) -> Iterator[SseEvent]:
    event, id_ = "message", ""
    data: list[str] = []
    while line := response.readline():
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if not text:
            if data:
                yield SseEvent(event, id_, "\n".join(data))
            event, id_, data = "message", "", []
        elif text.startswith(":"):
            continue  # a comment: the heartbeat
        else:
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                id_ = value


def _failure(status: int, body: bytes, url: str) -> str:
    try:
        message, ours = str(orjson.loads(body).get("message", "")), True
    except (orjson.JSONDecodeError, AttributeError):
        message, ours = body[:200].decode("utf-8", "replace"), False
    if status == 401:
        return (
            f"{url} refused the admin token ({message}): give the one the daemon was "
            f"started with ({TOKEN_ENV} or --token-file)"
        )
    if status == 404 and ours:  # the API's own answer (an event id not cached, say)
        return f"{url} answered 404: {message}"
    if status == 404:
        return (
            f"{url} answered 404: {message} (is --url the API listener, "
            "sidecar.api.listen, 8080 by default?)"
        )
    if status == 503:
        return f"{url} cannot answer now (503): {message}"
    return f"{url} answered {status}: {message}"
