"""Parsing and checking one value of the configuration against its declared type and rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.config.fields import (
    HeaderMap,
    HostPort,
    OctalMode,
    Rules,
    kind_name,
    parse_host_port,
    parse_octal_mode,
)

STRINGS = tuple[str, ...]
LISTEN = HostPort | None


def parse_leaf(kind: Any, rules: Rules, value: Any) -> tuple[Any, list[str]]:
    """(the typed value, []) or (None, the messages saying what is wrong)."""
    errors = []
    if kind == STRINGS and isinstance(value, list):
        # Name each element that is not text, and still check the others.
        errors = [
            f"element {n} must be a string, got {kind_name(type(v))}"
            for n, v in enumerate(value)
            if not isinstance(v, str)
        ]
        value = [v for v in value if isinstance(v, str)]
    try:
        parsed = _typed(kind, rules, value)
    except ValueError as e:
        return None, [*errors, str(e)]
    violation = _violation(rules, parsed)
    errors += [violation] if violation else []
    return (None if errors else parsed), errors


def _typed(kind: Any, rules: Rules, value: Any) -> Any:
    got = kind_name(type(value))
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be a boolean, got {got}")
        return value
    if kind is int or kind is float:
        return _number(kind, value, got)
    if kind is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # a port or number where text is expected: keep its text
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {got}")
        return value
    if kind == STRINGS:
        return _strings(rules, value)
    if kind is OctalMode:
        return parse_octal_mode(value)
    if kind is HeaderMap:
        return _header_map(value, got)
    if kind == LISTEN:
        if not isinstance(value, str):
            raise ValueError(f"must be host:port, got {got}")
        return parse_host_port(value)
    raise TypeError(f"no parser for settings of type {kind!r}")  # a bug in the model


def _number(kind: type, value: Any, got: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be {kind_name(kind)}, got {got}")
    if kind is int and not isinstance(value, int):
        raise ValueError(f"must be an integer, got {got}")
    return int(value) if kind is int else float(value)


def _header_map(value: Any, got: str) -> HeaderMap:
    """A mapping of header names to values; a number value is kept as its text (YAML
    reads `Access-Control-Max-Age: 600` as one)."""
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of header names to values, got {got}")
    items, wrong = [], []
    for name, text in value.items():
        if isinstance(text, int | float) and not isinstance(text, bool):
            text = str(text)
        if isinstance(name, str) and isinstance(text, str):
            items.append((name, text))
        else:
            wrong.append(f"{name!r} must be a string naming a string, got {kind_name(type(text))}")
    if wrong:
        raise ValueError("; ".join(wrong))
    return HeaderMap(tuple(items))


def _strings(rules: Rules, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and rules.split:
        items = value.replace("\n", ",").split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        also = "a string or " if rules.split else ""
        raise ValueError(f"must be {also}a list of strings")
    return tuple(s.strip() for s in items if s.strip())


def _violation(rules: Rules, value: Any) -> str:
    """Why a well-typed value breaks its rules, or ""."""
    if rules.minimum is not None and value < rules.minimum:
        return f"must be >= {rules.minimum:g}, got {value}"
    if rules.maximum is not None and value > rules.maximum:
        return f"must be <= {rules.maximum:g}, got {value}"
    if rules.choices and value not in rules.choices:
        return f"must be one of {', '.join(rules.choices)}"
    if rules.existing_file and value and not Path(value).is_file():
        return f"no such file: {value}"
    if rules.check is not None:
        return rules.check(value) or ""
    return ""
