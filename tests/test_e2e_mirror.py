"""The mirror listener end to end: the daemon as a subprocess with a real Redis, fed
directly and from behind Debian's nginx (its `mirror` directive) in front of a stand-in
ingest, whose answers must not change, with or without the sidecar."""

from __future__ import annotations

import gzip
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonClient, DaemonProcess
from tests.support.servers import free_port, wait_for
from tests.support.standins import Answer, Nginx, StandIn, exchange, http_request, parse_reply

pytestmark = pytest.mark.e2e

RULES = ["query:token", "header:X-Auth-Token", "path:/api/v1/event/{token}", "json:api_key"]
CLOSE = [(b"Connection", b"close")]


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


def mirror_daemon(start_daemon: Any, **sidecar: Any) -> tuple[DaemonClient, int]:
    port = free_port()
    mirror = {"listen": f"127.0.0.1:{port}", "token_from": RULES}
    return start_daemon({"sidecar": {"mirror": mirror, **sidecar}}), port


def events(daemon: DaemonClient, token: str, count: int = 1) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = daemon.query(namespace="token", ids=token)["events"]
        return found if len(found) >= count else None

    result: list[dict[str, Any]] = wait_for(enough)
    return result


def test_any_method_and_path_is_cached_under_the_key_a_rule_finds(start_daemon: Any) -> None:
    daemon, port = mirror_daemon(start_daemon)
    sent = [
        ("PUT", "/anything/at/all?token=by-query", [], {"n": 1}),
        ("POST", "/api/v1/event/by-path", [], {"n": 2}),
        ("PATCH", "/x", [(b"X-Auth-Token", b"by-header")], {"n": 3}),
        ("DELETE", "/y", [], {"n": 4, "api_key": "by-json"}),
        ("POST", "/api/v1/event/by-path?token=query-wins", [], {"n": 5}),
    ]
    for method, target, headers, doc in sent:
        reply = exchange(
            port, http_request(method, target, [*headers, *CLOSE], json.dumps(doc).encode())
        )
        assert reply.status == 202
        assert json.loads(reply.body) == {
            "accepted": 1,
            "rate_limited": 0,
            "dropped": 0,
            "invalid": 0,
            "errors": [],
        }
    for token, n in (("by-query", 1), ("by-path", 2), ("by-header", 3), ("by-json", 4)):
        [event] = events(daemon, token)
        assert event["original"]["n"] == n and event["token_id"] == token
    assert events(daemon, "query-wins")[0]["original"] == {"n": 5}


def test_the_body_is_cached_as_the_raw_token_endpoint_caches_it(start_daemon: Any) -> None:
    daemon, port = mirror_daemon(start_daemon)
    bodies = [b'[{"a": 1}, {"a": 2}, 3]', b"not json at all", b" ", gzip.compress(b'{"gz": 1}')]
    for n, body in enumerate(bodies):
        headers = [(b"Content-Encoding", b"gzip")] if body.startswith(b"\x1f\x8b") else []
        mirrored = http_request("POST", f"/e?token=mirror-{n}", [*headers, *CLOSE], body)
        assert exchange(port, mirrored).status == 202
        direct = daemon.post_token(
            f"direct-{n}", body, headers={k.decode(): v.decode() for k, v in headers}
        )
        assert direct.status == 202

    def strip(event: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in event.items() if k not in ("uid", "timestamp", "token_id")}

    for n in range(len(bodies)):
        count = 3 if n == 0 else 1
        assert [strip(e) for e in events(daemon, f"mirror-{n}", count)] == [
            strip(e) for e in events(daemon, f"direct-{n}", count)
        ]


