"""A test run's capture tag: where it is found (`sidecar.capture.from`), what a tag may
be (the per-pod budget of tagged events cached beyond the limits is
`daemon.pipeline.capture`).

A rule is the mirror's `kind:name` (`daemon.core.tokenfrom`'s parsing), of two kinds:

- `header:X-Events-Cache-Capture`: a header of the request, for all its events;
- `json:test_id` / `json:context.test.id`: a dotted path of object fields in each
  event's original (a top-level field for a one-part path).

The first rule that finds a valid tag decides; an NDJSON line's own `"capture"` field
comes before every rule. A tag is not a secret: it is stored, answered and may be
logged. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from daemon.core.entry import ParsedEvent
from daemon.core.tokenfrom import RuleError, RuleKind, parse_rule

MAX_CAPTURE_BYTES: Final = 256
_KINDS = (RuleKind.HEADER, RuleKind.JSON)
_INVISIBLE = frozenset({"Cc", "Cf"})


def check_capture(value: Any) -> str | None:
    """Why `value` cannot be a capture tag, or None: a non-empty string of at most
    MAX_CAPTURE_BYTES bytes (UTF-8), no control or format characters, no whitespace at
    its ends (it is matched exactly by `capture=`)."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        return "must be valid UTF-8"
    if size > MAX_CAPTURE_BYTES:
        return f"must be at most {MAX_CAPTURE_BYTES} bytes (UTF-8)"
    if not value.isprintable() and any(unicodedata.category(c) in _INVISIBLE for c in value):
        return "must not hold control or format characters (Unicode Cc, Cf)"
    if value[0].isspace() or value[-1].isspace():
        return "must not start or end with whitespace"
    return None


def _parse(text: str) -> tuple[RuleKind, str, tuple[str, ...]]:
    """(kind, header name lower-cased or "", json path or ()); RuleError saying why not."""
    rule = parse_rule(text)
    if rule.kind not in _KINDS:
        raise RuleError(f"{text!r}: a capture rule is header:NAME or json:dotted.path")
    if rule.kind is RuleKind.HEADER:
        return rule.kind, rule.name.lower(), ()
    path = tuple(rule.name.split("."))
    if not all(path):
        raise RuleError(f"{text!r}: the json path has an empty part")
    return rule.kind, "", path


def check_capture_rules(texts: Sequence[str]) -> str | None:
    """Why a list of capture rules cannot be used (each faulty rule named), or None."""
    errors = []
    for n, text in enumerate(texts, start=1):
        try:
            _parse(text)
        except RuleError as e:
            errors.append(f"rule {n} {e}")
    return "; ".join(errors) or None


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(name)
    return doc


# A request header by its lower-case name, as text (None: absent).
HeaderText = Callable[[str], str | None]


class CaptureFinder:
    """Finds the tag of each event of a request with the configured rules."""

    def __init__(self, rules: Sequence[str]) -> None:
        self.rules = tuple(_parse(r) for r in rules)
        self.headers = tuple(name for kind, name, _ in self.rules if kind is RuleKind.HEADER)
        self.reads_body = any(kind is RuleKind.JSON for kind, _, _ in self.rules)
        # The first field name of each json path as it appears in a body's bytes: a body
        # without any of them carries no tag (escaped field names are not looked for).
        self._needles = tuple(b'"%s"' % path[0].encode() for _, _, path in self.rules if path)

    def request_tags(self, header: HeaderText) -> dict[str, str]:
        """The valid tags the header rules find in one request, by header name."""
        found = {}
        for name in self.headers:
            value = header(name)
            if value is not None and check_capture(value) is None:
                found[name] = value
        return found

    def may_tag(self, body: bytes, tags: dict[str, str]) -> bool:
        """Whether an event of this request may carry a tag (checked without parsing)."""
        return bool(tags) or any(needle in body for needle in self._needles)

    def tag(self, event: ParsedEvent, tags: dict[str, str]) -> None:
        """Give `event` the first tag a rule finds, unless it has one of its own."""
        if event.capture is not None:
            return
        value: Any = None
        for kind, name, path in self.rules:
            if kind is RuleKind.HEADER:
                value = tags.get(name)
            else:
                value = _at(event.original_value(), path)
            if value is not None and check_capture(value) is None:
                event.capture = value
                return

    def tagged(self, events: Iterable[ParsedEvent], tags: dict[str, str]) -> Iterator[ParsedEvent]:
        """`events`, each tagged as it passes (lazily: the NDJSON path reads line by line)."""
        for event in events:
            self.tag(event, tags)
            yield event
