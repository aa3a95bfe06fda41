"""What every API answer carries, the admin token as a Bearer token, and refusals counted
(issue 20, point 9): over the daemon's real API port."""

from __future__ import annotations

import pytest

from tests.support.daemon import ADMIN_TOKEN, InProcessDaemon, StartDaemon

pytestmark = pytest.mark.e2e

CACHE = "/api/v1/events/cache"


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> InProcessDaemon:
    return start_daemon()


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (CACHE, {"namespace": "token"}, 200),
        (CACHE, {"limit": "x"}, 400),
        ("/healthz", {}, 200),
        ("/metrics", {}, 200),
        ("/api/v1/nothing", {}, 404),
        ("/openapi.json", {}, 200),
    ],
)
def test_every_api_answer_says_no_store_and_nosniff_and_not_its_software(
    daemon: InProcessDaemon, path: str, params: dict[str, str], status: int
) -> None:
    reply = daemon.api(path, params)
    assert reply.status == status, reply.raw
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Server"] == "events-cache"  # no aiohttp, no Python version


def test_a_refused_request_says_no_store_too(daemon: InProcessDaemon) -> None:
    reply = daemon.api(CACHE, {"namespace": "token"}, token=None)
    assert reply.status == 401
    assert reply.headers["Cache-Control"] == "no-store"


def test_the_viewer_keeps_its_revalidated_cache(daemon: InProcessDaemon) -> None:
    reply = daemon.api("/ui/", {}, token=None)
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-cache"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_admin_token_as_a_bearer_token(daemon: InProcessDaemon, scheme: str) -> None:
    reply = daemon.api(
        CACHE,
        {"namespace": "token"},
        token=None,
        headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"},
    )
    assert reply.status == 200, reply.raw


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-token",
        f"Basic {ADMIN_TOKEN}",
        f"Bearer{ADMIN_TOKEN}",
        "Bearer ",
        f"Bearer {ADMIN_TOKEN[:-1]}",
    ],
)
def test_anything_else_in_authorization_is_refused_and_counted(
    daemon: InProcessDaemon, authorization: str
) -> None:
    before = daemon.metric("events_cache_auth_failures_total", listener="api")
    reply = daemon.api(
        CACHE, {"namespace": "token"}, token=None, headers={"Authorization": authorization}
    )
    assert reply.status == 401
    assert daemon.metric("events_cache_auth_failures_total", listener="api") == before + 1


def test_refusals_are_counted_and_accepted_requests_are_not(daemon: InProcessDaemon) -> None:
    assert daemon.metric("events_cache_auth_failures_total", listener="api") == 0
    for token in (None, "wrong", ADMIN_TOKEN + "x"):
        assert daemon.api(CACHE, {"namespace": "token"}, token=token).status == 401
    assert daemon.api(CACHE, {"namespace": "token"}).status == 200
    # X-Admin-Token is read first: a wrong one is refused whatever Authorization says.
    reply = daemon.api(
        CACHE,
        {"namespace": "token"},
        token="wrong",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert reply.status == 401
    assert daemon.metric("events_cache_auth_failures_total", listener="api") == 4
