"""A reference for P6: the simplest aiohttp reverse proxy, to tell aiohttp's own cost of
proxying from the tee proxy's.

It reads the body whole, forwards method, path, query, headers and body with one pooled
ClientSession (no decompression), and answers with the upstream's status, headers and
body read whole: no hop-by-hop handling, no X-Forwarded-*, no streaming, no tee, no
metrics. uvloop, like the daemon. `python -m bench.bare_proxy --port N --upstream URL`.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import ClientSession, TCPConnector, web


async def _serve(port: int, upstream: str) -> None:
    session = ClientSession(connector=TCPConnector(limit=0), auto_decompress=False)

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with session.request(
            request.method, upstream + request.raw_path, headers=request.headers, data=body
        ) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), headers=answer.headers
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(args.port, args.upstream))
    else:
        uvloop.run(_serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
