"""The rule every API key and destination id meets, at every entrance: one place.

An id is a non-empty string of at most MAX_ID_BYTES bytes (UTF-8) that has one meaning
everywhere it goes: no control or format characters (Unicode Cc and Cf: no bidi
overrides, no zero-width characters, so it cannot pass for another), no leading or
trailing whitespace (it could be written but never queried), no comma (the query's
separator: `alice,bob` would read and reset alice and bob) and no `:error` suffix (the
error list's key: `victim:error` would write into victim's errors). The token path
answers 400 naming the rule, an NDJSON line is invalid, the mirror and the proxy count
the request `bad_id`; the query API refuses such an id in `ids` (400) but takes any
stored one whole as `id=`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from daemon.core.wire import MAX_ID_BYTES

ERROR_SUFFIX = ":error"
_INVISIBLE = frozenset({"Cc", "Cf"})
# The code points of Unicode Cc and Cf up to U+FFFF (Python's unicodedata; tests/test_ids.py
# checks the lists against it) and the ones str.isspace() takes, for ID_PATTERN.
_CC_CF = (
    "\\x00-\\x1f\\x7f-\\x9f\\xad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2"
    "\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb"
)
# Past U+FFFF (no spelling both the document's validator and the fuzzer's generator take):
# in check_id only.
ASTRAL_CC_CF = (
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_SPACE = "\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# The rule as a regular expression for the OpenAPI document (ECMA-262, as JSON Schema's
# patterns), but its length in bytes, the `:error` suffix (no lookahead: the fuzzer's
# generator takes none) and ASTRAL_CC_CF, which the document's description states.
ID_PATTERN = f"^[^,{_CC_CF}{_SPACE}](?:[^,{_CC_CF}]*[^,{_CC_CF}{_SPACE}])?$"
# A capture tag (daemon.core.capture): the id rule's characters and ends, commas allowed.
TAG_PATTERN = f"^[^{_CC_CF}{_SPACE}](?:[^{_CC_CF}]*[^{_CC_CF}{_SPACE}])?$"
# The query API's `ids`: comma-separated ids, stripped at their ends (same exceptions).
IDS_PATTERN = f"^[^{_CC_CF}]*$"


def check_id(value: Any) -> str | None:
    """Why `value` cannot be an API key or destination id, or None when it can."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if (len(value) if value.isascii() else len(value.encode("utf-8", "replace"))) > MAX_ID_BYTES:
        return f"must be at most {MAX_ID_BYTES} bytes (UTF-8)"
    if not value.isprintable() and any(unicodedata.category(c) in _INVISIBLE for c in value):
        return "must not hold control or format characters (Unicode Cc, Cf)"
    if value[0].isspace() or value[-1].isspace():
        return "must not start or end with whitespace"
    if "," in value:
        return "must not hold a comma (the query API's separator of ids)"
    if value.endswith(ERROR_SUFFIX):
        return f"must not end with {ERROR_SUFFIX!r} (the suffix of the errors-only list)"
    return None
