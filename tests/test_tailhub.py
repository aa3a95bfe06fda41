"""The live tail's frames: stored JSON text with line breaks stays valid Server-Sent Events."""

from __future__ import annotations

import orjson
import pytest

from daemon.web.sse import entry_frame


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
