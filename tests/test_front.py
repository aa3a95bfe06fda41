"""The front door's HTTP/1.1 (daemon/web/front/): keep-alive, pipelining, chunked
bodies, Expect: 100-continue, the head's limits, answers before the body, and the byte
budget the ingest-side listeners share — over the daemon's real socket and port."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from daemon.core.entry import ParsedEvent
from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.core.model import Namespace
from daemon.core.ndjson import ndjson_slices
from daemon.core.parse import LineReport
from daemon.metrics import Metrics
from daemon.pipeline.admission import Admission
from daemon.pipeline.queue import EventQueue
from daemon.web.front.pacer import Pacer
from daemon.web.front.server import ByteBudget
from daemon.web.ingest import SLICE_EVENTS, Intake
from tests.support.daemon import InProcessDaemon, StartDaemon
from tests.support.scrape import settle

pytestmark = pytest.mark.e2e


def connect(daemon: InProcessDaemon, via: str = "tcp") -> socket.socket:
    if via == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(daemon.socket_path)
    else:
        sock = socket.create_connection(("127.0.0.1", daemon.ingest_port))
    sock.settimeout(10)
    return sock


def post(token: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST /v1/token/{token}/events HTTP/1.1", "Host: x", *headers]
    if not any(h.lower().startswith(("transfer-encoding", "content-length")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Responses:
    """Reads whole responses (Content-Length framed) off one connection, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def next(self) -> tuple[int, dict[str, str], Any]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"connection closed; had {self.buffer[:200]!r}"
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            assert self._fill(), "connection closed mid-body"
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        body, self.buffer = rest[:length], rest[length:]
        status = int(status_line.split()[1])
        return status, headers, json.loads(body) if length else None

    def closed(self) -> bool:
        return not self.buffer and not self._fill()


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> InProcessDaemon:
    return start_daemon({"server": {"cache": {"events": {"time_window_sec": 3600}}}})


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_keep_alive_and_pipelining_answer_in_order(daemon: InProcessDaemon, via: str) -> None:
    with connect(daemon, via) as sock:
        reader = Responses(sock)
        sock.sendall(post("k", b'{"n": 1}'))
        assert reader.next()[0] == 202
        # Three requests in one write, the middle one refused at its head.
        sock.sendall(post("k", b'{"n": 2}') + post("x" * 2000, b"{}") + post("k", b'{"n": 3}'))
        answers = [reader.next() for _ in range(3)]
        assert [a[0] for a in answers] == [202, 400, 202]
        assert "token_id" in answers[1][2]["message"]
        assert all("connection" not in a[1] for a in answers)
    settle(daemon)
    assert daemon.query(namespace="token", ids="k")["total_events"] == 3


def test_chunked_bodies_in_pieces(daemon: InProcessDaemon) -> None:
    with connect(daemon) as sock:
        reader = Responses(sock)
        sock.sendall(post("c", b"", "Transfer-Encoding: chunked"))
        for piece in (b'[{"a"', b": 1}, ", b'{"a": 2}]'):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        status, _, doc = reader.next()
        assert (status, doc["accepted"]) == (202, 2)


def test_expect_100_continue(daemon: InProcessDaemon) -> None:
    with connect(daemon) as sock:
        reader = Responses(sock)
        sock.sendall(post("e", b"", "Expect: 100-continue", "Content-Length: 8"))
        interim = sock.recv(64)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b'{"e": 1}')
        assert reader.next()[0] == 202
        # A request refused at its head gets its final answer, not a 100.
        sock.sendall(post("e" * 2000, b"", "Expect: 100-continue", "Content-Length: 2"))
        assert reader.next()[0] == 400
        sock.sendall(b"{}")  # what a client sends anyway is read and let go
        sock.sendall(post("e", b'{"e": 2}'))
        assert reader.next()[0] == 202


def test_a_body_refused_at_its_head_is_let_go_and_the_connection_kept(
    daemon: InProcessDaemon,
) -> None:
    with connect(daemon) as sock:
        reader = Responses(sock)
        refused = post("k", b"{}").replace(b"POST", b"PUT", 1)
        sock.sendall(refused + post("k", b'{"after": 1}'))
        status, headers, _ = reader.next()
        assert status == 405 and headers["allow"] == "POST"
        assert reader.next()[0] == 202


