"""Loading the configuration: the YAML file, environment overrides and secret files,
validated against the model in one pass.

Every problem names the key it is about, so an operator can fix a ConfigMap without
reading code; all problems are reported at once. Unknown keys only warn (errors with
`strict`), with the nearest known key as a hint; wrong types and impossible values are
errors. Secrets by precedence: NAME_FILE, NAME, the file's `<key>_file`, `<key>`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from daemon.config.fields import key_of, kind_name, rules_of
from daemon.config.leaves import parse_leaf
from daemon.config.model import Config

CONFIG_ENV = "EVENTS_CACHE_CONFIG"


@dataclasses.dataclass(frozen=True)
class Problem:
    """One configuration problem, located by its dotted key (or environment variable)."""

    location: str
    error: str

    def __str__(self) -> str:
        return f"{self.location}: {self.error}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` names every key at fault."""

    def __init__(self, problems: list[Problem], warnings: tuple[str, ...] = ()) -> None:
        self.problems = problems
        self.warnings = warnings  # unknown keys, when they are not errors themselves
        super().__init__("; ".join(str(p) for p in problems))


def load_config(
    path: str | None = None, env: Mapping[str, str] | None = None, strict: bool = False
) -> Config:
    """Read the YAML file (if any), apply environment overrides and validate.

    `strict`: unknown keys are errors too, each with the nearest known key as a hint.
    """
    env = os.environ if env is None else env
    raw = _read_yaml(path or env.get(CONFIG_ENV) or None)
    loader = _Loader(env)
    config: Config = loader.build(Config, raw, "")
    at_fault = {p.location for p in loader.problems}  # one message per key is enough
    loader.problems += [p for p in cross_checks(config) if p.location not in at_fault]
    advice = weak_tokens(config)
    if strict:
        loader.problems += [Problem(key, f"unknown key{hint(key)}") for key in loader.unknown]
        loader.problems += advice
    if loader.problems:
        raise ConfigError(loader.problems, () if strict else tuple(loader.unknown))
    advised = tuple(str(p) for p in advice)
    return dataclasses.replace(config, warnings=tuple(loader.unknown), advice=advised)


MIN_TOKEN_CHARS = 16
NO_ADMIN_TOKEN = (
    "must be set when a Redis is configured (or EVENTS_CACHE_ADMIN_TOKEN, or "
    "server.admin_token_file): the query API needs one; only the embedded default "
    "generates a token"
)


def admin_token_gap(config: Config) -> str:
    """The admin-token rule, in one place: "" when tokens are set; "generate" when the
    embedded default runs without one (the daemon makes one for the run); else "missing"
    (a configured Redis needs one: check-config refuses, the daemon does not start)."""
    if config.admin_tokens:
        return ""
    return "missing" if config.redis.configured else "generate"


def weak_tokens(config: Config) -> list[Problem]:
    """Admin tokens short enough to guess (the API answers thousands of tries a second
    per pod): a warning, an error under --strict. The token itself is never shown."""
    return [
        Problem(
            "server.admin_token",
            f"a token of {len(token)} characters is easy to guess: use at least "
            f"{MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)",
        )
        for token in config.admin_tokens
        if len(token) < MIN_TOKEN_CHARS
    ]


def _read_yaml(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem("--config", f"cannot read {path}: {e.strerror}")]) from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([Problem("--config", f"{path} is not valid YAML: {e}")]) from e
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError([Problem("(root)", "the configuration must be a YAML mapping")])
    return raw


