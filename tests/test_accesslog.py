"""The API listener's access log never shows a query's admin token."""

from __future__ import annotations

import json

import pytest

from daemon.web.accesslog import REDACTED, redact_query
from tests.support.daemon import ADMIN_TOKEN, StartDaemonProcess


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/api/v1/events/cache", "/api/v1/events/cache"),
        ("/x?ids=a&token=s3cret&limit=1", f"/x?ids=a&token={REDACTED}&limit=1"),
        ("/x?token=s3cret", f"/x?token={REDACTED}"),
        ("/x?%74oken=s3cret&token=two", f"/x?%74oken={REDACTED}&token={REDACTED}"),
        ("/x?tok%65n=s3cret", f"/x?tok%65n={REDACTED}"),
        ("/x?token", "/x?token"),  # no value, nothing to hide
        ("/x?tokens=a&my_token=b", "/x?tokens=a&my_token=b"),
        ("/x?token=a=b&q=token%3Dc", f"/x?token={REDACTED}&q=token%3Dc"),
        # any case, after ";", and with its "=" encoded
        ("/x?TOKEN=s3cret", f"/x?TOKEN={REDACTED}"),
        ("/x?a=1;token=s3cret", f"/x?a=1;token={REDACTED}"),
        ("/x?token%3Ds3cret&b=2", f"/x?{REDACTED}&b=2"),
        ("/x?%20Token+=s3cret", f"/x?%20Token+={REDACTED}"),
    ],
)
def test_redact_query(path: str, logged: str) -> None:
    assert redact_query(path) == logged


@pytest.mark.e2e
def test_a_query_token_never_reaches_the_debug_access_log(
    start_daemon_process: StartDaemonProcess,
) -> None:
    daemon = start_daemon_process(
        {"server": {"allow_token_in_query": True}, "sidecar": {"log": {"level": "debug"}}}
    )
    assert daemon.post_token("k", json.dumps({"n": 1})).status == 202
    daemon.wait_drained()
    params = {"namespace": "token", "ids": "k", "token": ADMIN_TOKEN}
    assert daemon.api("/api/v1/events/cache", params, token=None).status == 200
    # An encoded name is a token to aiohttp too (it decodes the query): hidden as well.
    encoded = f"/api/v1/events/ids?namespace=token&%74oken={ADMIN_TOKEN}"
    assert daemon.api(encoded, token=None).status == 200
    assert daemon.api("/api/v1/events/ids", {"token": "wrong-token"}, token=None).status == 401
    # Not the token parameter to aiohttp (refused), yet the token in clear: hidden too.
    for query in (f"TOKEN={ADMIN_TOKEN}", f"a=1;token={ADMIN_TOKEN}", f"token%3D{ADMIN_TOKEN}"):
        assert daemon.api(f"/api/v1/events/ids?{query}", token=None).status == 401
    daemon.stop()
    log = daemon.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "aiohttp.access"]
    paths = [line["path"] for line in access]
    assert f"/api/v1/events/cache?namespace=token&ids=k&token={REDACTED}" in paths
    assert f"/api/v1/events/ids?namespace=token&%74oken={REDACTED}" in paths
    assert f"/api/v1/events/ids?token={REDACTED}" in paths
    assert {line["status"] for line in access} >= {200, 401}
    assert ADMIN_TOKEN not in log and "wrong-token" not in log
