"""The baseline of P1: a bare aiohttp server that only reads the body and answers 202.

Same routes, same transports and the same event loop (uvloop) as the daemon, no
middleware, no parsing: `python -m bench.bare --socket PATH --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

# The size of the daemon's answer to one event, so both send the same bytes.
ANSWER = b'{"accepted":1,"rate_limited":0,"dropped":0,"invalid":0,"errors":[]}'


async def _read_and_accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, status=202, content_type="application/json")


async def _serve(socket_path: str, port: int) -> None:
    app = web.Application(client_max_size=4 << 20)
    app.add_routes(
        [
            web.post("/v1/token/{token_id}/events", _read_and_accept),
            web.post("/v1/events", _read_and_accept),
        ]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if socket_path:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        await web.UnixSite(runner, socket_path).start()
    if port:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def launch(serve: Callable[[str, int], Coroutine[Any, Any, None]]) -> None:
    """Parse `--socket PATH --port N` and run `serve` on uvloop (the daemon's loop), so
    every baseline server has the daemon's process shape."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", default="")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.socket, args.port))
    else:
        uvloop.run(serve(args.socket, args.port))


def main() -> None:
    """Serve until killed."""
    launch(_serve)


if __name__ == "__main__":
    main()
