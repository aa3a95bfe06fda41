"""Stand-ins for the systems around the sidecar, as real servers: a raw HTTP/1.1 server
that plays the ingest container (records every request byte for byte, answers what the
test scripts), a raw HTTP client that sends exact bytes, and nginx.

The stand-in is the system under proxy, not a mock of the sidecar's own HTTP: it is
written on plain sockets so that what the proxy sent and what it relays can be
compared byte for byte, framing included.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import free_port, wait_for

CRLF = b"\r\n"
OK_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


@dataclass
class Received:
    """One request as the stand-in read it."""

    request_line: bytes
    headers: list[tuple[bytes, bytes]]  # as received: order, case, repeats
    body: bytes  # de-chunked when chunked

    @property
    def path(self) -> str:
        return self.request_line.split(b" ")[1].decode()

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Answer:
    """What the stand-in sends back: pieces of raw bytes, each after a delay; then it
    closes the connection when `close` (else it waits for the next request)."""

    pieces: list[tuple[float, bytes]]
    close: bool = False

    @classmethod
    def raw(cls, data: bytes, delay: float = 0.0, close: bool = False) -> Answer:
        return cls([(delay, data)], close)


@dataclass
class StandIn:
    """A raw HTTP/1.1 server on a loopback port, in a thread with its own event loop.

    Answers come from `answers` by path (without the query), else `default`.
    """

    port: int = field(default_factory=free_port)
    default: Answer = field(default_factory=lambda: Answer.raw(OK_ANSWER))
    answers: dict[str, Answer] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    chunks_seen: list[bytes] = field(default_factory=list)  # of chunked request bodies
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.AbstractServer | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self) -> StandIn:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", self.port)
            )
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection, then the loop."""
        if self._loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader, self.chunks_seen)
                if request is None:
                    return
                self.received.append(request)
                answer = self.answers.get(request.path.split("?")[0], self.default)
                for delay, data in answer.pieces:
                    if delay:
                        await asyncio.sleep(delay)
                    writer.write(data)
                    await writer.drain()
                if answer.close or b"close" in b",".join(request.header(b"Connection")).lower():
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader, seen: list[bytes]) -> Received | None:
    try:
        head = await reader.readuntil(CRLF + CRLF)
    except asyncio.IncompleteReadError:
        return None
    line, *lines = head[:-4].split(CRLF)
    headers = [(k, v.strip()) for k, _, v in (x.partition(b":") for x in lines)]
    lengths = [int(v) for k, v in headers if k.lower() == b"content-length"]
    chunked = any(k.lower() == b"transfer-encoding" and b"chunked" in v for k, v in headers)
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(CRLF)).split(b";")[0], 16)
            chunk = await reader.readexactly(size)
            seen.append(chunk)  # as each arrives: a test can tell streaming from buffering
            body += chunk
            await reader.readexactly(2)
            if size == 0:
                break
    else:
        body = await reader.readexactly(lengths[0]) if lengths else b""
    return Received(line, headers, body)


# -- a raw client ------------------------------------------------------------------------


@dataclass
class Reply:
    """A response read off the wire until the server closed the connection."""

    raw: bytes
    status_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes  # de-chunked
    complete: bool  # the framing said the body ended (False: the connection was cut)

    @property
    def status(self) -> int:
        return int(self.status_line.split(b" ")[1])

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    raw = b""
    while True:
        try:
            data = s.recv(1 << 16)
        except ConnectionResetError:
            break
        if not data:
            break
        raw += data
    return raw


def exchange(port: int, request: bytes, timeout: float = 15, head: bool = False) -> Reply:
    """Send `request` (which should say `Connection: close`), read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        raw = read_until_closed(s)
    return parse_reply(raw, head)


def parse_reply(raw: bytes, head: bool = False) -> Reply:
    """Split a response into its parts; `head`: the answer to a HEAD has no body."""
    top, _, rest = raw.partition(CRLF + CRLF)
    status_line, *lines = top.split(CRLF)
    headers = [(k, v.strip()) for k, _, v in (x.partition(b":") for x in lines)]
    reply = Reply(raw, status_line, headers, b"", False)
    if head:
        reply.complete = True
    elif any(b"chunked" in v for v in reply.header(b"Transfer-Encoding")):
        reply.body, reply.complete = _dechunk(rest)
    elif reply.header(b"Content-Length"):
        length = int(reply.header(b"Content-Length")[0])
        reply.body, reply.complete = rest[:length], len(rest) >= length
    else:
        reply.body, reply.complete = rest, True
    return reply


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    body = b""
    while True:
        line, sep, data = data.partition(CRLF)
        if not sep:
            return body, False
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return body, True
        if len(data) < size + 2:
            return body + data[:size], False
        body, data = body + data[:size], data[size + 2 :]


def http_request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
    body: bytes = b"",
    chunks: list[bytes] | None = None,
) -> bytes:
    """A raw request; `Host: test` first unless given, Content-Length (or chunked framing
    when `chunks`) last."""
    lines = [f"{method} {target} HTTP/1.1".encode()]
    if not any(_bytes(k).lower() == b"host" for k, _ in headers):
        lines.append(b"Host: test")  # HTTP/1.1 requires one
    lines += [_bytes(k) + b": " + _bytes(v) for k, v in headers]
    if chunks is not None:
        lines.append(b"Transfer-Encoding: chunked")
        framed = b"".join(f"{len(c):x}".encode() + CRLF + c + CRLF for c in chunks) + b"0\r\n\r\n"
        return CRLF.join(lines) + CRLF + CRLF + framed
    lines.append(f"Content-Length: {len(body)}".encode())
    return CRLF.join(lines) + CRLF + CRLF + body


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


# -- nginx -------------------------------------------------------------------------------

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
{user}
events {{ worker_connections 256; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
"""


class Nginx:
    """Debian's nginx with the given `location` blocks, on a port of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str:
        found = shutil.which("nginx") or (
            "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
        )
        if found is None:
            pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
        return found

    def start(self, locations: str) -> Nginx:
        directory = self.directory
        directory.mkdir(parents=True)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(dir=directory, port=self.port, user=user, locations=locations)
        (directory / "nginx.conf").write_text(conf)
        command = [self.binary(), "-p", str(directory), "-c", str(directory / "nginx.conf")]
        command += ["-e", str(directory / "error.log"), "-g", "daemon off;"]
        process = self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

        def up() -> bool:
            assert process.poll() is None, (directory / "error.log").read_text()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(up, timeout=10)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
