"""The live tail's frames as Server-Sent Events: `event: entry` (its `id:` the entry's
uid, its data the entry as the query answer shows it) and `event: gap`."""

from __future__ import annotations

from typing import Any

import orjson

from daemon.core.entry import answered


def gap_frame(missed: int | None, reason: str) -> bytes:
    """`event: gap`: events the reader did not get (None: unknown how many)."""
    data = orjson.dumps({"missed": missed, "reason": reason})
    return b"event: gap\r\ndata: " + data + b"\r\n\r\n"


ENTRY_HEAD = b"event: entry\r\nid: "


def entry_frame(namespace: str, id_: str, collection: str, entry: dict[str, Any]) -> bytes:
    """`event: entry` for one cached entry (as published, parsed), its data as the query
    answer shows it."""
    event = answered(entry, trusted=True)
    data = orjson.dumps(
        {"namespace": namespace, "id": id_, "collection": collection, "event": event}
    )
    return _frame(str(event["uid"]).encode(), data)


def answered_frame(namespace: str, id_: str, collection: str, uid: str, event: bytes) -> bytes:
    """`event: entry` for one entry already answered as JSON text (the backfill's)."""
    data = orjson.dumps(
        {
            "namespace": namespace,
            "id": id_,
            "collection": collection,
            "event": orjson.Fragment(event),
        }
    )
    return _frame(uid.encode(), data)


def _frame(uid: bytes, data: bytes) -> bytes:
    if b"\r" in uid or b"\n" in uid:
        uid = b""
    # Stored JSON text is written verbatim: a line break in it (CR LF, LF or CR) starts a
    # new data line. Bytes methods, not a regex: a frame is built for every entry watched,
    # and a regex split would cost more than the rest of the frame.
    if b"\n" not in data and b"\r" not in data:  # orjson writes none: stored text may
        return b"%b%b\r\ndata: %b\r\n\r\n" % (ENTRY_HEAD, uid, data)  # one copy of `data`
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = data.split(b"\n")
    return (
        ENTRY_HEAD
        + uid
        + b"\r\n"
        + b"".join(b"data: " + line + b"\r\n" for line in lines)
        + b"\r\n"
    )


class SseFraming:
    """`daemon.pipeline.tailhub.Framing` as Server-Sent Events."""

    def entry(self, namespace: str, id_: str, collection: str, entry: dict[str, Any]) -> bytes:
        """`event: entry`."""
        return entry_frame(namespace, id_, collection, entry)

    def gap(self, missed: int | None, reason: str) -> bytes:
        """`event: gap`."""
        return gap_frame(missed, reason)

    def uid_of(self, frame: bytes) -> bytes | None:
        """The `id:` of an `event: entry` frame."""
        if not frame.startswith(ENTRY_HEAD):
            return None
        return frame[len(ENTRY_HEAD) : frame.find(b"\r\n", len(ENTRY_HEAD))]
