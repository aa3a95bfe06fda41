"""What the tee proxy changes on the way through, and nothing more, as bytes.

Requests: hop-by-hop headers (RFC 9110 section 7.6.1, and those the Connection header
names, but Host) are dropped, `X-Forwarded-For` gets the client's address appended, and
`X-Forwarded-Proto` and `X-Forwarded-Host` are added unless a proxy in front set them;
everything else keeps its order, case, bytes and repeats. Answers: the upstream's status,
reason and end-to-end headers, and nothing of the proxy's own but the framing it needs
(`Transfer-Encoding: chunked` for a body of unknown length) and `Connection: close`.
"""

from __future__ import annotations

from collections.abc import Iterable

Fields = list[tuple[bytes, bytes]]

# RFC 9110 7.6.1, and Trailer (trailers are not relayed) and Expect (the proxy answers
# 100-continue to the client itself).
HOP_BY_HOP = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"te", b"transfer-encoding"}
    | {b"upgrade", b"trailer", b"expect"}
)
_ALWAYS_KEPT = frozenset({b"host"})
CHUNKED = b"Transfer-Encoding: chunked\r\n"
CLOSE = b"Connection: close\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def dropped(fields: Fields) -> frozenset[bytes]:
    """Lower-cased names not to pass on: hop-by-hop ones, with those the Connection
    header lists (but Host, always forwarded as received: the upstream would get the
    proxy's own otherwise)."""
    listed: set[bytes] = set()
    for name, value in fields:
        if len(name) == 10 and name.lower() == b"connection":
            listed.update(part.strip().lower() for part in value.split(b","))
    return HOP_BY_HOP | (listed - _ALWAYS_KEPT) if listed else HOP_BY_HOP


def origin_form(target: bytes) -> bytes:
    """An absolute-form target (`http://host/path?q`, which a client may send to any
    HTTP/1.1 server) as the path and query the upstream is asked for: the proxy's
    upstream is fixed, never taken from a request."""
    if target[:7].lower() != b"http://" and target[:8].lower() != b"https://":
        return target
    rest = target.partition(b"//")[2]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return path if path.startswith(b"/") else b"/" + path


def request_head(
    method: bytes,
    target: bytes,
    fields: Fields,
    remote: bytes,
    default_host: bytes,
    chunked: bool,
) -> tuple[bytes, Fields]:
    """The request's head as the upstream gets it, and its forwarded fields (what the
    tee reads the key from). A "#", which a client should not send, leaves as %23: the
    upstream reads the query after it, as the tee does."""
    kept, forwarded_for = _passed_on(fields, dropped(fields))
    names = {name.lower(): value for name, value in reversed(kept)}  # the first of each
    host = names.get(b"host", b"")
    if remote:
        forwarded_for.append(remote)
    if forwarded_for:
        kept.append((b"X-Forwarded-For", b", ".join(forwarded_for)))
    if b"x-forwarded-proto" not in names:
        kept.append((b"X-Forwarded-Proto", b"http"))
    if b"x-forwarded-host" not in names and host:
        kept.append((b"X-Forwarded-Host", host))
    parts = [method, b" ", target.replace(b"#", b"%23"), b" HTTP/1.1\r\n"]
    if not host:
        parts += (b"Host: ", default_host, b"\r\n")
    _lines(parts, kept)
    if chunked:
        parts.append(CHUNKED)
    parts.append(b"\r\n")
    return b"".join(parts), kept


def _passed_on(fields: Fields, drop: frozenset[bytes]) -> tuple[Fields, list[bytes]]:
    """The fields to pass on, and the X-Forwarded-For values apart (joined into one)."""
    kept: Fields = []
    forwarded_for: list[bytes] = []
    for name, value in fields:
        low = name.lower()
        if low == b"x-forwarded-for":
            forwarded_for.append(value)
        elif low not in drop:
            kept.append((name, value))
    return kept, forwarded_for


def answer_head(status: int, reason: bytes, fields: Fields, chunked: bool, close: bool) -> bytes:
    """The upstream's answer head as the client gets it."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    drop = dropped(fields)
    _lines(parts, ((n, v) for n, v in fields if n.lower() not in drop))
    if chunked:
        parts.append(CHUNKED)
    if close:
        parts.append(CLOSE)
    parts.append(b"\r\n")
    return b"".join(parts)


def _lines(parts: list[bytes], fields: Iterable[tuple[bytes, bytes]]) -> None:
    for name, value in fields:
        parts += (name, b": ", value, b"\r\n")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class FieldView(dict[str, str]):
    """Forwarded fields by name, case-insensitive, the first value of each, as text:
    what the tee's token rules and its decoding read."""

    def __init__(self, fields: Fields) -> None:
        super().__init__()
        for name, value in fields:
            text = value.decode("utf-8", "surrogateescape")
            self.setdefault(name.decode("latin-1").lower(), text)

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())
