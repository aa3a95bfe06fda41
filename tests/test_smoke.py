"""The shortest path through the product: one event in, the same event out."""

from __future__ import annotations

from tests.support.daemon import StartDaemon


def test_event_in_event_out(start_daemon: StartDaemon) -> None:
    daemon = start_daemon()
    reply = daemon.post_token("key-1", '{"event_type": "pageview"}')
    assert reply.status == 202
    assert reply.json == {
        "accepted": 1,
        "rate_limited": 0,
        "dropped": 0,
        "invalid": 0,
        "errors": [],
    }
    daemon.wait_drained()
    answer = daemon.query(namespace="token", ids="key-1")
    assert answer["total_events"] == 1
    assert answer["events"][0]["original"] == {"event_type": "pageview"}
    assert daemon.stop() == 0
