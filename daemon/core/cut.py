"""An entry too long for any answer, cut: its long fields shortened to a preview.

An answer holds whole events within `sidecar.api.max_response_bytes`. An event longer
than that on its own could never be answered whole, so it is answered cut: each field
whose JSON is longer than PREVIEW_BYTES becomes a JSON string of its text's beginning
(no longer JSON text), and `cut` maps each such field to its whole length in bytes, so a
reader (the viewer) says how much it is not showing; `uid=` answers the entry whole.
"""

from __future__ import annotations

from typing import Any

import orjson

from daemon.core.entry import answered, decode

PREVIEW_BYTES = 8192  # the most a cut field holds, as JSON
CUT_FIELD = "cut"  # {"original": 1048600, ...}: the cut fields and their whole lengths
# A cut entry's most: nine fields of PREVIEW_BYTES, their names and the cut lengths. The
# configuration's smallest max_response_bytes (131072) holds it.
MAX_CUT_BYTES = 9 * (PREVIEW_BYTES + 32) + 256


def preview(text: str, limit: int = PREVIEW_BYTES) -> str:
    """The beginning of `text` whose JSON string is at most `limit` bytes long."""
    chars = limit
    while chars > 0:
        part = text[:chars]
        size = len(orjson.dumps(part))
        if size <= limit:
            return part
        chars = min(chars - 1, chars * limit // size)
    return ""


def cut(raw: bytes, limit: int = PREVIEW_BYTES) -> dict[str, Any]:
    """The stored entry `raw` as answered (see daemon.core.entry.decode), fields longer
    than `limit` bytes of JSON cut (an error signature's example: smaller)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    event = answered(doc) if isinstance(doc, dict) else decode(raw)
    source = doc if isinstance(doc, dict) else event
    sizes: dict[str, int] = {}
    for name in list(event):
        text = source.get(name)
        if isinstance(text, str) and len(text) > limit // 6:
            if len(orjson.dumps(text)) > limit:
                event[name] = preview(text, limit)
                sizes[name] = len(text.encode())
    event[CUT_FIELD] = sizes
    return event