class _Loader:
    """One pass over the model: values, problems and unknown keys."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []
        self.unknown: list[str] = []

    def build(self, cls: type[Any], raw: dict[str, Any], prefix: str) -> Any:
        """An instance of the section `cls` from its mapping `raw`."""
        hints = get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]
        known = {key_of(f) for f in fields if rules_of(f).yaml}
        self.unknown += [f"{prefix}{key}" for key in raw if key not in known]
        values: dict[str, Any] = {}
        for field in fields:
            loc = f"{prefix}{key_of(field)}"
            kind = hints[field.name]
            given = raw.get(key_of(field)) if rules_of(field).yaml else None
            if isinstance(kind, type) and dataclasses.is_dataclass(kind):
                if given is not None and not isinstance(given, dict):
                    self.problems.append(Problem(loc, f"must be a mapping, got {_kind(given)}"))
                    given = None
                values[field.name] = self.build(kind, given or {}, loc + ".")
            else:
                values[field.name] = self._leaf(field, kind, loc, given, raw)
        return cls(**values)

    def _leaf(
        self,
        field: dataclasses.Field[Any],
        kind: Any,
        loc: str,
        given: Any,
        raw: dict[str, Any],
    ) -> Any:
        rules = rules_of(field)
        if rules.env:
            given, loc = self._override(field.name, rules.env, rules.lower, given, loc, raw)
        if given is None:
            return field.default
        value, errors = parse_leaf(kind, rules, given)
        if errors:
            self.problems += [Problem(loc, error) for error in errors]
            return field.default
        return value

    def _override(
        self, name: str, var: str, lower: bool, given: Any, loc: str, raw: dict[str, Any]
    ) -> tuple[Any, str]:
        """The value by precedence: VAR_FILE, VAR, the YAML's `<name>_file`, the YAML's."""
        env = self.env
        if env.get(f"{var}_FILE"):
            return self._secret_file(f"{var}_FILE", env[f"{var}_FILE"]), f"{var}_FILE"
        if env.get(var):
            return (env[var].lower() if lower else env[var]), var
        file_path = raw.get(f"{name}_file")
        if isinstance(file_path, str) and file_path:
            return self._secret_file(f"{loc}_file", file_path), f"{loc}_file"
        return given, loc

    def _secret_file(self, loc: str, path: str) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            self.problems.append(Problem(loc, f"cannot read {path}: {e.strerror}"))
            return None


def cross_checks(config: Config) -> list[Problem]:
    """Problems that involve several keys, or that would make the daemon refuse to start."""
    problems = []
    redis = config.redis
    if redis.cluster and redis.sentinel_master_name:
        problems.append(
            Problem("meta.storage.redis.cluster", "cannot be combined with sentinel_master_name")
        )
    if admin_token_gap(config) == "missing":
        problems.append(Problem("server.admin_token", NO_ADMIN_TOKEN))
    return problems + _listener_checks(config) + _shared_addresses(config)


def _hosts_overlap(one: str, other: str) -> bool:
    """Whether binding both hosts on one port clashes: the same host, or a wildcard of
    the same family ("::" takes both families, Linux's dual-stack default)."""
    if one == other or "::" in (one, other):
        return True
    wildcard_v4 = "0.0.0.0" in (one, other)
    return wildcard_v4 and ":" not in one + other


def _shared_addresses(config: Config) -> list[Problem]:
    """Two TCP listeners on one address: the second would fail to bind."""
    sidecar = config.sidecar
    listeners = [
        ("sidecar.ingest.listen", config.ingest.listen),
        ("sidecar.api.listen", sidecar.api.listen),
        ("sidecar.mirror.listen", sidecar.mirror.listen),
        ("sidecar.proxy.listen", sidecar.proxy.listen),
    ]
    problems = []
    for n, (key, address) in enumerate(listeners):
        for other_key, other in listeners[:n]:
            if address is None or other is None or address.port != other.port:
                continue
            if _hosts_overlap(address.host, other.host):
                problems.append(
                    Problem(
                        key,
                        f"{address} overlaps {other_key} ({other}): two listeners cannot "
                        "share a port on one address",
                    )
                )
    return problems


def _listener_checks(config: Config) -> list[Problem]:
    """The mirror and the proxy need their rules (and the proxy its upstream) once on."""
    problems = []
    mirror, proxy = config.sidecar.mirror, config.sidecar.proxy
    for name, listener in (("mirror", mirror), ("proxy", proxy)):
        if listener.listen is not None and not listener.token_from:
            problems.append(
                Problem(
                    f"sidecar.{name}.token_from",
                    f"must name at least one rule when sidecar.{name}.listen is set "
                    '(e.g. ["header:X-Auth-Token", "query:token"]): without one no key is found',
                )
            )
    if proxy.listen is not None and not proxy.upstream:
        problems.append(
            Problem(
                "sidecar.proxy.upstream",
                "must be set when sidecar.proxy.listen is set: the proxy forwards to it "
                "(e.g. http://127.0.0.1:8080, the ingest container)",
            )
        )
    return problems


def known_keys(cls: type[Any] = Config, prefix: str = "") -> list[str]:
    """Every dotted key the YAML may hold, sections included."""
    keys = []
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get("internal") or not rules_of(field).yaml:
            continue
        key = f"{prefix}{key_of(field)}"
        keys.append(key)
        if dataclasses.is_dataclass(hints[field.name]):
            keys += known_keys(hints[field.name], key + ".")
    return keys


def hint(key: str) -> str:
    """ "; did you mean X?" with the nearest known key, or "" when none is near."""
    keys = known_keys()
    parent, _, leaf = key.rpartition(".")
    siblings = [k for k in keys if k.rpartition(".")[0] == parent]
    near = difflib.get_close_matches(leaf, [k.rpartition(".")[2] for k in siblings], n=1)
    if near:
        return f"; did you mean {f'{parent}.' if parent else ''}{near[0]}?"
    anywhere = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    return f"; did you mean {anywhere[0]}?" if anywhere else ""


def _kind(value: Any) -> str:
    return kind_name(type(value))
