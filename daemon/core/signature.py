"""Error signatures: an error message with its values replaced by placeholders.

Two messages that differ only in their values (`pq: column "revenue" ...` and
`pq: column "price" ...`, two request ids, two hosts) reduce to one signature, so
`/api/v1/errors` counts them together. The placeholders are the contract's: quoted
values `<q>`, UUIDs `<uuid>`, IP addresses and host:port `<addr>`, hex strings `<hex>`,
numbers (and timestamps) `<n>`. Order matters: a quoted value is one value whatever it
holds; a UUID is taken before its hex groups, an address before its numbers, a hex
string before the digits in it.

Pure and memoised per message text (a bounded LRU): an error repeated by every event of
a failing destination is reduced once.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_MESSAGE_CHARS = 1024  # of a message reduced (the rest is cut: one signature per head)
MEMO_SIZE = 4096  # distinct message texts remembered

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Quoted values: "..." '...' `...` (with backslash escapes), on one line.
    (re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`\n]*`'), "<q>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    # IPv6 in brackets (with a port or not), IPv4 (with a port or not), host.name:port.
    (re.compile(r"\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\](?::\d{1,5})?"), "<addr>"),
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"), "<addr>"),
    (
        re.compile(r"(?<![\w.-])(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+):\d{1,5}\b"),
        "<addr>",
    ),
    # Timestamps (RFC 3339 and the like) are numbers.
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
        ),
        "<n>",
    ),
    # Hex: 0x..., or 8+ hex digits holding both a digit and a letter (a decimal number
    # is a number, a word is a word).
    (
        re.compile(
            r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])"
            r"[0-9a-fA-F]{8,}\b"
        ),
        "<hex>",
    ),
    # Numbers not part of a word (UInt64, utf8 and v2 stay), a unit after them kept.
    (
        re.compile(
            r"(?<![\w.<])[-+]?\d+(?:\.\d+)*(?:[eE][-+]?\d+)?"
            r"(?=(?:ms|us|µs|ns|s|m|h|d|[KMGT]i?B|B)?(?![\w]))"
        ),
        "<n>",
    ),
)


def _reduce(message: str) -> str:
    for pattern, placeholder in _RULES:
        message = pattern.sub(placeholder, message)
    return message


def signature(message: str) -> str:
    """The signature of an error message (its first MAX_MESSAGE_CHARS characters)."""
    return _memoised(message[:MAX_MESSAGE_CHARS])


@lru_cache(maxsize=MEMO_SIZE)
def _memoised(head: str) -> str:
    """Memoised on the message's head: the memo holds at most MEMO_SIZE heads of at most
    MAX_MESSAGE_CHARS characters, however long the messages."""
    return _reduce(head).strip()
