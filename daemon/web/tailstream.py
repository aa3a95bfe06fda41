"""The live tail: GET /api/v1/events/stream, Server-Sent Events.

Every event cached from then on by any sidecar sharing the Redis, filtered by
namespace, ids and status: `event: entry`, `id: <uid>`, `data: {"namespace", "id",
"collection", "event"}`; `event: gap` when the reader missed some; a comment line every
HEARTBEAT_S. At most `sidecar.api.max_streams` per pod (503 beyond). Streams end at
once when the daemon stops: the drain never waits for them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from daemon.core.model import RedisOperation
from daemon.core.wire import HEARTBEAT_S, STREAM_PATH
from daemon.pipeline.tailhub import Stream, TailFilter, TailHub
from daemon.pipeline.tailswitch import TailSwitch
from daemon.query.params import collection, ids, namespace
from daemon.store.client import StoreUnavailable
from daemon.web.auth import HEALTH, guarded
from daemon.web.responses import error_response

SEND_TIMEOUT_S = 30.0  # a reader that takes nothing for this long is cut off
COALESCE_S = 0.02  # a stream writes at most 50 times a second


@dataclass(frozen=True, slots=True)
class Tail:
    """What the stream handler needs: the hub of this pod and the writers' switch."""

    hub: TailHub
    switch: TailSwitch


TAIL = web.AppKey("tail", Tail)


@guarded(RedisOperation.TAIL)
async def stream(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/stream."""
    params = request.query
    watched = ids(params)
    tail_filter = TailFilter(
        namespace(params), frozenset(watched) if watched is not None else None, collection(params)
    )
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
        # The heartbeat's write is bounded by SEND_TIMEOUT_S: a reader that takes nothing
        # for that long is cut off there (its transport aborted), not on every write.
        response = EventSourceResponse(ping_interval=HEARTBEAT_S, send_timeout=SEND_TIMEOUT_S)
        await response.prepare(request)
        await _pump(response, opened)
        return response
    finally:
        tail.hub.close(opened)


async def _pump(response: EventSourceResponse, opened: Stream) -> None:
    """Write the stream's chunks until it closes or the reader goes away."""
    # The heartbeat task ends when a write fails (the reader left): end the stream too,
    # instead of waiting for the next event to find out.
    heartbeat = asyncio.ensure_future(response.wait())
    heartbeat.add_done_callback(lambda _: opened.close())
    try:
        await response.write(b": tailing\r\n\r\n")
        while (chunk := await opened.next_chunk()) is not None:
            await response.write(chunk)
            # Let what arrives meanwhile gather: one write for many batches, not each.
            await asyncio.sleep(COALESCE_S)
    except (ConnectionError, RuntimeError):  # RuntimeError: writing after the abort
        pass  # the reader left, or took nothing for SEND_TIMEOUT_S: nobody to tell
    finally:
        heartbeat.cancel()
        response.stop_streaming()


def add_tail_routes(app: web.Application, tail: Tail) -> None:
    """Serve the live tail on `app`."""
    app[TAIL] = tail
    app.router.add_get(STREAM_PATH, stream)
