"""How a setting is declared: its default, its description and its rules, in one place.

The configuration model (`daemon.config.model`) is a tree of frozen dataclasses whose
fields are declared with `setting()` and `section()`. Loading, validation, the
effective settings of `check-config`, the key table of docs/configuration.md and the
JSON Schema of the chart's `config` value are all read off these declarations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, NewType

# A file mode written in octal (YAML reads 0660 as the octal number it is).
OctalMode = NewType("OctalMode", int)

# Extra validation of a value: None when fine, else the message.
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class HostPort:
    """A TCP listen address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class HeaderMap(NamedTuple):
    """HTTP header names and values, in the order given (a mapping in the YAML; kept as
    pairs so that the settings stay frozen; not a dataclass, which would be a section)."""

    items: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, str]:
        """The mapping, as the YAML had it."""
        return dict(self.items)


@dataclass(frozen=True)
class Rules:
    """What a setting's declaration says besides its type and default."""

    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False  # never printed, never in the chart's ConfigMap
    url_credentials: bool = False  # may be a URL with a password: printed with it hidden
    env: str = ""  # environment variable that replaces it
    secret_file_of: str = ""  # this key names a file holding the secret `secret_file_of`
    split: bool = False  # a string is split on commas and new lines into the tuple
    yaml: bool = True  # False: set from the environment only
    check: Check | None = None
    existing_file: bool = False  # a path that must name a file when set
    lower: bool = False  # the environment's value is lower-cased (log level, format)


RULES = "events_cache_rules"


def setting(default: Any, doc: str, **rules: Any) -> Any:
    """A configuration key: its default, what it means, and its rules (see Rules)."""
    metadata = {RULES: Rules(doc, **rules)}
    if isinstance(default, list | dict):
        raise TypeError("mutable default: use a tuple")
    return dataclasses.field(default=default, metadata=metadata)


def section(factory: Callable[[], Any], doc: str = "") -> Any:
    """A mapping of keys, itself a dataclass."""
    return dataclasses.field(default_factory=factory, metadata={RULES: Rules(doc)})


def key_of(field: dataclasses.Field[Any]) -> str:
    """The YAML key of a field: its name, without the "_" that a name clashing with a
    Python keyword ends in (`from_` is `from`)."""
    return field.name.removesuffix("_")


def rules_of(field: dataclasses.Field[Any]) -> Rules:
    """The declared rules of a field."""
    rules: Rules = field.metadata[RULES]
    return rules


def parse_host_port(text: str) -> HostPort | None:
    """`host:port` or `[v6]:port`; "" means off. ValueError when it is neither."""
    if not text:
        return None
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"must be host:port, got {text!r}")
    return HostPort(host, int(port_text))


def parse_octal_mode(value: Any) -> OctalMode:
    """An octal file mode from text ("0660") or from the number YAML read (0660 = 432)."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str):
        try:
            mode = int(value, 8)
        except ValueError:
            mode = -1
    else:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise ValueError(f'must be an octal mode like "0660", got {value!r}')
    return OctalMode(mode)


def kind_name(t: type) -> str:
    """How a message names a type."""
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(t, t.__name__)
