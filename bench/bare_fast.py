"""The baseline of P1fast: a raw asyncio protocol on httptools that answers 202 and
never looks at the body, the least a Python HTTP server on this loop can cost.

Same process shape as `bench/bare.py` (uvloop, a Unix socket and a loopback port,
`ready` on stdout): `python -m bench.bare_fast --socket PATH --port N`. It answers the
same JSON body with only the headers HTTP/1.1 needs to frame it; keep-alive and
pipelining come from the parser (each answer is written as its request completes).
"""

from __future__ import annotations

import asyncio
import os
from typing import cast

import httptools

from bench.bare import ANSWER, launch

RESPONSE = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    % len(ANSWER)
) + ANSWER


class _Connection(asyncio.Protocol):
    """One connection: the parser's only callback in use is the end of a request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        if self.transport is not None:
            self.transport.write(RESPONSE)
            if not self.parser.should_keep_alive():
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _serve(socket_path: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if socket_path:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        await loop.create_unix_server(_Connection, socket_path)
    if port:
        await loop.create_server(_Connection, "127.0.0.1", port)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Serve until killed."""
    launch(_serve)


if __name__ == "__main__":
    main()
