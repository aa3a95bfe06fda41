"""Whether a text is one JSON value (RFC 8259), checked at any depth.

orjson reads at most 1024 levels of nesting and no number beyond double range, while
Go's encoding/json (Jitsu Classic's handler embeds every stored `original` and `success`
as json.RawMessage) checks only the grammar. The query answers stored JSON text
verbatim; what orjson cannot read is checked here, so that deep but valid text is
answered as Jitsu answers it, and text that is not JSON never breaks an answer.
A state machine over a token regex with an explicit stack: no depth exhausts
Python's recursion limit.
"""

from __future__ import annotations

import re

# One token after optional whitespace: (1) a string, (2) another scalar, (3) punctuation.
# Possessive quantifiers: an unterminated string fails in linear time.
_TOKEN = re.compile(
    r'[ \t\n\r]*+(?:("(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+")'
    r"|(-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+|true|false|null)"
    r"|([\[\]{}:,]))"
)
_SPACE = re.compile(r"[ \t\n\r]*+")

# States (what may come next): a value; a value or "]" (after "["); a key; a key or "}"
# (after "{"); ":"; after a value in an array, in an object, at the top (only the end).
_V, _VA, _K, _KO, _C, _AA, _AO, _AT = "V", "VA", "K", "KO", "C", "AA", "AO", "AT"
_OPEN, _CLOSE, _DONE = "open", "close", "done"  # actions that depend on the stack
# (state, token) -> next state or action; tokens: "s" string, "x" other scalar, or the mark.
_MOVES: dict[tuple[str, str], str] = {
    **{(state, kind): _DONE for state in (_V, _VA) for kind in "sx"},
    **{(state, mark): _OPEN for state in (_V, _VA) for mark in "[{"},
    **{(state, mark): _CLOSE for state, mark in ((_VA, "]"), (_AA, "]"), (_KO, "}"), (_AO, "}"))},
    (_K, "s"): _C,
    (_KO, "s"): _C,
    (_C, ":"): _V,
    (_AA, ","): _V,
    (_AO, ","): _K,
}


def is_json(text: str) -> bool:
    """True when `text` is exactly one JSON value, optionally surrounded by whitespace."""
    stack: list[str] = []  # the open "[" and "{"
    state, pos, match, moves = _V, 0, _TOKEN.match, _MOVES
    while state != _AT and (m := match(text, pos)) is not None:
        pos = m.end()
        kind = "s" if m.lastindex == 1 else "x" if m.lastindex == 2 else m.group(3)
        move = moves.get((state, kind))
        if move is None:
            return False
        if move == _OPEN:
            stack.append(kind)
            state = _VA if kind == "[" else _KO
        elif move in (_CLOSE, _DONE):
            if move == _CLOSE:
                stack.pop()
            state = (_AA if stack[-1] == "[" else _AO) if stack else _AT
        else:
            state = move
    return state == _AT and _SPACE.fullmatch(text, pos) is not None


def json_problem(text: bytes, error: ValueError) -> str:
    """Why `text` is not JSON, in the words of orjson's `error`, except for text that is
    not UTF-8 (orjson reports that as surrogates at column 1): there, which byte and
    where, since JSON text is UTF-8 and a Latin-1 sender is the usual cause."""
    message = str(error)
    if "not valid UTF-8" not in message:
        return f"invalid JSON: {message}"
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as e:
        return (
            f"invalid JSON: not UTF-8 text (byte 0x{text[e.start]:02x} at offset {e.start}); "
            "JSON must be sent as UTF-8, not Latin-1 or another encoding"
        )
    return f"invalid JSON: {message}"