def test_a_request_without_a_body_is_not_cached_but_counted(start_daemon: Any) -> None:
    """A tracking pixel's GET or a CORS preflight, mirrored with its key: nothing to
    cache (the ingest would not cache an event either), so no "empty body" error under
    the key, no use of its budget; counted as refused for no_body."""
    daemon, port = mirror_daemon(start_daemon)
    for method in ("GET", "OPTIONS", "HEAD", "POST"):
        reply = exchange(port, http_request(method, "/p.gif?token=pixel-key", CLOSE))
        assert reply.status == 202 or method == "HEAD", reply.raw
    assert daemon.metric("events_cache_rejected_total", listener="mirror", reason="no_body") == 4
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == 0
    assert daemon.query(namespace="token", ids="pixel-key")["events"] == []
    # A gzip body that inflates to nothing has no body either.
    empty = gzip.compress(b"")
    headers = [(b"Content-Encoding", b"gzip"), *CLOSE]
    assert exchange(port, http_request("POST", "/e?token=pixel-key", headers, empty)).status == 202
    assert daemon.metric("events_cache_rejected_total", listener="mirror", reason="no_body") == 5


def test_a_request_without_a_key_is_counted_as_invalid(start_daemon: Any) -> None:
    daemon, port = mirror_daemon(start_daemon, log={"level": "debug"})
    reply = exchange(port, http_request("POST", "/nothing?other=1", CLOSE, b'{"key": "x"}'))
    assert reply.status == 202
    answer = json.loads(reply.body)
    assert answer["accepted"] == 0 and answer["invalid"] == 1
    reason = (
        "no API key found by the token_from rules (query:token, header:X-Auth-Token, "
        "path:/api/v1/event/{token}, json:api_key)"
    )
    assert answer["errors"] == [{"line": 1, "message": reason}]
    assert daemon.metric("events_cache_invalid_total") == 1
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == 0
    logged = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    [entry] = [e for e in logged if e.get("event") == "mirrored request not cached"]
    assert entry["level"] == "debug" and entry["reason"] == reason and entry["method"] == "POST"


def test_limits_and_headers_of_the_ingest_apply_as_they_should(start_daemon: Any) -> None:
    daemon, port = mirror_daemon(start_daemon, ingest={"max_request_bytes": 100})
    big = json.dumps({"api_key": "big", "x": "y" * 200}).encode()
    reply = exchange(port, http_request("POST", "/e", CLOSE, big))
    assert reply.status == 413 and "max_request_bytes" in json.loads(reply.body)["message"]
    # A mirrored copy carries the client's headers: they do not mark the cache's entries.
    headers = [(b"X-Events-Cache-Skip", b"client says"), (b"X-Events-Cache-Error", b"no"), *CLOSE]
    exchange(port, http_request("POST", "/e?token=plain", headers, b'{"ok": 1}'))
    [event] = events(daemon, "plain")
    assert event["original"] == {"ok": 1} and "skip" not in event and "error" not in event
    stamp = daemon.metric(
        "events_cache_http_request_duration_seconds_count",
        listener="mirror",
        route="/{tail}",
        method="POST",
        status="413",
    )
    assert stamp == 1


# -- behind nginx --------------------------------------------------------------------------

MIRROR_LOCATIONS = """
    location / {{
      mirror /_events_cache_mirror;
      mirror_request_body on;
      proxy_pass http://127.0.0.1:{ingest};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    location = /_events_cache_mirror {{
      internal;
      proxy_pass http://127.0.0.1:{mirror}$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 200ms;
      proxy_read_timeout 1s;
      proxy_send_timeout 1s;
    }}
"""


