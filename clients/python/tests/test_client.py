"""What needs no sidecar: calls that never raise, configuration from the environment.

Everything that needs one (batching, answers, outages, shutdown) is tested against the
real daemon: tests/test_live.py here, and the repository's tests/test_clients.py, which
drives this client through tools/drive.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from events_cache_client import Client, Settings
from events_cache_client._core import Core, token_item
from events_cache_client._settings import DEFAULT_SOCKET


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


def _core(**options: Any) -> Core:
    return Core(Settings(socket="/nonexistent/ingest.sock", **options).resolve())


def test_a_413_for_events_splits_by_count_and_keeps_the_byte_limit() -> None:
    """The sidecar's answer alone, no sidecar needed: its bound in the message is taken
    as the event cap; a message that does not say it halves the batch."""
    core = _core()
    batch = [b'{"n":%d}' % n for n in range(23)]
    said = (
        b'{"message": "request holds 23 events; sidecar.ingest.max_events_per_request'
        b' is 5: split it", "limit": "events"}'
    )
    pieces = core.answered(batch, 413, said)
    assert [len(p) for p in pieces] == [5, 5, 5, 5, 3]
    assert [line for p in pieces for line in p] == batch
    assert (core.limit_bytes, core.limit_events) == (1_048_576, 5)
    # The bound as a number ("max") wins over the message; an older sidecar sends none.
    core = _core()
    said = b'{"message": "too many, max is 9", "limit": "events", "max": 4}'
    assert [len(p) for p in core.answered(batch, 413, said)] == [4, 4, 4, 4, 4, 3]
    assert core.limit_events == 4
    core = _core()
    pieces = core.answered(batch, 413, b'{"message": "too many", "limit": "events"}')
    assert [len(p) for p in pieces] == [11, 11, 1]
    assert (core.limit_bytes, core.limit_events) == (1_048_576, 11)
    # later batches are built under the cap
    items = [token_item("k", b"{}", None, None, 0.0) for _ in range(30)]
    assert [len(b) for b in core.batches(items)] == [11, 11, 8]


def test_a_413_without_a_limit_is_for_bytes() -> None:
    """An older sidecar names no limit: the byte limit is halved as before."""
    for answer in (b'{"message": "too big"}', b"not json", b'{"message": "x", "limit": "bytes"}'):
        core = _core()
        batch = [b"x" * 99 for _ in range(10)]  # 1,000 bytes with the newlines
        assert [len(p) for p in core.answered(batch, 413, answer)] == [5, 5]
        assert (core.limit_bytes, core.limit_events) == (500, 500), answer


def test_an_event_refused_alone_is_dropped() -> None:
    """Splitting ends at one event, whatever the measure: it is dropped and counted."""
    core = _core()
    for answer in (b'{"message": "m", "limit": "events"}', b'{"message": "m"}'):
        assert core.answered([b"{}"], 413, answer) == []
    stats = core.stats()
    assert (stats.dropped_oversized, stats.too_large, stats.requests) == (2, 2, 2)
    assert stats.last_errors == ["event of 3 bytes dropped: m"] * 2
