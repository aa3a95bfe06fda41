"""The live tail: GET /api/v1/events/stream, Server-Sent Events.

Every event cached from then on by any sidecar sharing the Redis, filtered by
namespace, ids and status: `event: entry`, `id: <uid>`, `data: {"namespace", "id",
"collection", "event"}`; `event: gap` when the reader missed some; a comment line every
HEARTBEAT_S. At most `sidecar.api.max_streams` per pod (503 beyond). Streams end at
once when the daemon stops: the drain never waits for them.

A stream may begin with cached events (`last=N`, `since=`, or `Last-Event-ID` on a
reconnect: `daemon.query.backfill`), oldest first, then follow. Nothing that reached
the lists is lost between the two, and nothing is sent twice:

1. The stream is opened on the hub (subscribed) and the switch announced before
   anything is read; the backfill waits until the subscription is confirmed and every
   sidecar publishes (`TailSwitch.settle_s`: each looks once a second; at once when a
   stream was already open). From then on every entry written is published to it.
2. Then the lists are read. An entry written before the read is in the backfill (within
   its bounds); one written after it is published, and queued on the stream.
3. An entry written during the read may be in both: the stream drops the live frames
   of the uids the backfill sent (`Stream.skip`: by uid, not by order, so an entry
   whose uid is older than the last one backfilled, written late by another pod or
   writer, still comes through live).

A `Last-Event-ID` that is not a version 7 uid (one written before uids were
time-ordered) cannot say what came after it: it is ignored (the stream does `last` or
`since` as asked, or just follows) and the stream says so with an `event: gap`.
When the answers' bounds (`max_response_events`, `max_response_bytes`) cut the
backfill, an `event: gap` after it says so too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from daemon.core.model import RedisOperation
from daemon.core.wire import HEARTBEAT_S, STREAM_PATH
from daemon.pipeline.tailhub import TailHub
from daemon.pipeline.tailreader import Stream, TailFilter
from daemon.pipeline.tailswitch import TailSwitch
from daemon.query.params import StreamQuery, parse_stream
from daemon.query.service import QueryService
from daemon.store.client import StoreUnavailable
from daemon.web.auth import HEALTH, guarded
from daemon.web.responses import error_response
from daemon.web.sse import answered_frame, gap_frame

SEND_TIMEOUT_S = 30.0  # a reader that takes nothing for this long is cut off
COALESCE_S = 0.02  # a stream writes at most 50 times a second
SUBSCRIBE_WAIT_S = 5.0  # a backfill waits this long, at most, for the subscription
TAILING = b": tailing\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Tail:
    """What the stream handler needs: the hub of this pod and the writers' switch."""

    hub: TailHub
    switch: TailSwitch


TAIL = web.AppKey("tail", Tail)
# A reader gone before its stream began (a page left at once): nobody to answer, counted
# with nginx's "client closed request" rather than as a server error.
CLIENT_GONE = 499


@guarded(RedisOperation.TAIL)
async def stream(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/stream."""
    service = request.app[TAIL_READS]
    last_event_id = request.headers.get("Last-Event-ID", "")
    query = parse_stream(request.query, last_event_id, service.max_events)
    watched = frozenset(query.ids) if query.ids is not None else None
    tail_filter = TailFilter(query.namespace, watched, query.collection)
    tail = request.app[TAIL]
    opened = tail.hub.open(tail_filter)
    if opened is None:
        return error_response(
            503,
            f"too many live-tail streams on this sidecar (sidecar.api.max_streams = "
            f"{tail.hub.max_streams}); close one or ask another pod",
        )
    try:
        try:
            await tail.switch.announce()  # writers of every pod publish from now on
        except StoreUnavailable as e:
            # Redis is down: counted here; the subscription says so with a gap when it fails.
            request.app[HEALTH].failed(e, RedisOperation.TAIL)
        first = TAILING
        if query.backfills or query.unknown_anchor:
            first += await _backfill(tail, service, query, opened)
        if request.transport is None:  # the reader left while the backfill was read
            return web.Response(status=CLIENT_GONE)
        # The heartbeat's write is bounded by SEND_TIMEOUT_S: a reader that takes nothing
        # for that long is cut off there (its transport aborted), not on every write.
        response = EventSourceResponse(ping_interval=HEARTBEAT_S, send_timeout=SEND_TIMEOUT_S)
        await response.prepare(request)
        await _pump(response, opened, first)
        return response
    finally:
        tail.hub.close(opened)


async def _backfill(tail: Tail, service: QueryService, query: StreamQuery, opened: Stream) -> bytes:
    """The frames a stream begins with (see the module's docstring), oldest first."""
    frames = []
    if query.unknown_anchor:
        reason = "Last-Event-ID is not a time-ordered (version 7) uid: what followed it is unknown"
        frames.append(gap_frame(None, reason))
    if query.backfills:
        try:
            await asyncio.wait_for(tail.hub.subscribed.wait(), SUBSCRIBE_WAIT_S)
        except TimeoutError:
            reason = "the subscription was late: events cached meanwhile may be missing"
            frames.append(gap_frame(None, reason))
        await asyncio.sleep(tail.switch.settle_s())
        backfill = await service.backfill(query)
        opened.skip({e.uid.encode() for e in backfill.events})
        frames += [
            answered_frame(query.namespace, e.id, query.collection, e.uid, e.event)
            for e in backfill.events
        ]
        if backfill.cut:
            reason = "the backfill was cut at max_response_events or max_response_bytes"
            frames.append(gap_frame(None, reason))
    return b"".join(frames)


async def _pump(response: EventSourceResponse, opened: Stream, first: bytes) -> None:
    """Write `first`, then the stream's chunks until it closes or the reader goes away."""
    # The heartbeat task ends when a write fails (the reader left): end the stream too,
    # instead of waiting for the next event to find out.
    heartbeat = asyncio.ensure_future(response.wait())
    heartbeat.add_done_callback(lambda _: opened.close())
    try:
        await response.write(first)
        while (chunk := await opened.next_chunk()) is not None:
            await response.write(chunk)
            # Let what arrives meanwhile gather: one write for many batches, not each.
            await asyncio.sleep(COALESCE_S)
    except (ConnectionError, RuntimeError):  # RuntimeError: writing after the abort
        pass  # the reader left, or took nothing for SEND_TIMEOUT_S: nobody to tell
    finally:
        heartbeat.cancel()
        response.stop_streaming()


TAIL_READS = web.AppKey("tail_reads", QueryService)


def add_tail_routes(app: web.Application, tail: Tail, reads: QueryService) -> None:
    """Serve the live tail on `app`; its backfill read through `reads`."""
    app[TAIL] = tail
    app[TAIL_READS] = reads
    app.router.add_get(STREAM_PATH, stream)
