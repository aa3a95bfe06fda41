"""The threaded client against a stand-in sidecar: batching, answers, outages, shutdown."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from conftest import accept_all, wait_for

from events_cache_client import Client, Settings
from events_cache_client._settings import DEFAULT_SOCKET

BODY = json.dumps({"event_type": "pageview", "pad": "x" * 900}).encode()


def test_events_arrive_in_batches_within_the_flush_interval(stub: Any) -> None:
    s = stub()
    client = Client(socket=s.socket_path)
    for n in range(1200):
        client.incoming(f"k{n % 3}", BODY)
    wait_for(lambda: client.stats().accepted == 1200)
    assert len(s.bodies) >= 3  # 500 events a batch at most
    assert all(body.count(b"\n") < 500 for body in s.bodies)
    client.incoming("k", BODY)  # one event alone waits for the interval, not for more
    started = time.monotonic()
    wait_for(lambda: client.stats().accepted == 1201)
    assert time.monotonic() - started < 1.0
    assert client.close()
    stats = client.stats()
    assert (stats.sent, stats.dropped, stats.buffered) == (1201, 0, 0)


def test_batches_stay_under_max_request_bytes(stub: Any) -> None:
    s = stub()
    client = Client(socket=s.socket_path, max_request_bytes=20_000)
    for _ in range(300):
        client.incoming("k", BODY)
    assert client.close()
    assert client.stats().accepted == 300
    assert max(len(body) for body in s.bodies) <= 20_000
    assert client.stats().too_large == 0


def test_a_413_splits_the_batch_in_halves_and_lowers_the_limit(stub: Any) -> None:
    def small(body: bytes) -> tuple[int, dict[str, Any]]:
        if len(body) > 10_000:
            return 413, {"message": "request body exceeds sidecar.ingest.max_request_bytes"}
        return accept_all(body)

    s = stub(small)
    client = Client(socket=s.socket_path)
    for _ in range(400):
        client.incoming("k", BODY)
    client.incoming("k", b'{"big": "' + b"x" * 20_000 + b'"}')  # over any batch the stub takes
    assert client.close()
    stats = client.stats()
    assert stats.accepted == 400
    assert stats.dropped_oversized == 1
    assert stats.too_large >= 1
    assert "event of" in stats.last_errors[-1]
    assert [json.loads(line)["id"] for b in s.bodies for line in b.split(b"\n")].count("k") >= 400
    assert client._core.limit <= 10_000  # later batches are built small at once


def test_an_event_over_the_clients_own_limit_is_dropped_as_oversized(stub: Any) -> None:
    s = stub()
    client = Client(socket=s.socket_path, max_request_bytes=1000)
    client.incoming("k", BODY)
    client.incoming("k", b"{}")
    assert client.close()
    stats = client.stats()
    assert (stats.accepted, stats.dropped_oversized) == (1, 1)


def test_invalid_lines_are_counted_with_their_text(stub: Any) -> None:
    def answer(body: bytes) -> tuple[int, dict[str, Any]]:
        n = body.count(b"\n") + 1
        return 202, {
            "accepted": n - 1,
            "rate_limited": 0,
            "dropped": 0,
            "invalid": 1,
            "errors": [{"line": 2, "message": '"id" must be a non-empty string'}],
        }

    s = stub(answer)
    client = Client(socket=s.socket_path)
    client.incoming("k", b"{}")
    client.incoming("", b'{"n": 2}')
    assert client.close()
    stats = client.stats()
    assert (stats.sent, stats.accepted, stats.invalid) == (2, 1, 1)
    assert stats.last_errors[-1].startswith('invalid line: "id" must be a non-empty string: ')
    assert '"id":""' in stats.last_errors[-1]


def test_rate_limited_and_sidecar_drops_are_counted(stub: Any) -> None:
    def answer(body: bytes) -> tuple[int, dict[str, Any]]:
        n = body.count(b"\n") + 1
        return 202, {"accepted": 1, "rate_limited": n - 2, "dropped": 1, "invalid": 0, "errors": []}

    s = stub(answer)
    client = Client(socket=s.socket_path)
    for _ in range(10):
        client.incoming("k", b"{}")
    assert client.close()
    stats = client.stats()
    assert (stats.accepted, stats.rate_limited, stats.dropped_queue_full) == (1, 8, 1)


def test_other_answers_are_rejections(stub: Any) -> None:
    s = stub(lambda body: (503, {"message": "the events cache is disabled"}))
    client = Client(socket=s.socket_path)
    client.incoming("k", b"{}")
    assert client.close()
    stats = client.stats()
    assert stats.dropped_rejected == 1
    assert stats.last_errors == ["sidecar answered 503: the events cache is disabled"]


def test_the_sidecar_away_costs_the_application_nothing_and_delivery_resumes(
    stub: Any, tmp_path: Any
) -> None:
    s = stub()
    s.stop()  # the socket is gone
    client = Client(socket=s.socket_path, max_backoff_s=0.2)
    slowest = 0.0
    for _ in range(2000):
        started = time.perf_counter()
        client.incoming("k", BODY)
        slowest = max(slowest, time.perf_counter() - started)
    assert client.flush(5)
    assert slowest < 0.05
    assert client.stats().dropped_unavailable == 2000
    assert "sidecar unavailable" in client.stats().last_errors[0]
    s.start()  # the same socket path again
    deadline = time.monotonic() + 5
    while client.stats().accepted == 0 and time.monotonic() < deadline:
        client.incoming("k", b"{}")
        time.sleep(0.01)
    assert client.stats().accepted > 0
    assert client.close()


def test_a_restarted_sidecar_is_reached_on_a_fresh_connection(stub: Any) -> None:
    s = stub()
    client = Client(socket=s.socket_path)
    client.incoming("k", b"{}")
    assert client.flush()
    s.stop()
    s.start()  # the keep-alive connection is dead: the first post retries on a new one
    client.incoming("k", b"{}")
    assert client.close()
    assert (client.stats().accepted, client.stats().dropped) == (2, 0)


def test_a_full_buffer_drops_and_counts(stub: Any) -> None:
    s = stub()
    client = Client(socket=s.socket_path, buffer_events=10, flush_interval_s=60)
    for _ in range(25):
        client.incoming("k", b"{}")
    stats = client.stats()
    assert (stats.dropped_buffer_full, stats.buffered) == (15, 10)
    big = Client(socket=s.socket_path, buffer_bytes=4500, flush_interval_s=60)
    for _ in range(10):
        big.incoming("k", BODY)
    assert big.stats().dropped_buffer_full == 6  # ~1 KB each
    assert client.close() and big.close()
    assert client.stats().accepted == 10


def test_close_flushes_and_later_calls_are_counted(stub: Any) -> None:
    s = stub()
    client = Client(socket=s.socket_path, flush_interval_s=30)
    for _ in range(50):
        client.incoming("k", b"{}")
    assert client.close(5)
    assert client.stats().accepted == 50
    client.incoming("k", b"{}")
    client.processed("d", {}, success={})
    assert client.close() is True  # twice is fine
    assert client.stats().dropped_closed == 2


def test_close_times_out_when_the_sidecar_hangs(stub: Any) -> None:
    def hang(body: bytes) -> tuple[int, dict[str, Any]]:
        time.sleep(1.5)
        return accept_all(body)

    s = stub(hang)
    client = Client(socket=s.socket_path, timeout_s=1.0)
    client.incoming("k", b"{}")
    started = time.monotonic()
    assert client.close(0.3) is False
    assert time.monotonic() - started < 1.0


def test_calls_never_raise() -> None:
    client = Client(socket="/nonexistent/ingest.sock")
    client.incoming("k", {"not json": {1, 2}})
    client.incoming("k", {"nan": float("nan")})
    client.processed("d", object(), success={})
    client.incoming(None, b"{}")  # type: ignore[arg-type]
    assert client.flush(2)
    stats = client.stats()
    assert stats.dropped_unencodable == 4
    assert "cannot encode" in stats.last_errors[0]
    client.close()


def test_http_url_transport(stub: Any) -> None:
    s = stub(unix=False)
    client = Client(url=s.url)
    client.processed("pg", {"a": 1}, success={"t": 1}, token_id="js.k")
    assert client.close()
    assert s.lines()[0]["namespace"] == "destination"


def test_configuration_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.delenv("EVENTS_CACHE_SOCKET", raising=False)
    monkeypatch.delenv("EVENTS_CACHE_URL", raising=False)
    assert Settings().resolve().socket == DEFAULT_SOCKET
    env = {"EVENTS_CACHE_URL": "http://127.0.0.1:8001"}
    assert Settings().resolve(env).url == "http://127.0.0.1:8001"
    env["EVENTS_CACHE_SOCKET"] = "/run/x.sock"
    assert Settings().resolve(env).socket == "/run/x.sock"  # the socket is preferred
    assert Settings(url="http://h:1").resolve(env).url == "http://h:1"  # arguments first
    with pytest.raises(ValueError):
        Settings(url="https://h:1").resolve()
    with pytest.raises(ValueError):
        Settings(max_request_bytes=0).resolve()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_sends_on_its_own(stub: Any) -> None:
    s = stub()
    client = Client(socket=s.socket_path)
    client.incoming("parent", b"{}")
    assert client.flush()
    pid = os.fork()
    if pid == 0:  # the child: a new sender thread, its own counters
        client.incoming("child", b"{}")
        ok = client.close(5) and client.stats().accepted == 1
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.close()
    assert sorted(line["id"] for line in s.lines()) == ["child", "parent"]
