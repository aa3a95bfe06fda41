"""The live tail's frames: stored JSON text with line breaks stays valid Server-Sent Events;
a stream drops the live frames its backfill sent; the switch's settling time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from daemon.pipeline.tailhub import TailHub
from daemon.pipeline.tailreader import Stream, TailFilter
from daemon.pipeline.tailswitch import CHECK_INTERVAL_S, SETTLE_SLACK_S, TailSwitch
from daemon.web.sse import SseFraming, entry_frame


def _data_of(frame: bytes) -> bytes:
    """What an SSE reader gets: the frame's data lines joined by LF (the SSE rule)."""
    assert frame.endswith(b"\r\n\r\n")
    lines = frame[:-4].split(b"\r\n")
    assert lines[0] == b"event: entry"
    data = [line.removeprefix(b"data: ") for line in lines if line.startswith(b"data: ")]
    assert len(data) == len(lines) - 2  # event, id and data lines only
    return b"\n".join(data)


@pytest.mark.parametrize("brk", ["\r\n", "\n", "\r", "\r\r\n\n"])
def test_a_line_break_in_stored_json_starts_a_data_line(brk: str) -> None:
    original = '{"a":' + brk + " [1," + brk + '2], "b": "x"}'
    entry = {"original": original, "uid": "u-1", "timestamp": "t", "token_id": "k"}
    frame = entry_frame("token", "k", "all", entry)
    # No bare CR or LF inside a line: each break became a line of its own.
    bare = frame.replace(b"\r\n", b"")
    assert b"\r" not in bare and b"\n" not in bare
    data = orjson.loads(_data_of(frame))
    assert data["event"]["original"] == orjson.loads(original)
    assert data["id"] == "k" and data["event"]["uid"] == "u-1"


def test_a_frame_without_line_breaks_is_one_data_line() -> None:
    entry = {"original": '{"event_type":"pageview"}', "uid": "u-2", "timestamp": "t"}
    frame = entry_frame("token", "k", "all", entry)
    assert frame.count(b"data: ") == 1
    assert frame.startswith(b"event: entry\r\nid: u-2\r\ndata: {")
    assert orjson.loads(_data_of(frame))["event"]["original"] == {"event_type": "pageview"}


def _entry(uid: str, n: int) -> dict[str, str]:
    return {"original": f'{{"n":{n}}}', "uid": uid, "timestamp": "t", "token_id": "k"}


async def test_a_stream_drops_the_live_frames_of_what_its_backfill_sent() -> None:
    """Queued before the backfill was read, or offered after: a frame whose uid the
    backfill sent is dropped, once; every other frame is kept, in order."""
    framing = SseFraming()
    stream = Stream(TailFilter("token", None, "all"), framing)
    frames = [framing.entry("token", "k", "all", _entry(f"u{n}", n)) for n in range(6)]
    stream.offer([frames[0]], len(frames[0]))  # published while the backfill was being read
    stream.offer([frames[1]], len(frames[1]))
    stream.skip({b"u1", b"u3"})
    for frame in frames[2:]:
        stream.offer([frame], len(frame))
    stream.offer(
        [frames[3]], len(frames[3])
    )  # the same uid again is not the backfill's (each is published once)
    stream.offer([framing.gap(2, "slow")], len(framing.gap(2, "slow")))
    chunk = await stream.next_chunk()
    assert chunk == frames[0] + frames[2] + frames[4] + frames[5] + frames[3] + framing.gap(
        2, "slow"
    )
    assert [framing.uid_of(f) for f in frames[:2]] == [b"u0", b"u1"]
    assert framing.uid_of(framing.gap(None, "x")) is None


async def test_the_switch_says_how_long_until_every_sidecar_publishes() -> None:
    """Off: a whole look (1 s) and its slack; on since t: what is left of it."""
    now = [100.0]

    class Watchers:
        async def watch(self, ttl_s: float) -> None:
            pass

    switch = TailSwitch(Watchers(), None, lambda: 1, clock=lambda: now[0])  # type: ignore[arg-type]
    assert switch.settle_s() == CHECK_INTERVAL_S + SETTLE_SLACK_S
    await switch.announce()
    assert switch.settle_s() == CHECK_INTERVAL_S + SETTLE_SLACK_S
    now[0] += 1.0
    assert switch.settle_s() == SETTLE_SLACK_S
    await switch.announce()  # still on: the time it turned on stays
    now[0] += 10
    assert switch.settle_s() == 0.0


