"""Configuration: the contract's YAML layout, environment overrides and validation.

Every problem names the key it is about, so an operator can fix a ConfigMap without
reading code. Unknown keys only warn (a newer chart may set keys an older image does
not know); wrong types and impossible values are errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from daemon.core.redact import RedactPathError, parse_path

CONFIG_ENV = "EVENTS_CACHE_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")

# The defaults of Jitsu Classic for server.cache.*, and of the contract for the rest.
# The type of each default is the type a value must have (bool is not an int here).
DEFAULTS: dict[str, Any] = {
    "server": {
        "admin_token": "",
        "admin_token_file": "",
        "allow_token_in_query": False,
        "cache": {
            "enabled": True,
            "events": {
                "size": 100,
                "time_window_sec": 60,
                "trim_interval_ms": 500,
                "max_malformed_event_size_bytes": 10000,
                "redact": [],  # dotted JSON paths masked in `original` before caching
            },
            "pool": {"size": 10},
        },
    },
    "meta": {
        "storage": {
            "redis": {
                "host": "",
                "port": 6379,
                "username": "",
                "password": "",
                "password_file": "",
                "database": 0,
                "sentinel_master_name": "",
                "sentinel_password": "",
                "cluster": False,
                "tls_skip_verify": False,
                "tls_ca_file": "",
                "ttl_minutes": {"events_cache": 0},
            }
        }
    },
    "sidecar": {
        "ingest": {
            "socket": "/var/run/events-cache/ingest.sock",
            "socket_mode": "0660",
            "listen": "127.0.0.1:8001",
            "max_request_bytes": 1048576,
            "queue_size": 10000,
        },
        "api": {"listen": "0.0.0.0:8080"},
        "shutdown": {"drain_seconds": 5, "flush_timeout_seconds": 10},
        "log": {"level": "info", "format": "json"},
    },
}

# Keys whose value may be a string or a list of strings (token rotation).
_STRING_OR_LIST = {"server.admin_token"}
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Problem:
    """One configuration problem, located by its dotted key."""

    location: str
    error: str

    def __str__(self) -> str:
        return f"{self.location}: {self.error}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` names every key at fault."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class HostPort:
    """A TCP listen address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class EventsSettings:
    """server.cache.events: the per-id capacity, its window and the trim cadence."""

    size: int
    time_window_s: int
    trim_interval_s: float
    max_malformed_event_bytes: int
    redact: tuple[str, ...] = ()


@dataclass(frozen=True)
class CacheSettings:
    """server.cache."""

    enabled: bool
    events: EventsSettings
    writers: int


@dataclass(frozen=True)
class RedisSettings:
    """meta.storage.redis; `url` (from EVENTS_CACHE_REDIS_URL) wins over host/port/db."""

    host: str
    port: int
    username: str
    password: str
    database: int
    sentinel_master_name: str
    cluster: bool
    tls_skip_verify: bool
    tls_ca_file: str
    ttl_minutes: int
    url: str = ""
    sentinel_password: str = ""  # AUTH to the sentinels themselves (not the data nodes)

    @property
    def configured(self) -> bool:
        """False when neither a host nor a URL is set: the embedded default applies."""
        return bool(self.host or self.url)


@dataclass(frozen=True)
class IngestSettings:
    """sidecar.ingest: the pod-private listeners and the queue in front of Redis."""

    socket_path: str
    socket_mode: int
    listen: HostPort | None
    max_request_bytes: int
    queue_size: int


@dataclass(frozen=True)
class Config:
    """The whole effective configuration."""

    admin_tokens: tuple[str, ...]
    allow_token_in_query: bool
    cache: CacheSettings
    redis: RedisSettings
    ingest: IngestSettings
    api_listen: HostPort
    drain_s: float
    flush_timeout_s: float
    log_level: str
    log_format: str
    warnings: tuple[str, ...] = field(default=(), compare=False)


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (if any), apply environment overrides and validate."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV) or None
    raw: Any = {}
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError([Problem("--config", f"cannot read {path}: {e.strerror}")]) from e
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError([Problem("--config", f"{path} is not valid YAML: {e}")]) from e
        if raw is None:
            raw = {}
    problems: list[Problem] = []
    warnings: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([Problem("(root)", "the configuration must be a YAML mapping")])
    merged = _merge(DEFAULTS, raw, "", problems, warnings)
    _apply_env(merged, env, problems)
    if problems:
        raise ConfigError(problems)
    return _build(merged, tuple(warnings))