def test_http_1_0_and_connection_close_end_the_connection(daemon: InProcessDaemon) -> None:
    for request in (
        post("k", b"{}").replace(b"HTTP/1.1", b"HTTP/1.0", 1),
        post("k", b"{}", "Connection: close"),
    ):
        with connect(daemon) as sock:
            reader = Responses(sock)
            sock.sendall(request)
            status, headers, _ = reader.next()
            assert status == 202 and headers["connection"] == "close"
            assert reader.closed()


@pytest.mark.parametrize(
    ("request_bytes", "words"),
    ids=["long-header", "large-head", "long-target", "not-http", "two-lengths"],
    argvalues=[
        (post("k", b"{}", "X-Big: " + "b" * 9000), "exceeds 8190 bytes"),
        (post("k", b"{}", *(f"X-{n}: " + "v" * 8000 for n in range(9))), "exceed 65536"),
        (post("k" * 17000, b"{}"), "target exceeds 16384"),
        (b"\x16\x03\x01 not http\r\n\r\n", "bad request"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", ""),
    ],
)
def test_what_cannot_be_read_is_a_json_400_and_the_end(
    daemon: InProcessDaemon, request_bytes: bytes, words: str
) -> None:
    with connect(daemon) as sock:
        reader = Responses(sock)
        sock.sendall(request_bytes)
        status, headers, doc = reader.next()
        assert status == 400 and headers["connection"] == "close"
        assert words in doc["message"] and doc["message"]
        assert reader.closed()


def test_a_body_waits_for_room_in_the_byte_budget(start_daemon: StartDaemon) -> None:
    """With room for 100 bytes of bodies, a second body waits (unread) while a first of
    80 is under way, and is answered once the first is."""
    daemon = start_daemon({"sidecar": {"ingest": {"inflight_bytes": 100}}})
    first_body = b'{"first": "' + b"x" * 67 + b'"}'
    assert len(first_body) == 80
    second_request = post("two", b'{"second": "' + b"y" * 30 + b'"}')  # 44 bytes of body
    with connect(daemon) as first, connect(daemon, "unix") as second:
        first_reader, second_reader = Responses(first), Responses(second)
        first.sendall(post("one", first_body)[:-40])  # the head and half the body
        time.sleep(0.3)  # read by the daemon: the first holds its 80 bytes
        second.sendall(second_request[:-44])  # the head: no room for its body
        time.sleep(0.3)
        second.sendall(second_request[-44:])  # not read while it waits
        second.settimeout(0.5)
        with pytest.raises(TimeoutError):
            second.recv(1)
        first.sendall(first_body[-40:])
        assert first_reader.next()[0] == 202
        second.settimeout(10)
        assert second_reader.next()[0] == 202


class Waiter:
    """A connection as the budget sees one: told when its body may be read."""

    def __init__(self) -> None:
        self.granted_count = 0

    def granted(self) -> None:
        self.granted_count += 1


def test_byte_budget_grants_in_turn_and_lets_a_large_body_through_alone() -> None:
    budget = ByteBudget(100)
    a, b, c, big = Waiter(), Waiter(), Waiter(), Waiter()
    assert budget.reserve(a, 60)  # type: ignore[arg-type]
    assert not budget.reserve(b, 50)  # type: ignore[arg-type]
    assert not budget.reserve(c, 10)  # type: ignore[arg-type]  # behind b: in turn
    budget.release(a)
    assert (b.granted_count, c.granted_count, budget.used) == (1, 1, 60)
    assert not budget.reserve(big, 500)  # type: ignore[arg-type]
    budget.release(b)
    assert big.granted_count == 0
    budget.release(c)
    assert big.granted_count == 1 and budget.used == 500  # alone, over the budget
    budget.release(big)
    assert budget.used == 0 and not budget.held and not budget.waiting
    # A connection gone while waiting leaves nothing behind.
    assert budget.reserve(a, 90)  # type: ignore[arg-type]
    assert not budget.reserve(b, 90)  # type: ignore[arg-type]
    budget.release(b)
    budget.release(a)
    assert b.granted_count == 1 and budget.used == 0 and not budget.waiting
    # take(): room now or never; never ahead of a waiter, and never waits itself.
    assert budget.take("copy", 60) and not budget.take("other copy", 50)
    assert not budget.reserve(b, 50)  # type: ignore[arg-type]
    assert not budget.take("small copy", 1)  # b waits: a copy does not pass it
    budget.release("copy")
    assert b.granted_count == 2 and budget.used == 50
    budget.release(b)
    assert budget.used == 0 and not budget.held


def test_admission_in_slices_yields_between_slices_and_counts_as_one_submit() -> None:
    """A large request is admitted SLICE events at a time, the loop free in between;
    what it counts is what one submit() of the same events counts."""
    events = [ParsedEvent(Namespace.TOKEN, f"id-{n % 7}", original="{}") for n in range(1234)]

    def admission() -> Admission:
        return Admission(
            EventQueue(10_000, 2), RateLimiters(100, 60), LimitedCounter(), Metrics("test")
        )

    whole = admission().submit(events)
    steps = admission().submit_in_slices(events, 500)
    yields = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            sliced = done.value
            break
        yields += 1
    assert yields == 3  # 500 + 500 + 234
    assert sliced == whole and (whole.accepted, whole.rate_limited) == (700, 534)


def intake() -> Intake:
    admission = Admission(
        EventQueue(10_000, 2), RateLimiters(100, 60), LimitedCounter(), Metrics("test")
    )
    return Intake(admission, Metrics("test"), 1 << 20, 10_000, True, 10_000, 10.0)


def steps_of(work: Any) -> tuple[int, Any]:
    """Run a sliced answer to its end: (how many times it yielded, its answer)."""
    yields = 0
    while True:
        try:
            next(work)
        except StopIteration as done:
            return yields, done.value
        yields += 1


def test_ndjson_is_sliced_by_lines_invalid_ones_included() -> None:
    """A body of invalid lines gives no event, yet each costs its parse and its message:
    slices count lines, so 1,234 of them take three turns of the loop, not one."""
    body = b"\n".join([b'{"a":"cut short'] * 1234)
    yields, answer = steps_of(intake().ndjson_events(body, {}))
    assert yields == 3
    doc = json.loads(answer.body)
    assert (answer.status, doc["invalid"]) == (202, 1234)
    report = LineReport()
    slices = list(ndjson_slices(body, 100, report, 500))
    assert len(slices) == 3 and [list(s) for s in slices] == [[], [], []]
    assert report.invalid == 1234
    # Line numbers run on across slices.
    numbers = LineReport()
    line = b'{"namespace": "token", "id": "a", "original": {}}\n'
    events = [e for piece in ndjson_slices(line * 500 + b"x", 100, numbers, 500) for e in piece]
    assert len(events) == 500 and [e.line for e in numbers.errors] == [501]


def test_the_pacer_takes_steps_in_turn_and_rests_after_a_long_one() -> None:
    """The ingest side's steps run one per turn of the loop; after one that held the loop
    longer than long_step_s, the next waits as long: a request that needs four turns of
    the loop (as the API's /healthz does on aiohttp) is served between two long steps."""
    loop = asyncio.new_event_loop()
    try:
        pacer = Pacer(loop, long_step_s=0.01, max_rest_s=1.0)
        order: list[str] = []
        done = loop.create_future()

        def step(name: str, hold_s: float) -> Callable[[], None]:
            def run() -> None:
                order.append(name)
                time.sleep(hold_s)  # holds the loop, as a parse that cannot be cut does
                if len(order) == 5:
                    done.set_result(None)

            return run

        def probe(turns: int) -> None:
            if turns:
                loop.call_soon(probe, turns - 1)
            else:
                order.append("probe")

        # Short steps take turns with the probe's, without a rest.
        pacer.add(step("short-1", 0))
        pacer.add(step("short-2", 0))
        loop.call_soon(probe, 4)
        pacer.add(step("long-1", 0.05))
        pacer.add(step("long-2", 0.05))
        loop.run_until_complete(done)
        assert order == ["short-1", "short-2", "long-1", "probe", "long-2"]
        assert pacer.rests == 1 and not pacer.steps
    finally:
        loop.close()


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_a_request_admitted_in_slices_is_answered_before_the_next(
    daemon: InProcessDaemon, via: str
) -> None:
    """More events than SLICE_EVENTS in one request: admitted in slices; a request
    pipelined behind it (even one refused at its head) is answered after it."""
    count = SLICE_EVENTS * 2 + 7
    lines = b"\n".join(
        json.dumps({"namespace": "token", "id": f"s{n % 3}", "original": {"n": n}}).encode()
        for n in range(count)
    )
    big_ndjson = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(lines)
    ) + lines
    big_array = post("arr", json.dumps([{"n": n} for n in range(SLICE_EVENTS + 1)]).encode())
    with connect(daemon, via) as sock:
        reader = Responses(sock)
        sock.sendall(big_ndjson + post("after", b'{"a": 1}') + post("x" * 2000, b"{}"))
        sock.sendall(big_array + post("after", b'{"a": 2}'))
        answers = [reader.next() for _ in range(5)]
    assert [a[0] for a in answers] == [202, 202, 400, 202, 202]
    # Each id takes `size` (100) events an hour here; the rest is counted as limited.
    assert (answers[0][2]["accepted"], answers[0][2]["rate_limited"]) == (300, count - 300)
    assert (answers[3][2]["accepted"], answers[3][2]["rate_limited"]) == (100, SLICE_EVENTS - 99)
    settle(daemon)
    assert daemon.query(namespace="token", ids="after")["total_events"] == 2
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == (
        count + SLICE_EVENTS + 1 + 2
    )


