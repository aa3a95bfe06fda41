"""The security review's checks, each as the attack is made, against live daemons:
the admin token's refusals on every admin route, the constant-time compare over every
token, path traversal on the viewer's files, request smuggling and malformed framing on
every listener, and the tee proxy as an open relay. docs/security.md ("Results of the
checks") lists each with its count and names these tests; a number there is one these
tests produce.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from daemon.web.auth import TokenCheck
from tests.support.daemon import ADMIN_TOKEN, DaemonClient, InProcessDaemon, StartDaemon
from tests.support.servers import free_port, wait_for
from tests.support.standins import Answer, StandIn, exchange, http_request, parse_reply

pytestmark = pytest.mark.e2e

CACHE = "/api/v1/events/cache"
IDS = "/api/v1/events/ids"
STREAM = "/api/v1/events/stream"
RULES = ["query:token", "header:X-Auth-Token"]
CRLF = b"\r\n"


def raw_exchange(address: str | tuple[str, int], data: bytes, timeout: float = 10) -> bytes:
    """Send `data` on a new connection (TCP, or a Unix socket path) and read until the
    server closes it; a server that keeps it open past `timeout` fails the test."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


# -- the admin token -------------------------------------------------------------------

# (method, target) of the admin routes: everything under /api/v1/events/, and the errors.
ADMIN_ROUTES = [
    ("GET", f"{CACHE}?namespace=token&ids=victim"),
    ("GET", f"{IDS}?namespace=token"),
    ("GET", f"{STREAM}?namespace=token"),
    ("GET", "/api/v1/events/activity?namespace=token&ids=victim"),
    ("GET", "/api/v1/errors?namespace=token&ids=victim"),
    ("GET", "/api/v1/events/journey?event_id=victim-event"),
    ("GET", "/api/v1/events/wait?namespace=token&ids=victim&since=2000-01-01T00:00:00Z&timeout=0"),
    ("DELETE", f"{CACHE}?namespace=token&ids=victim"),
]  # the reset last: the control's own reset empties the seeded id
TOKEN = ADMIN_TOKEN.encode()

# Twelve kinds of wrong token: (name, extra header lines, query suffix). Each request
# carries nothing else that could authenticate it.
WRONG_TOKENS: list[tuple[str, list[bytes], str]] = [
    ("none", [], ""),
    ("wrong", [b"X-Admin-Token: not-the-admin-token-0123"], ""),
    ("in the query string", [], "&token=" + ADMIN_TOKEN),
    ("an empty header", [b"X-Admin-Token: "], ""),
    (
        "a wrong one first among duplicates",
        [b"X-Admin-Token: wrong", b"X-Admin-Token: " + TOKEN],
        "",
    ),
    ("wrong case", [b"X-Admin-Token: " + TOKEN.upper()], ""),
    ("a prefix (all but the last character)", [b"X-Admin-Token: " + TOKEN[:-1]], ""),
    ("the token and one more character", [b"X-Admin-Token: " + TOKEN + b"0"], ""),
    ("non-UTF-8 bytes after the token", [b"X-Admin-Token: " + TOKEN + b"\xff\xfe"], ""),
    ("a cookie", [b"Cookie: X-Admin-Token=" + TOKEN + b"; token=" + TOKEN], ""),
    ("another header", [b"X-Auth-Token: " + TOKEN, b"Token: " + TOKEN], ""),
    ("Bearer with a wrong token", [b"Authorization: Bearer not-the-admin-token-0123"], ""),
]


def admin_request(method: str, target: str, lines: list[bytes]) -> bytes:
    head = [f"{method} {target} HTTP/1.1".encode(), b"Host: test", *lines, b"Connection: close"]
    return CRLF.join(head) + CRLF + CRLF