class _Sink:
    """A sink that records what the hub hands it."""

    def __init__(self, tail_filter: TailFilter) -> None:
        self.filter = tail_filter
        self.got: list[tuple[str, str, str, list[int]]] = []
        self.closed = False

    def take(self, namespace: str, id_: str, collection: str, entries: list[object]) -> None:
        self.got.append((namespace, id_, collection, [e["n"] for e in entries]))  # type: ignore[index]

    def lost(self, reason: str) -> None:
        raise AssertionError(reason)

    def close(self) -> None:
        self.closed = True


def test_sinks_get_the_entries_of_their_ids_and_collection_only() -> None:
    """Waits ride on the hub: routed by id (and namespace-wide), detached cleanly, and
    closed when the hub stops; they count as watchers for the switch."""
    hub = TailHub(_never_subscribed, None, 4, SseFraming())  # type: ignore[arg-type]
    one = _Sink(TailFilter("token", frozenset({"a"}), "all"))
    both = _Sink(TailFilter("token", frozenset({"a", "b"}), "error"))
    every = _Sink(TailFilter("token", None, "all"))
    other = _Sink(TailFilter("destination", None, "all"))
    for sink in (one, both, every, other):
        assert hub.attach(sink)
    assert hub.watching == 4 and hub.count == 0
    e = [{"n": n} for n in range(4)]
    hub.dispatch(orjson.dumps([["token", "a", [e[0], e[1]], [e[1]]], ["token", "b", [e[2]], []]]))
    assert one.got == [("token", "a", "all", [0, 1])]
    assert both.got == [("token", "a", "error", [1])]
    assert every.got == [("token", "a", "all", [0, 1]), ("token", "b", "all", [2])]
    assert other.got == []
    hub.detach(one)
    hub.detach(one)  # twice: nothing more
    hub.dispatch(orjson.dumps([["token", "a", [e[3]], []]]))
    assert one.got == [("token", "a", "all", [0, 1])]
    assert every.got[-1] == ("token", "a", "all", [3])
    assert hub.watching == 3
    hub.stop()
    assert every.closed and both.closed and other.closed and not one.closed
    assert not hub.attach(_Sink(TailFilter("token", None, "all")))


async def _never_subscribed() -> AsyncIterator[bytes]:
    raise AssertionError("not subscribed in this test")
    yield b""


async def test_streams_get_the_frames_of_what_they_watch_only() -> None:
    """Found by what they watch (every id of a namespace and collection, or named ids):
    each stream gets its entries' frames once, in order; a closed one gets no more."""
    hub = TailHub(_never_subscribed, None, 8, SseFraming())  # type: ignore[arg-type]
    every = hub.open(TailFilter("token", None, "all"))
    named = hub.open(TailFilter("token", frozenset({"a", "c"}), "all"))
    errors = hub.open(TailFilter("token", frozenset({"a"}), "error"))
    other = hub.open(TailFilter("destination", None, "all"))
    assert every and named and errors and other and hub.count == 4
    e = [_entry(f"u{n}", n) for n in range(5)]
    hub.dispatch(orjson.dumps([["token", "a", [e[0], e[1]], [e[1]]], ["token", "b", [e[2]], []]]))
    hub.dispatch(orjson.dumps([["token", "c", [e[3]], []]]))

    async def uids(stream: Stream) -> list[bytes]:
        chunk = await stream.next_chunk()
        assert chunk is not None
        return [line[4:] for line in chunk.split(b"\r\n") if line.startswith(b"id: ")]

    assert await uids(every) == [b"u0", b"u1", b"u2", b"u3"]
    assert await uids(named) == [b"u0", b"u1", b"u3"]
    assert await uids(errors) == [b"u1"]
    hub.close(named)
    hub.close(named)  # twice: nothing more
    hub.dispatch(orjson.dumps([["token", "a", [e[4]], []], ["destination", "d", [e[4]], []]]))
    assert await uids(every) == [b"u4"]
    assert await uids(other) == [b"u4"]
    assert await named.next_chunk() is None and hub.count == 3


async def test_a_batch_beyond_a_slow_readers_bound_is_counted_missed() -> None:
    """Frames offered together are queued while they fit, the rest counted as missed."""
    framing = SseFraming()
    stream = Stream(TailFilter("token", None, "all"), framing)
    big = {"original": orjson.dumps({"x": "y" * 300_000}).decode(), "uid": "u", "timestamp": "t"}
    frames = [framing.entry("token", "k", "all", big) for _ in range(5)]
    stream.offer(frames, sum(map(len, frames)))  # 5 x 300 KB against 1 MiB
    chunk = await stream.next_chunk()
    assert chunk is not None and chunk.startswith(b"".join(frames[:3]))
    assert chunk.endswith(framing.gap(2, "the reader was too slow"))