def test_bytes_that_are_not_http_behind_a_sliced_request_are_refused_after_it(
    daemon: InProcessDaemon,
) -> None:
    lines = b"\n".join(
        json.dumps({"namespace": "token", "id": "s", "original": {"n": n}}).encode()
        for n in range(SLICE_EVENTS + 1)
    )
    big = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(lines)
    with connect(daemon) as sock:
        reader = Responses(sock)
        sock.sendall(big + lines + b"\x16\x03\x01 not http\r\n\r\n")
        assert reader.next()[0] == 202
        status, headers, doc = reader.next()
        assert (status, headers["connection"]) == (400, "close") and doc["message"]
        assert reader.closed()


def test_a_later_requests_head_is_due_within_the_header_timeout(
    start_daemon: StartDaemon,
) -> None:
    """Between requests the keep-alive timeout applies; once a later request's first byte
    has come, its head is due within the header timeout, as the first one's is."""
    daemon = start_daemon({"sidecar": {"ingest": {"header_read_timeout_seconds": 1}}})
    with connect(daemon) as sock:
        reader = Responses(sock)
        sock.sendall(post("k", b"{}"))
        assert reader.next()[0] == 202
        time.sleep(1.5)  # idle, well past the header timeout: not cut
        sock.sendall(post("k", b"{}"))
        assert reader.next()[0] == 202
        started = time.monotonic()
        sock.sendall(b"POST /v1/token/k/events HTTP/1.1\r\nHost: x\r\n")  # and no more
        assert reader.closed()
        assert time.monotonic() - started < 5  # the header timeout's cut, not keep-alive's


