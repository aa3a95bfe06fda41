"""Where an event's own id is: the `sidecar.journey.event_id_from` rules.

A rule is `kind:name`, tried in the order configured; the first that finds an id decides:

- `json:eventn_ctx.event_id`: a dotted path of object fields in the original (a JSON
  object); `json:event_id` a top-level field;
- `record:eventn_ctx_event_id`: the `value` of the field of that name in a destination's
  `success.record` (`[{"field", "type", "value"}]`, what Jitsu's database destinations
  write).

An id is a non-empty string (or an integer, taken as its decimal text) of at most
MAX_EVENT_ID characters with no NUL (the journey index separates fields with it);
anything else is no id. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson

MAX_EVENT_ID: Final = 256  # characters; longer ids are not indexed (and not asked for)


class EventIdKind(StrEnum):
    """Where a rule looks."""

    JSON = "json"
    RECORD = "record"


_KINDS: Final = tuple(k.value for k in EventIdKind)


class EventIdRuleError(ValueError):
    """A rule that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class EventIdRule:
    """One parsed rule: for json, the path's field names; for record, the field."""

    kind: EventIdKind
    path: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.kind}:{'.'.join(self.path)}"


def parse_event_id_rule(text: str) -> EventIdRule:
    """`kind:name` as a rule; EventIdRuleError saying what is wrong."""
    kind_text, sep, name = text.partition(":")
    kind_text, name = kind_text.strip(), name.strip()
    if not sep or kind_text not in _KINDS:
        raise EventIdRuleError(
            f"{text!r}: unknown kind {kind_text!r}; a rule is kind:name with kind one of "
            f"{', '.join(_KINDS)}"
        )
    kind = EventIdKind(kind_text)
    path = tuple(name.split(".")) if kind is EventIdKind.JSON else (name,)
    if not name or not all(path):
        raise EventIdRuleError(f"{text!r}: the {kind} rule needs a name (no empty path parts)")
    return EventIdRule(kind, path)


def check_event_id_rules(texts: Sequence[str]) -> str | None:
    """Why a list of rules cannot be used (each faulty rule named), or None."""
    errors = []
    for n, text in enumerate(texts, start=1):
        try:
            parse_event_id_rule(text)
        except EventIdRuleError as e:
            errors.append(f"rule {n} {e}")
    return "; ".join(errors) or None


def as_event_id(value: object) -> str | None:
    """`value` as an event id, or None when it cannot be one."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_EVENT_ID or "\0" in value:
        return None
    return value


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


class EventIdFinder:
    """Tries the configured rules in order on one event's original and success."""

    def __init__(self, rules: Sequence[str]) -> None:
        self.rules = tuple(parse_event_id_rule(r) for r in rules)
        self.on = bool(self.rules)

    def find(self, original: Any, success: str | None) -> str | None:
        """The id of an event whose original is `original` (parsed; anything not an
        object finds nothing) and whose success is the JSON text `success` (parsed only
        when a record rule is reached)."""
        record: Any = None
        parsed_success = False
        for rule in self.rules:
            if rule.kind is EventIdKind.JSON:
                value = original
                for name in rule.path:
                    value = value.get(name) if isinstance(value, dict) else None
            else:
                if not parsed_success:
                    doc, parsed_success = _loads(success), True
                    record = doc.get("record") if isinstance(doc, dict) else None
                value = _record_value(record, rule.path[0])
            found = as_event_id(value)
            if found is not None:
                return found
        return None

    def find_in_texts(self, original: str | None, success: str | None) -> str | None:
        """As `find`, the original given as JSON text (parsed here, once)."""
        return self.find(_loads(original), success)

    def find_in_entry(self, entry: dict[str, Any]) -> str | None:
        """The id of a stored entry (its `original` and `success` JSON text); None for
        an entry without one (a malformed body, another writer's shape)."""
        original, success = entry.get("original"), entry.get("success")
        return self.find_in_texts(
            original if isinstance(original, str) else None,
            success if isinstance(success, str) else None,
        )


def _record_value(record: Any, field: str) -> Any:
    if not isinstance(record, list):
        return None
    for item in record:
        if isinstance(item, dict) and item.get("field") == field:
            return item.get("value")
    return None