def test_behind_nginx_mirror_the_ingest_is_unaffected_and_the_cache_fed(
    start_daemon: Any, stand_in: StandIn, tmp_path: Path
) -> None:
    daemon, mirror_port = mirror_daemon(start_daemon)
    nginx = Nginx(tmp_path / "nginx").start(
        MIRROR_LOCATIONS.format(ingest=stand_in.port, mirror=mirror_port)
    )
    try:
        requests = [
            ("/api/v1/event?token=ngx-query", [], {"n": 1}),
            ("/api/v1/s2s/event", [(b"X-Auth-Token", b"ngx-header")], {"n": 2}),
            ("/api/v1/event/ngx-path", [], {"n": 3}),
            ("/api/v1/bulk", [], {"n": 4, "api_key": "ngx-json"}),
        ]
        for target, headers, doc in requests:
            body = json.dumps(doc).encode()
            direct = exchange(stand_in.port, http_request("POST", target, [*headers, *CLOSE], body))
            through = exchange(nginx.port, http_request("POST", target, [*headers, *CLOSE], body))
            assert through.status == direct.status == 200
            assert through.body == direct.body == b'{"ok":true}'
        for token, n in (("ngx-query", 1), ("ngx-header", 2), ("ngx-path", 3), ("ngx-json", 4)):
            assert events(daemon, token)[0]["original"]["n"] == n
        # The ingest got each request whole: once directly, once through nginx.
        assert [r.body for r in stand_in.received][1::2] == [
            json.dumps(doc).encode() for _, _, doc in requests
        ]
        # The sidecar down: nginx's answers do not change, nor take long.
        daemon.stop()
        for n in range(5):
            body = json.dumps({"n": n}).encode()
            started = time.monotonic()
            reply = exchange(nginx.port, http_request("POST", f"/e?token=down-{n}", CLOSE, body))
            assert reply.status == 200 and reply.body == b'{"ok":true}'
            assert time.monotonic() - started < 1.0
        assert [r.body for r in stand_in.received][-5:] == [
            json.dumps({"n": n}).encode() for n in range(5)
        ]
    finally:
        nginx.stop()


def test_the_mirror_takes_copies_through_the_drain_then_closes(
    start_daemon_process: Any, redis_client: Any
) -> None:
    daemon, port = mirror_daemon(start_daemon_process, shutdown={"drain_seconds": 2})
    assert isinstance(daemon, DaemonProcess)
    daemon.signal(signal.SIGTERM)
    time.sleep(0.5)
    reply = exchange(port, http_request("POST", "/e?token=drained", CLOSE, b'{"late": 1}'))
    assert reply.status == 202 and json.loads(reply.body)["accepted"] == 1
    assert daemon.process.wait(15) == 0
    with pytest.raises(OSError):
        exchange(port, http_request("POST", "/e?token=x", CLOSE, b"{}"), timeout=2)
    assert redis_client.llen("events_cache:token#drained") == 1  # flushed before the exit


def test_a_key_the_id_rule_refuses_is_counted_bad_id_and_not_cached(start_daemon: Any) -> None:
    daemon, port = mirror_daemon(start_daemon)
    for target in ("/e?token=alice,bob", "/e?token=victim:error", "/e?token=%E2%80%AEx"):
        reply = exchange(port, http_request("POST", target, CLOSE, b'{"n": 1}'))
        assert reply.status == 202
        assert json.loads(reply.body)["errors"][0]["message"].startswith("API key must")
    assert daemon.metric("events_cache_rejected_total", listener="mirror", reason="bad_id") == 3
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == 0


PIXEL_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: 14\r\n\r\nGIF89a-pixel!!"
)
PREFLIGHT_ANSWER = (
    b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: https://shop.example\r\n"
    b"Access-Control-Allow-Methods: POST\r\nAccess-Control-Allow-Headers: content-type\r\n\r\n"
)
REFUSED_ANSWER = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n"
    b'{"error":"wrong api key"}\n'
)


def mirrored_methods(daemon: DaemonClient) -> dict[str, float]:
    """How many requests the daemon's mirror listener answered, per method and status."""
    prefix = 'events_cache_http_request_duration_seconds_count{listener="mirror"'
    return {k: v for k, v in daemon.metrics().items() if k.startswith(prefix)}


