"""A pytest plugin for tests of event tracking: the `events_cache` fixture.

Each test gets a capture tag of its own. Events the application sends with that tag
(in the header or JSON field that the sidecar's `sidecar.capture.from` names) bypass
the API key's rate limit, so a busy key never hides a test's event, and the test can
wait for them without polling:

    def test_purchase_is_tracked(events_cache):
        app.track("purchase", headers=events_cache.headers)
        [entry] = events_cache.expect(ids="js.abc123", q="purchase")
        assert entry["original"]["revenue"] == 10

Where the sidecar is: `--events-cache-url` (or EVENTS_CACHE_API_URL, default
http://127.0.0.1:8080); its admin token: `--events-cache-token-file` or
EVENTS_CACHE_ADMIN_TOKEN. The plugin only acts when a test asks for the fixture.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any, Union

import pytest

URL_ENV = "EVENTS_CACHE_API_URL"
TOKEN_ENV = "EVENTS_CACHE_ADMIN_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_HEADER = "X-Events-Cache-Capture"
WAIT_CAP_S = 120.0  # the sidecar's cap on one wait
Ids = Union[str, list[str], None]


class EventsCacheError(Exception):
    """The sidecar could not be asked (not reachable, wrong token, bad parameter)."""


class EventsCache:
    """One test's view of the cache: its capture tag, and waits and resets by it."""

    def __init__(self, url: str, token: str, tag: str, header: str = DEFAULT_HEADER) -> None:
        self.url = url.rstrip("/")
        self.tag = tag
        self.header = header
        self._token = token

    @property
    def headers(self) -> dict[str, str]:
        """The header that tags a request's events with this test's tag."""
        return {self.header: self.tag}

    def expect(
        self,
        ids: Ids = None,
        *,
        namespace: str = "token",
        event_id: str | None = None,
        status: str | None = None,
        q: str | None = None,
        count: int = 1,
        timeout: float = 30.0,
        since: str | None = None,
        tagged: bool = True,
    ) -> list[dict[str, Any]]:
        """Wait until `count` matching events are cached and return them; fail the test
        with what was seen when `timeout` passes first. Only this test's tagged events
        count unless `tagged=False`; only those cached from now on, unless `since`."""
        params = _params(
            namespace=namespace,
            ids=_joined(ids),
            event_id=event_id,
            status=status,
            q=q,
            since=since,
            count=str(count),
            capture=self.tag if tagged else None,
        )
        deadline = timeout
        events: list[dict[str, Any]] = []
        while True:  # the sidecar caps one wait at WAIT_CAP_S: longer ones are chained
            step = min(deadline, WAIT_CAP_S)
            params["timeout"] = _seconds(step)
            answer = self._get("/api/v1/events/wait", params, step + 10)
            events = list(answer.get("events", []))
            deadline -= step
            if answer.get("matched") or deadline <= 0:
                break
        if len(events) < count:
            pytest.fail(self._summary(namespace, ids, count, timeout, events), pytrace=False)
        return events

    def events(
        self, ids: Ids = None, *, namespace: str = "token", limit: int = 100
    ) -> list[dict[str, Any]]:
        """This test's tagged events cached now, newest first (no waiting)."""
        params = _params(namespace=namespace, ids=_joined(ids), capture=self.tag, limit=str(limit))
        answer = self._get("/api/v1/events/cache", params, 10)
        return list(answer.get("events", []))

    def reset(self) -> int:
        """Remove this test's tagged events from both namespaces; how many went."""
        removed = 0
        for namespace in ("token", "destination"):
            params = _params(namespace=namespace, capture=self.tag)
            answer = self._call("DELETE", "/api/v1/events/cache", params, 30)
            removed += int(answer.get("deleted_events", 0))
        return removed

    def _summary(
        self, namespace: str, ids: Ids, count: int, timeout: float, events: list[Any]
    ) -> str:
        """The failure's message: what matched, and what the cache held for those ids."""
        lines = [
            f"events-cache: {len(events)} of {count} expected event(s) cached in {timeout:g} s"
            f" (namespace {namespace}, tag {self.tag})"
        ]
        wanted = [i for i in (_joined(ids) or "").split(",") if i]
        if wanted:
            params = _params(namespace=namespace, ids=",".join(wanted), limit="0")
            try:
                answer = self._get("/api/v1/events/cache", params, 10)
            except EventsCacheError as e:
                lines.append(f"  (could not read the ids' counts: {e})")
            else:
                lines.append(
                    f"  cached for {', '.join(wanted)}: {answer.get('total_events', 0)} event(s),"
                    f" {answer.get('last_minute_limited', 0)} rate limited in the last minute"
                )
        for event in events[:5]:
            lines.append(f"  matched: {json.dumps(event)[:300]}")
        return "\n".join(lines)

    def _get(self, path: str, params: dict[str, str], timeout: float) -> dict[str, Any]:
        return self._call("GET", path, params, timeout)

    def _call(
        self, method: str, path: str, params: dict[str, str], timeout: float
    ) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            message = _message(e.read())
            raise EventsCacheError(f"{method} {path}: {e.code} {message}") from None
        except (OSError, ValueError) as e:
            raise EventsCacheError(f"{method} {path} at {self.url}: {e}") from None
        return answer if isinstance(answer, dict) else {}


def _params(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def _joined(ids: Ids) -> str | None:
    return ",".join(ids) if isinstance(ids, list) else ids


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):g}"


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options: where the sidecar's query API is and its admin token."""
    group = parser.getgroup("events-cache")
    group.addoption("--events-cache-url", default=None, help=f"query API ({URL_ENV})")
    group.addoption("--events-cache-token-file", default=None, help=f"or {TOKEN_ENV}")
    group.addoption(
        "--events-cache-capture-header",
        default=DEFAULT_HEADER,
        help="the header sidecar.capture.from names (default %(default)s)",
    )


@pytest.fixture(scope="session")
def events_cache_run() -> str:
    """This test run's tag prefix: tags of two runs never meet."""
    return f"run-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def events_cache(request: pytest.FixtureRequest, events_cache_run: str) -> Iterator[EventsCache]:
    """This test's view of the cache, with a capture tag of its own."""
    config = request.config
    url = config.getoption("--events-cache-url") or os.environ.get(URL_ENV, DEFAULT_URL)
    token_file = config.getoption("--events-cache-token-file")
    if token_file:
        with open(token_file, encoding="utf-8") as f:
            token = f.read().strip()
    else:
        token = os.environ.get(TOKEN_ENV, "")
    if not token:
        pytest.fail(f"events_cache: no admin token ({TOKEN_ENV} or --events-cache-token-file)")
    tag = f"{events_cache_run}-{uuid.uuid4().hex[:12]}"
    yield EventsCache(url, token, tag, config.getoption("--events-cache-capture-header"))