def _merge(
    defaults: dict[str, Any],
    given: dict[str, Any],
    prefix: str,
    problems: list[Problem],
    warnings: list[str],
) -> dict[str, Any]:
    """Overlay `given` on `defaults`, type-checking each leaf against its default."""
    out: dict[str, Any] = {}
    for key, default in defaults.items():
        loc = f"{prefix}{key}"
        if key not in given or given[key] is None:
            out[key] = _copy(default)
            continue
        value = given[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                problems.append(Problem(loc, f"must be a mapping, got {_kind(value)}"))
                out[key] = _copy(default)
            else:
                out[key] = _merge(default, value, loc + ".", problems, warnings)
        else:
            out[key] = _check_leaf(loc, default, value, problems)
    for key in given:
        if key not in defaults:
            warnings.append(f"{prefix}{key}")
    return out


def _check_leaf(loc: str, default: Any, value: Any, problems: list[Problem]) -> Any:
    if loc in _STRING_OR_LIST and isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        problems.append(Problem(loc, "must be a string or a list of strings"))
        return default
    expected = type(default)
    if expected is int and isinstance(value, bool):
        problems.append(Problem(loc, "must be an integer, got a boolean"))
        return default
    if expected is str and isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads `socket_mode: 0660` as an int and ports may be numbers: keep the text.
        return _int_text(loc, value)
    if not isinstance(value, expected):
        problems.append(Problem(loc, f"must be {_kind_name(expected)}, got {_kind(value)}"))
        return default
    return value


def _int_text(loc: str, value: int | float) -> str:
    if loc.endswith("socket_mode") and isinstance(value, int):
        # YAML 1.1 parses 0660 as octal 432; show it as the octal the user wrote.
        return f"0{value:o}"
    return str(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _kind(value: Any) -> str:
    return _kind_name(type(value))


def _kind_name(t: type) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(t, t.__name__)


def _read_secret_file(loc: str, path: str, problems: list[Problem]) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        problems.append(Problem(loc, f"cannot read {path}: {e.strerror}"))
        return None


def _secret(
    env: Mapping[str, str],
    name: str,
    section: dict[str, Any],
    key: str,
    location: str,
    problems: list[Problem],
) -> str | None:
    """A secret by precedence: NAME_FILE, NAME, the file's `<key>_file`, then `<key>`."""
    if env.get(f"{name}_FILE"):
        return _read_secret_file(f"{name}_FILE", env[f"{name}_FILE"], problems)
    if env.get(name):
        return env[name]
    if section[f"{key}_file"]:
        return _read_secret_file(f"{location}_file", section[f"{key}_file"], problems)
    return None


def _apply_env(merged: dict[str, Any], env: Mapping[str, str], problems: list[Problem]) -> None:
    """Environment overrides: they win over the file, _FILE variants over plain ones."""
    server = merged["server"]
    redis = merged["meta"]["storage"]["redis"]
    log = merged["sidecar"]["log"]
    token = _secret(
        env, "EVENTS_CACHE_ADMIN_TOKEN", server, "admin_token", "server.admin_token", problems
    )
    if token is not None:
        server["admin_token"] = token.splitlines() if "\n" in token else token
    password = _secret(
        env,
        "EVENTS_CACHE_REDIS_PASSWORD",
        redis,
        "password",
        "meta.storage.redis.password",
        problems,
    )
    if password is not None:
        redis["password"] = password.strip()
    if env.get("EVENTS_CACHE_LOG_LEVEL"):
        log["level"] = env["EVENTS_CACHE_LOG_LEVEL"].lower()
    if env.get("EVENTS_CACHE_LOG_FORMAT"):
        log["format"] = env["EVENTS_CACHE_LOG_FORMAT"].lower()
    redis["url"] = env.get("EVENTS_CACHE_REDIS_URL", "")


def _admin_tokens(value: str | list[str]) -> tuple[str, ...]:
    """A list (or comma-separated string) of valid tokens, so a token can be rotated."""
    items = value if isinstance(value, list) else value.split(",")
    return tuple(t.strip() for t in items if t.strip())


def parse_host_port(loc: str, text: str, problems: list[Problem]) -> HostPort | None:
    """Parse `host:port` or `[v6]:port`; "" means off."""
    if not text:
        return None
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        problems.append(Problem(loc, f"must be host:port, got {text!r}"))
        return None
    return HostPort(host, int(port_text))


def _positive(loc: str, value: int | float, problems: list[Problem], minimum: int = 1) -> None:
    if value < minimum:
        problems.append(Problem(loc, f"must be >= {minimum}, got {value}"))


def _check_redact(paths: list[Any], problems: list[Problem]) -> None:
    for path in paths:
        try:
            parse_path(path if isinstance(path, str) else "")
        except RedactPathError as e:
            problems.append(Problem("server.cache.events.redact", str(e)))


def _build(m: dict[str, Any], warnings: tuple[str, ...]) -> Config:
    problems: list[Problem] = []
    cache = m["server"]["cache"]
    ev = cache["events"]
    for key in ("size", "time_window_sec", "trim_interval_ms", "max_malformed_event_size_bytes"):
        _positive(f"server.cache.events.{key}", ev[key], problems)
    _positive("server.cache.pool.size", cache["pool"]["size"], problems)
    _check_redact(ev["redact"], problems)

    r = m["meta"]["storage"]["redis"]
    if not 0 < r["port"] <= 65535:
        problems.append(Problem("meta.storage.redis.port", f"must be 1..65535, got {r['port']}"))
    _positive("meta.storage.redis.database", r["database"], problems, minimum=0)
    _positive(
        "meta.storage.redis.ttl_minutes.events_cache",
        r["ttl_minutes"]["events_cache"],
        problems,
        minimum=0,
    )
    if r["cluster"] and r["sentinel_master_name"]:
        problems.append(
            Problem("meta.storage.redis.cluster", "cannot be combined with sentinel_master_name")
        )
    if r["tls_ca_file"] and not Path(r["tls_ca_file"]).is_file():
        problems.append(
            Problem("meta.storage.redis.tls_ca_file", f"no such file: {r['tls_ca_file']}")
        )

    side = m["sidecar"]
    ing = side["ingest"]
    try:
        socket_mode = int(ing["socket_mode"], 8)
        if not 0 <= socket_mode <= 0o777:
            raise ValueError
    except ValueError:
        problems.append(
            Problem(
                "sidecar.ingest.socket_mode",
                f'must be an octal mode like "0660", got {ing["socket_mode"]!r}',
            )
        )
        socket_mode = 0o660
    listen = parse_host_port("sidecar.ingest.listen", ing["listen"], problems)
    _positive("sidecar.ingest.max_request_bytes", ing["max_request_bytes"], problems)
    _positive("sidecar.ingest.queue_size", ing["queue_size"], problems)
    api = parse_host_port("sidecar.api.listen", side["api"]["listen"], problems)
    if api is None and not any(p.location == "sidecar.api.listen" for p in problems):
        problems.append(Problem("sidecar.api.listen", "must be set: it serves /healthz"))
    for key in ("drain_seconds", "flush_timeout_seconds"):
        _positive(f"sidecar.shutdown.{key}", side["shutdown"][key], problems, minimum=0)
    log = side["log"]
    if log["level"] not in LOG_LEVELS:
        problems.append(Problem("sidecar.log.level", f"must be one of {', '.join(LOG_LEVELS)}"))
    if log["format"] not in LOG_FORMATS:
        problems.append(Problem("sidecar.log.format", f"must be one of {', '.join(LOG_FORMATS)}"))
    if problems:
        raise ConfigError(problems)
    assert api is not None

    return Config(
        admin_tokens=_admin_tokens(m["server"]["admin_token"]),
        allow_token_in_query=m["server"]["allow_token_in_query"],
        cache=CacheSettings(
            enabled=cache["enabled"],
            events=EventsSettings(
                size=ev["size"],
                time_window_s=ev["time_window_sec"],
                trim_interval_s=ev["trim_interval_ms"] / 1000,
                max_malformed_event_bytes=ev["max_malformed_event_size_bytes"],
                redact=tuple(p.strip() for p in ev["redact"]),
            ),
            writers=cache["pool"]["size"],
        ),
        redis=RedisSettings(
            host=r["host"],
            port=r["port"],
            username=r["username"],
            password=r["password"],
            database=r["database"],
            sentinel_master_name=r["sentinel_master_name"],
            sentinel_password=r["sentinel_password"],
            cluster=r["cluster"],
            tls_skip_verify=r["tls_skip_verify"],
            tls_ca_file=r["tls_ca_file"],
            ttl_minutes=r["ttl_minutes"]["events_cache"],
            url=r["url"],
        ),
        ingest=IngestSettings(
            socket_path=ing["socket"],
            socket_mode=socket_mode,
            listen=listen,
            max_request_bytes=ing["max_request_bytes"],
            queue_size=ing["queue_size"],
        ),
        api_listen=api,
        drain_s=float(side["shutdown"]["drain_seconds"]),
        flush_timeout_s=float(side["shutdown"]["flush_timeout_seconds"]),
        log_level=log["level"],
        log_format=log["format"],
        warnings=warnings,
    )


def effective_settings(config: Config) -> dict[str, Any]:
    """The effective configuration in the contract's layout, secrets redacted."""
    r = config.redis
    ev = config.cache.events
    return {
        "server": {
            "admin_token": REDACTED if config.admin_tokens else "",
            "admin_tokens_configured": len(config.admin_tokens),
            "allow_token_in_query": config.allow_token_in_query,
            "cache": {
                "enabled": config.cache.enabled,
                "events": {
                    "size": ev.size,
                    "time_window_sec": ev.time_window_s,
                    "trim_interval_ms": round(ev.trim_interval_s * 1000),
                    "max_malformed_event_size_bytes": ev.max_malformed_event_bytes,
                    "redact": list(ev.redact),
                },
                "pool": {"size": config.cache.writers},
            },
        },
        "meta": {
            "storage": {
                "redis": {
                    "host": redact_url(r.host),
                    "url": redact_url(r.url),
                    "port": r.port,
                    "username": r.username,
                    "password": REDACTED if r.password else "",
                    "database": r.database,
                    "sentinel_master_name": r.sentinel_master_name,
                    "sentinel_password": REDACTED if r.sentinel_password else "",
                    "cluster": r.cluster,
                    "tls_skip_verify": r.tls_skip_verify,
                    "tls_ca_file": r.tls_ca_file,
                    "ttl_minutes": {"events_cache": r.ttl_minutes},
                    "embedded": not r.configured,
                }
            }
        },
        "sidecar": {
            "ingest": {
                "socket": config.ingest.socket_path,
                "socket_mode": f"0{config.ingest.socket_mode:o}",
                "listen": str(config.ingest.listen) if config.ingest.listen else "",
                "max_request_bytes": config.ingest.max_request_bytes,
                "queue_size": config.ingest.queue_size,
            },
            "api": {"listen": str(config.api_listen)},
            "shutdown": {
                "drain_seconds": config.drain_s,
                "flush_timeout_seconds": config.flush_timeout_s,
            },
            "log": {"level": config.log_level, "format": config.log_format},
        },
    }


def redact_url(text: str) -> str:
    """Hide the password part of a redis://user:pass@host URL."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    creds, _, hosts = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}{':' + REDACTED if colon else ''}@{hosts}"
