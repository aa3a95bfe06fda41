"""What needs no sidecar: calls that never raise, configuration from the environment.

Everything that needs one (batching, answers, outages, shutdown) is tested against the
real daemon: tests/test_live.py here, and the repository's tests/test_clients.py, which
drives this client through tools/drive.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from events_cache_client import Client, Settings
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