def test_a_large_tee_copy_is_cached_in_the_pacers_turn_and_its_client_waits_for_it() -> None:
    """A copy over INLINE_BODY_BYTES is parsed in a step of the shared pacer, not in the
    callback that relayed the answer; the exchange's `then` (its client's next request)
    runs once it is done. A small copy is cached at once."""
    from daemon.core.tokenfrom import TokenFinder
    from daemon.web.front.routes import INLINE_BODY_BYTES
    from daemon.web.tee import Tee, TeeBuffer

    async def scenario() -> None:
        pacer = Pacer(asyncio.get_running_loop())
        copies = intake()
        tee = Tee(copies, TokenFinder(["query:token"]), pacer, ByteBudget(1 << 24))
        done: list[str] = []
        large = json.dumps([{"n": n, "pad": "x" * 100} for n in range(1200)]).encode()
        assert len(large) > INLINE_BODY_BYTES
        for name, body in (("large", large), ("small", b'{"n": 1}')):
            buffer = TeeBuffer(1 << 21)
            buffer.add(body)
            buffer.complete = True
            tee.cache(buffer, "/e", {"token": name}, {}, functools.partial(done.append, name))

        def teed() -> float | None:
            return copies.metrics.registry.get_sample_value(
                "events_cache_proxy_tee_total", {"outcome": "teed"}
            )

        assert done == ["small"] and teed() == 1  # the large one waits for its turn
        for _ in range(10):
            await asyncio.sleep(0)
        assert done == ["small", "large"] and teed() == 2 and not pacer.steps

    asyncio.run(scenario())