def test_behind_nginx_a_pixel_and_a_preflight_reach_the_mirror_and_are_not_cached(
    start_daemon: Any, stand_in: StandIn, tmp_path: Path
) -> None:
    """Issue 20, point 4, as the attack was: a tracking pixel's GET and a CORS preflight
    with `?token=`, through nginx's `mirror` (body-less requests are mirrored with their
    method and no body, `mirror_request_body on` or not): the client gets the ingest's
    answer, the mirror gets the copy and caches nothing (no "empty body" error under the
    key, no `last_error`), counted as no_body."""
    daemon, mirror_port = mirror_daemon(start_daemon)
    stand_in.answers["/p.gif"] = Answer.raw(PIXEL_ANSWER)
    stand_in.answers["/api/v1/preflight"] = Answer.raw(PREFLIGHT_ANSWER)
    nginx = Nginx(tmp_path / "nginx").start(
        MIRROR_LOCATIONS.format(ingest=stand_in.port, mirror=mirror_port)
    )
    try:
        pixel = http_request("GET", "/p.gif?token=ngx-pixel&e=pageview", CLOSE)
        preflight = http_request(
            "OPTIONS",
            "/api/v1/preflight?token=ngx-preflight",
            [
                (b"Origin", b"https://shop.example"),
                (b"Access-Control-Request-Method", b"POST"),
                (b"Access-Control-Request-Headers", b"content-type"),
                *CLOSE,
            ],
        )
        for request, answer in ((pixel, PIXEL_ANSWER), (preflight, PREFLIGHT_ANSWER)):
            through = exchange(nginx.port, request)
            expected = parse_reply(answer)
            assert (through.status, through.body) == (expected.status, expected.body)
            if through.status == 204:
                assert through.header(b"Access-Control-Allow-Origin") == [b"https://shop.example"]
        # The copies reached the mirror listener with their own methods, and were counted.
        wait_for(
            lambda: (
                daemon.metric("events_cache_rejected_total", listener="mirror", reason="no_body")
                == 2
            ),
            what="both copies counted no_body",
        )
        answered = mirrored_methods(daemon)
        assert sum(v for k, v in answered.items() if 'method="GET"' in k) == 1, answered
        assert sum(v for k, v in answered.items() if 'method="OPTIONS"' in k) == 1, answered
        assert daemon.metric("events_cache_received_total", cache_namespace="token") == 0
        for token in ("ngx-pixel", "ngx-preflight"):
            assert daemon.query(namespace="token", ids=token)["events"] == []
        summary = daemon.api("/api/v1/events/ids", {"namespace": "token"}).json["ids"]
        assert summary == []  # no id, so no last_error either
        # The ingest got both requests as sent, without a body.
        assert [(r.request_line.split(b" ")[0], r.body) for r in stand_in.received] == [
            (b"GET", b""),
            (b"OPTIONS", b""),
        ]
    finally:
        nginx.stop()


def test_behind_nginx_the_mirror_caches_what_the_ingest_refused(
    start_daemon: Any, stand_in: StandIn, tmp_path: Path
) -> None:
    """The documented limitation (feeding.md, "The mirror cannot see the ingest's
    answer"; security.md): nginx sends the copy whatever the ingest answers, so a request
    the ingest refused with 401 is cached like one it took. This pins that behaviour so
    the docs stay true; the tee proxy is the listener that caches only 2xx."""
    daemon, mirror_port = mirror_daemon(start_daemon)
    stand_in.answers["/api/v1/event"] = Answer.raw(REFUSED_ANSWER)
    nginx = Nginx(tmp_path / "nginx").start(
        MIRROR_LOCATIONS.format(ingest=stand_in.port, mirror=mirror_port)
    )
    try:
        body = b'{"event_type": "pageview"}'
        request = http_request("POST", "/api/v1/event?token=refused-key", CLOSE, body)
        through = exchange(nginx.port, request)
        assert through.status == 401 and through.body == b'{"error":"wrong api key"}\n'
        [event] = events(daemon, "refused-key")
        assert event["original"] == {"event_type": "pageview"}
        assert "error" not in event and "malformed" not in event  # shown as a success
        assert [r.body for r in stand_in.received] == [body]
    finally:
        nginx.stop()