def first_answer(port: int, request: bytes) -> tuple[int, bytes]:
    """The status and head of the first answer (the stream's never ends: read its head
    only, then hang up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while CRLF + CRLF not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.fixture
def seeded(start_daemon: StartDaemon) -> InProcessDaemon:
    daemon = start_daemon()
    assert daemon.post_token("victim", b'{"n": 1, "event_id": "victim-event"}').status == 202
    wait_for(lambda: daemon.query(namespace="token", ids="victim")["events"])
    return daemon


def test_the_admin_routes_refuse_twelve_kinds_of_wrong_token(seeded: InProcessDaemon) -> None:
    """Each of the 12 kinds on each of the 8 admin routes: 401, the refusal counted,
    nothing read or reset; then the right token passes on each (the control)."""
    assert len(WRONG_TOKENS) == 12 and len(ADMIN_ROUTES) == 8
    refused = 0
    for method, target in ADMIN_ROUTES:
        for name, lines, query in WRONG_TOKENS:
            status, head = first_answer(
                seeded.api_port, admin_request(method, target + query, lines)
            )
            assert status == 401, (method, target, name, head)
            assert ADMIN_TOKEN.encode() not in head
            refused += 1
    assert refused == 96
    assert seeded.metric("events_cache_auth_failures_total", listener="api") == 96
    assert len(seeded.query(namespace="token", ids="victim")["events"]) == 1  # not reset
    for method, target in ADMIN_ROUTES:
        for right in (b"X-Admin-Token: " + TOKEN, b"Authorization: Bearer " + TOKEN):
            status, head = first_answer(seeded.api_port, admin_request(method, target, [right]))
            assert status == 200, (method, target, head)
    assert seeded.metric("events_cache_auth_failures_total", listener="api") == 96


def test_with_allow_token_in_query_the_query_token_passes_and_a_wrong_one_does_not(
    start_daemon: StartDaemon,
) -> None:
    """`server.allow_token_in_query: true` turns kind 3 into an accepted request; every
    other kind is still refused, and a wrong header is not rescued by a right query."""
    daemon = start_daemon({"server": {"allow_token_in_query": True}})
    assert daemon.post_token("victim", b'{"n": 1, "event_id": "victim-event"}').status == 202
    wait_for(lambda: daemon.query(namespace="token", ids="victim")["events"])
    for method, target in ADMIN_ROUTES:
        status, _ = first_answer(
            daemon.api_port, admin_request(method, target + "&token=" + ADMIN_TOKEN, [])
        )
        assert status == 200, (method, target)
        for name, lines, query in WRONG_TOKENS:
            if query:
                continue
            status, head = first_answer(daemon.api_port, admin_request(method, target, lines))
            assert status == 401, (method, target, name, head)
        wrong_header = [b"X-Admin-Token: wrong"]
        request = admin_request(method, target + "&token=" + ADMIN_TOKEN, wrong_header)
        assert first_answer(daemon.api_port, request)[0] == 401
        assert (
            first_answer(daemon.api_port, admin_request(method, target + "&token=wrong", []))[0]
            == 401
        )


def compare_digest_calls(check: TokenCheck, headers: dict[str, str]) -> list[int]:
    """How many times `hmac.compare_digest` (a C function) ran while `check` decided on a
    request with `headers`, and its result; observed with a profile hook, nothing
    replaced."""
    calls: list[int] = []

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__name__", "") == "compare_digest":
            calls.append(1)

    request = make_mocked_request("GET", CACHE, headers=CIMultiDict(headers))
    sys.setprofile(hook)
    try:
        allowed = check.allows(request)
    finally:
        sys.setprofile(None)
    return [len(calls), int(allowed)]


def test_the_token_is_compared_with_compare_digest_against_every_token() -> None:
    """Rotation with three valid tokens: whichever matches (first, last, none), the
    check runs `compare_digest` once per configured token, never stopping early, so
    which token matched and how much of a wrong one is right change no code path."""
    tokens = ("a" * 32, "b" * 32, "c" * 32)
    check = TokenCheck(tokens, allow_in_query=False)
    for presented, allowed in (
        ("a" * 32, 1),
        ("c" * 32, 1),
        ("c" * 31 + "x", 0),
        ("x" * 32, 0),
        ("", 0),
    ):
        assert compare_digest_calls(check, {"X-Admin-Token": presented}) == [3, allowed]
        bearer = {"Authorization": f"Bearer {presented}"}
        expected = [3, allowed] if presented else [0, 0]  # "Bearer " alone is no token
        assert compare_digest_calls(check, bearer) == expected


# -- path traversal on the viewer ------------------------------------------------------

TRAVERSALS = [
    "/ui/../daemon/app.py",
    "/ui/..%2fdaemon%2fapp.py",
    "/ui/%2e%2e/%2e%2e/etc/passwd",
    "/ui/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/ui/%252e%252e%252fetc%252fpasswd",
    "/ui/..\\..\\etc\\passwd",
    "/ui/..%5c..%5cetc%5cpasswd",
    "/ui//etc/passwd",
    "/ui/..;/etc/passwd",
    "/ui/index.html%00.js",
    "/ui/%00",
    "/ui/%c0%ae%c0%ae/etc/passwd",
    "/ui/%c0%af..%c0%afetc%c0%afpasswd",
    "/ui/..%u2215etc%u2215passwd",
    "/ui/....//....//etc/passwd",
    "/ui/__init__.py",
    "/ui/%2fetc%2fpasswd",
]


def test_seventeen_path_traversal_variants_on_the_viewer_are_404(
    start_daemon: StartDaemon,
) -> None:
    """The viewer serves only the files it read at start-up, by name from a table: no
    request reaches the file system. 17 variants (dot segments plain and encoded once or
    twice, backslashes, double slashes, `..;`, NUL bytes, overlong UTF-8, %u escapes,
    `....//`, the package's own source) each get a 404 whose body is the JSON message."""
    assert len(TRAVERSALS) == 17
    daemon = start_daemon()
    for target in TRAVERSALS:
        raw = raw_exchange(("127.0.0.1", daemon.api_port), admin_request("GET", target, []))
        reply = parse_reply(raw)
        assert reply.status == 404, (target, raw[:300])
        assert json.loads(reply.body)["message"], (target, raw[:300])
        assert b"root:" not in raw and b"import" not in raw, target


# -- request smuggling and malformed framing, on every listener ------------------------


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@dataclass(frozen=True)
class Listener:
    """One listener under test: where it is, the request line and headers a request to
    it takes, and whether anything of a request was processed (cached, forwarded,
    reset)."""

    name: str
    address: str | tuple[str, int]
    head: list[bytes]  # request line and the headers that make it do something
    processed: Callable[[], object]


# Each case: the head lines after the listener's own, and the bytes after the head. The
# body is a JSON event (what would be cached or forwarded); some carry a second request
# (smuggled) after what a lenient parser would take as the first body's end.
BODY = b'{"smuggled": 1}'


def smuggled(head: list[bytes]) -> bytes:
    inner = CRLF.join([*head, b"Host: test", b"Content-Length: %d" % len(BODY)])
    return inner + CRLF + CRLF + BODY


FRAMING_CASES: dict[str, Callable[[list[bytes]], bytes]] = {
    # CL.TE: a parser reading Content-Length and one reading chunked disagree on the end.
    "content-length-and-chunked": lambda h: (
        CRLF.join([*h, b"Host: test", b"Content-Length: 4", b"Transfer-Encoding: chunked"])
        + CRLF * 2
        + chunked(BODY)
        + smuggled(h)
    ),
    # TE.CL with an obfuscated Transfer-Encoding.
    "chunked-obfuscated-and-length": lambda h: (
        CRLF.join(
            [*h, b"Host: test", b"Transfer-Encoding: xchunked", b"Content-Length: %d" % len(BODY)]
        )
        + CRLF * 2
        + BODY
    ),
    "two-differing-content-lengths": lambda h: (
        CRLF.join([*h, b"Host: test", b"Content-Length: %d" % len(BODY), b"Content-Length: 4"])
        + CRLF * 2
        + BODY
        + smuggled(h)
    ),
    "chunk-size-overflow": lambda h: (
        CRLF.join([*h, b"Host: test", b"Transfer-Encoding: chunked"])
        + CRLF * 2
        + b"ffffffffffffffffff1\r\n"
        + BODY
        + b"\r\n0\r\n\r\n"
    ),
    "bare-lf-line-endings": lambda h: (
        b"\n".join([*h, b"Host: test", b"Content-Length: %d" % len(BODY)]) + b"\n\n" + BODY
    ),
    "obs-fold-continuation": lambda h: (
        CRLF.join(
            [
                *h,
                b"Host: test",
                b"X-Folded: a",
                b" Transfer-Encoding: chunked",
                b"Content-Length: %d" % len(BODY),
            ]
        )
        + CRLF * 2
        + BODY
    ),
    "nul-in-a-header-value": lambda h: (
        CRLF.join([*h, b"Host: test", b"X-Note: a\x00b", b"Content-Length: %d" % len(BODY)])
        + CRLF * 2
        + BODY
    ),
    "bare-cr-in-a-header-value": lambda h: (
        CRLF.join(
            [*h, b"Host: test", b"X-Note: a\rContent-Length: 0", b"Content-Length: %d" % len(BODY)]
        )
        + CRLF * 2
        + BODY
    ),
}
LISTENERS = ["api", "ingest-tcp", "ingest-unix", "mirror", "proxy"]


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


def listener(name: str, daemon: DaemonClient, stand_in: StandIn, ports: dict[str, int]) -> Listener:
    seeded = daemon.metric("events_cache_received_total", cache_namespace="token")

    def received() -> bool:  # beyond the victim's event, cached before
        return daemon.metric("events_cache_received_total", cache_namespace="token") > seeded

    if name == "api":
        # A reset of a cached id with the right token: processed = the id is gone.
        head = [
            f"DELETE {CACHE}?namespace=token&ids=victim HTTP/1.1".encode(),
            b"X-Admin-Token: " + TOKEN,
        ]
        return Listener(
            name,
            ("127.0.0.1", daemon.api_port),
            head,
            lambda: daemon.query(namespace="token", ids="victim")["events"] == [],
        )
    if name.startswith("ingest"):
        address: str | tuple[str, int] = (
            daemon.socket_path if name == "ingest-unix" else ("127.0.0.1", daemon.ingest_port)
        )
        return Listener(name, address, [b"POST /v1/token/smuggle/events HTTP/1.1"], received)
    if name == "mirror":
        head = [b"POST /collect?token=smuggle HTTP/1.1"]
        return Listener(name, ("127.0.0.1", ports["mirror"]), head, received)
    head = [b"POST /collect?token=smuggle HTTP/1.1"]
    return Listener(
        name,
        ("127.0.0.1", ports["proxy"]),
        head,
        lambda: stand_in.received or received(),
    )


@pytest.fixture
def every_listener(
    start_daemon: StartDaemon, stand_in: StandIn
) -> tuple[InProcessDaemon, dict[str, int]]:
    ports = {"mirror": free_port(), "proxy": free_port()}
    daemon = start_daemon(
        {
            "sidecar": {
                "mirror": {"listen": f"127.0.0.1:{ports['mirror']}", "token_from": RULES},
                "proxy": {
                    "listen": f"127.0.0.1:{ports['proxy']}",
                    "upstream": f"http://127.0.0.1:{stand_in.port}",
                    "token_from": RULES,
                },
            }
        }
    )
    assert daemon.post_token("victim", b'{"n": 1, "event_id": "victim-event"}').status == 202
    wait_for(lambda: daemon.query(namespace="token", ids="victim")["events"])
    return daemon, ports


@pytest.mark.parametrize("case", list(FRAMING_CASES))
@pytest.mark.parametrize("name", LISTENERS)
def test_smuggling_and_malformed_framing_are_refused_on_every_listener(
    every_listener: tuple[InProcessDaemon, dict[str, int]], stand_in: StandIn, name: str, case: str
) -> None:
    """Raw bytes to each listener: the answer is a 400 (or the connection closed without
    one), the connection is closed, one answer at most (no second request read from the
    body), and nothing of the request was processed: not cached, not forwarded to the
    proxy's upstream, not reset. The 400 quotes nothing of the request: aiohttp's parser
    errors (API and proxy listeners) quoted the raw head, admin token included, and
    named aiohttp and Python's version in `Server`, until `daemon/web/protocol.py` cut
    the excerpt and set the API's headers."""
    daemon, ports = every_listener
    target = listener(name, daemon, stand_in, ports)
    data = FRAMING_CASES[case](target.head)
    raw = raw_exchange(target.address, data)
    if raw:
        assert raw.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 ")), raw[:400]
        assert raw.count(b"HTTP/1.") == 1, raw.decode("latin-1")
        # The refusal quotes nothing of the request (its token, its body), and names no
        # server software.
        assert TOKEN not in raw and b"smuggled" not in raw, raw.decode("latin-1")
        assert b"aiohttp" not in raw and b"Python" not in raw, raw.decode("latin-1")
        assert json.loads(parse_reply(raw).body)["message"]
    daemon.wait_drained()
    assert not target.processed(), (name, case, raw[:400])
    assert stand_in.received == []


def test_the_framing_requests_are_processed_when_well_formed(
    every_listener: tuple[InProcessDaemon, dict[str, int]], stand_in: StandIn
) -> None:
    """The control of the test above: the same heads with correct framing are processed
    on each listener, so "not processed" there means refused, not misdirected."""
    daemon, ports = every_listener
    for name in ["ingest-tcp", "ingest-unix", "mirror", "proxy", "api"]:
        target = listener(name, daemon, stand_in, ports)
        data = CRLF.join(
            [*target.head, b"Host: test", b"Content-Length: %d" % len(BODY), b"Connection: close"]
        )
        raw = raw_exchange(target.address, data + CRLF * 2 + BODY)
        assert raw.startswith(b"HTTP/1.1 2"), (name, raw[:300])
        daemon.wait_drained()
        wait_for(target.processed, what=f"{name} processed the request")


# -- the tee proxy is no open relay ----------------------------------------------------


@pytest.fixture
def other() -> Iterator[StandIn]:
    """A server the proxy must never reach: the host an attacker names."""
    server = StandIn().start()
    yield server
    server.stop()


def relay_daemon(start_daemon: StartDaemon, upstream: StandIn) -> tuple[InProcessDaemon, int]:
    port = free_port()
    proxy = {
        "listen": f"127.0.0.1:{port}",
        "upstream": f"http://127.0.0.1:{upstream.port}",
        "token_from": RULES,
    }
    return start_daemon({"sidecar": {"proxy": proxy}}), port


def open_relay_attempts(other: int) -> dict[str, bytes]:
    elsewhere = f"127.0.0.1:{other}"
    close = [(b"Connection", b"close")]
    return {
        "absolute-form target": http_request("GET", f"http://{elsewhere}/steal", close),
        "absolute-form, https": http_request("GET", f"https://{elsewhere}/steal", close),
        "authority-form CONNECT": http_request(
            "CONNECT", elsewhere, [(b"Host", elsewhere.encode()), *close]
        )
        + b"GET /tunnelled HTTP/1.1\r\nHost: x\r\n\r\n",
        "Host naming another host": http_request(
            "GET", "/steal", [(b"Host", elsewhere.encode()), *close]
        ),
        "scheme-relative path": http_request("GET", f"//{elsewhere}/steal", close),
        "X-Forwarded-Host and Forwarded": http_request(
            "GET",
            "/steal",
            [
                (b"X-Forwarded-Host", elsewhere.encode()),
                (b"Forwarded", f"host={elsewhere}".encode()),
                *close,
            ],
        ),
    }


@pytest.mark.parametrize(
    "attempt",
    [
        "absolute-form target",
        "absolute-form, https",
        "authority-form CONNECT",
        "Host naming another host",
        "scheme-relative path",
        "X-Forwarded-Host and Forwarded",
    ],
)
def test_the_proxy_is_no_open_relay(
    start_daemon: StartDaemon, stand_in: StandIn, other: StandIn, attempt: str
) -> None:
    """A request naming another host (in the target, as CONNECT, in Host or forwarding
    headers) goes to the configured upstream or is refused; the other host never
    receives a byte, and the client gets the upstream's answer or a 4xx, never
    another server's."""
    _, port = relay_daemon(start_daemon, stand_in)
    other.default = Answer.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTOLEN", close=True)
    raw = raw_exchange(("127.0.0.1", port), open_relay_attempts(other.port)[attempt])
    assert other.received == [], other.received
    assert b"STOLEN" not in raw
    status = parse_reply(raw).status if raw else 0
    if stand_in.received:
        assert status == 200 and raw.endswith(b'{"ok":true}'), raw[:300]
    else:
        assert 400 <= status < 500, raw[:300]
    if attempt.startswith("absolute-form"):  # asked of the upstream in origin form
        assert [r.request_line for r in stand_in.received] == [b"GET /steal HTTP/1.1"]


def test_the_proxy_forwards_a_host_header_as_received_to_its_upstream_only(
    start_daemon: StartDaemon, stand_in: StandIn, other: StandIn
) -> None:
    """The Host a client names is forwarded as received (the contract), to the one
    configured upstream: naming another host changes the header, not the destination."""
    _, port = relay_daemon(start_daemon, stand_in)
    elsewhere = f"127.0.0.1:{other.port}".encode()
    reply = exchange(
        port, http_request("GET", "/x?token=k", [(b"Host", elsewhere), (b"Connection", b"close")])
    )
    assert reply.status == 200 and reply.body == b'{"ok":true}'
    [got] = stand_in.received
    assert got.header(b"Host") == [elsewhere]
    assert other.received == []
