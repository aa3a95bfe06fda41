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


def preview(text: str) -> str:
    """The beginning of `text` whose JSON string is at most PREVIEW_BYTES long."""
    chars = PREVIEW_BYTES
    while chars > 0:
        part = text[:chars]
        size = len(orjson.dumps(part))
        if size <= PREVIEW_BYTES:
            return part
        chars = min(chars - 1, chars * PREVIEW_BYTES // size)
    return ""


def cut(raw: bytes) -> dict[str, Any]:
    """The stored entry `raw` as answered (see daemon.core.entry.decode), long fields cut."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    event = answered(doc) if isinstance(doc, dict) else decode(raw)
    source = doc if isinstance(doc, dict) else event
    sizes: dict[str, int] = {}
    for name in list(event):
        text = source.get(name)
        if isinstance(text, str) and len(text) > PREVIEW_BYTES // 6:
            if len(orjson.dumps(text)) > PREVIEW_BYTES:
                event[name] = preview(text)
                sizes[name] = len(text.encode())
    event[CUT_FIELD] = sizes
    return event
