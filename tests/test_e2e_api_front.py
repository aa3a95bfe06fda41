"""What every API answer carries, the admin token as a Bearer token, and refusals counted:
over the daemon's real API port."""

from __future__ import annotations

import logging
import socket

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


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/events/cache", "/ui/", "/nothing"])
def test_a_body_that_does_not_inflate_is_no_error_on_the_api(
    daemon: InProcessDaemon, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """No API route reads a body: one that says gzip and is not is let go unread, never
    an error-level line (a traceback would hold the body) and the connection goes on."""
    caplog.set_level(logging.DEBUG)
    with socket.create_connection(("127.0.0.1", daemon.api_port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n".encode()
            + b"Content-Length: 14\r\n\r\nnot-gzip-bytes"
        )
        answer = sock.recv(65536)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection goes on
        later = b""
        while b"\r\n\r\n" not in later:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            later += chunk
    assert answer.startswith((b"HTTP/1.1 404", b"HTTP/1.1 405", b"HTTP/1.1 401")), answer
    assert later.startswith(b"HTTP/1.1 200"), later
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert "not-gzip-bytes" not in caplog.text
