"""What is derived from the model: the effective settings `check-config` prints (secrets
redacted), the defaults, the JSON Schema of the chart's `config` value, and the key and
environment tables of docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any, get_type_hints

from daemon.config.fields import HeaderMap, HostPort, OctalMode, Rules, key_of, rules_of
from daemon.config.leaves import LISTEN, STRINGS
from daemon.config.load import CONFIG_ENV
from daemon.config.model import Config

REDACTED = "<redacted>"


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One key of the model, as the derived documents see it."""

    key: str
    kind: Any
    default: Any
    rules: Rules


def leaves(cls: type[Any] = Config, prefix: str = "") -> Iterator[Leaf]:
    """Every key of the model (sections walked), in declaration order."""
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get("internal"):
            continue
        kind = hints[field.name]
        key = f"{prefix}{key_of(field)}"
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            yield from leaves(kind, key + ".")
        else:
            yield Leaf(key, kind, field.default, rules_of(field))


def plain(value: Any) -> Any:
    """A value as YAML and JSON write it: modes in octal text, listen addresses as text."""
    if isinstance(value, HostPort):
        return str(value)
    if isinstance(value, HeaderMap):
        return value.as_dict()
    if value is None:
        return ""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _shown(leaf: Leaf, value: Any) -> Any:
    if leaf.kind is OctalMode:
        return f"0{value:o}"
    if leaf.rules.secret:
        return REDACTED if value else ""
    if leaf.rules.url_credentials:
        return redact_url(value)
    return plain(value)


def _get(config: Config, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part if hasattr(node, part) else f"{part}_")
    return node


def _put(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, name = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[name] = value


def effective_settings(config: Config) -> dict[str, Any]:
    """The effective configuration in the file's layout, secrets redacted."""
    tree: dict[str, Any] = {}
    for leaf in leaves():
        _put(tree, leaf.key, _shown(leaf, _get(config, leaf.key)))
    tree["server"]["admin_tokens_configured"] = len(config.admin_tokens)
    tree["meta"]["storage"]["redis"]["embedded"] = not config.redis.configured
    return tree


def _default(leaf: Leaf) -> Any:
    if leaf.kind is OctalMode:
        return f"0{leaf.default:o}"
    if leaf.rules.split and not leaf.default:
        return ""  # written as a string when there is one token or none
    return plain(leaf.default)


def defaults() -> dict[str, Any]:
    """Every key the YAML may hold, with its default, in the file's layout."""
    tree: dict[str, Any] = {}
    for leaf in leaves():
        if leaf.rules.yaml:
            _put(tree, leaf.key, _default(leaf))
    return tree


def redact_url(text: str) -> str:
    """Hide the password part of a redis://user:pass@host URL."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    creds, _, hosts = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}{':' + REDACTED if colon else ''}@{hosts}"


_LISTEN_PATTERN = r"^$|^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):[0-9]{1,5}$"


def _leaf_schema(leaf: Leaf) -> dict[str, Any]:
    kind, rules = leaf.kind, leaf.rules
    schema: dict[str, Any]
    if kind is bool:
        schema = {"type": "boolean"}
    elif kind is int or kind is float:
        schema = {"type": "integer" if kind is int else "number"}
        if rules.minimum is not None:
            schema["minimum"] = rules.minimum
        if rules.maximum is not None:
            schema["maximum"] = rules.maximum
    elif kind is str:
        schema = {"type": "string", **({"enum": list(rules.choices)} if rules.choices else {})}
    elif kind == STRINGS:
        schema = {"type": "array", "items": {"type": "string"}}
    elif kind is OctalMode:
        schema = {"type": ["string", "integer"], "pattern": "^0?[0-7]{3}$"}
    elif kind == LISTEN:
        schema = {"type": "string", "pattern": _LISTEN_PATTERN}
    elif kind is HeaderMap:
        value = {"type": ["string", "integer"]}
        schema = {"type": "object", "additionalProperties": value}
    else:
        raise TypeError(f"{leaf.key}: no JSON Schema for {kind!r}")
    return {"description": rules.doc, **schema, "default": _default(leaf)}


def chart_schema() -> dict[str, Any]:
    """JSON Schema (draft-07) of the chart's `config` value: every key but the secrets,
    which never go into a ConfigMap, and those set from the environment only."""
    root: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}
    for leaf in leaves():
        if leaf.rules.secret or not leaf.rules.yaml:
            continue
        node = root
        *parents, name = leaf.key.split(".")
        for part in parents:
            node = node["properties"].setdefault(
                part, {"type": "object", "additionalProperties": False, "properties": {}}
            )
        node["properties"][name] = _leaf_schema(leaf)
    return root


def _yaml(leaf: Leaf) -> str:
    """A default as YAML writes it inline: true, 100, [], 127.0.0.1:8001."""
    value = _default(leaf)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (leaf.kind is not str or value == ""):
        return json.dumps(value)  # "" and "0660" need quotes in YAML
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def keys_table() -> str:
    """The Markdown table of every key, its default and meaning."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for leaf in leaves():
        if not leaf.rules.yaml:
            continue
        shown = _yaml(leaf)
        rows.append(f"| `{leaf.key}` | `{shown}` | {_cell(leaf.rules.doc)} |")
    return "\n".join(rows) + "\n"


def environment_table() -> str:
    """The Markdown table of the environment variables."""
    rows = [
        "| variable | effect |",
        "| --- | --- |",
        f"| `{CONFIG_ENV}` | The configuration file when `--config` is not given. |",
    ]
    for leaf in leaves():
        var = leaf.rules.env
        if not var:
            continue
        if leaf.rules.yaml:
            also = f" / `{var}_FILE` (a file holding it)" if leaf.rules.secret else ""
            rows.append(f"| `{var}`{also} | Replaces `{leaf.key}`. |")
        else:
            rows.append(f"| `{var}` | {_cell(leaf.rules.doc)} |")
    return "\n".join(rows) + "\n"
