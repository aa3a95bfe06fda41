"""The configuration model: every key, its type, default and meaning, once.

Jitsu Classic's keys (`server.cache.*`, `meta.storage.redis.*`) keep their names and
defaults, so an existing Jitsu configuration block can be pasted in. The tree of
dataclasses mirrors the YAML; everything else about the configuration is derived from
it (see `daemon.config.fields`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.config.fields import section, setting
from daemon.config.redis import RedisSettings
from daemon.config.sidecar import IngestSettings, SidecarSettings
from daemon.core.redact import RedactPathError, parse_path


def _redact_paths(paths: tuple[str, ...]) -> str | None:
    for path in paths:
        try:
            parse_path(path)
        except RedactPathError as e:
            return str(e)
    return None


@dataclass(frozen=True)
class EventsSettings:
    """server.cache.events: the per-id capacity, its window and the trim cadence."""

    size: int = setting(
        100,
        "Events kept per id and collection, and the rate limit's capacity per window.",
        minimum=1,
    )
    time_window_sec: int = setting(
        60,
        "The rate limit's window: at most `size` events per id and collection are cached "
        "per window, per sidecar (each pod has its own buckets, as in Jitsu Classic).",
        minimum=1,
    )
    trim_interval_ms: int = setting(
        500, "How often lists written since the last pass are cut to `size`.", minimum=1
    )
    max_malformed_event_size_bytes: int = setting(
        10000, "A malformed body is kept cut to this many bytes.", minimum=1
    )
    redact: tuple[str, ...] = setting(
        (),
        'Dotted JSON paths (`eventn_ctx.user.email`, `items.*.card`) masked as "[redacted]" '
        "in `original` before caching. See docs/security.md.",
        check=_redact_paths,
    )

    @property
    def trim_interval_s(self) -> float:
        """The trim cadence in seconds."""
        return self.trim_interval_ms / 1000


@dataclass(frozen=True)
class PoolSettings:
    """server.cache.pool."""

    size: int = setting(
        10,
        "Concurrent Redis writers. Each id always goes to the same writer, so its order is kept.",
        minimum=1,
    )


@dataclass(frozen=True)
class CacheSettings:
    """server.cache."""

    enabled: bool = setting(
        True,
        "`false`: the ingest endpoints answer 503 and nothing is cached; the query API "
        "still serves what Redis holds.",
    )
    events: EventsSettings = section(EventsSettings)
    pool: PoolSettings = section(PoolSettings)


@dataclass(frozen=True)
class ServerSettings:
    """server: the query API's token and the cache itself."""

    admin_token: tuple[str, ...] = setting(
        (),
        "Token for the query API (`X-Admin-Token`, or `Authorization: Bearer`). A YAML "
        "list, or a comma-separated string, makes several tokens valid at once, for "
        "rotation. Required unless the embedded default is used (then one is generated "
        "and printed once on stderr). Under 16 characters: a warning (an error with "
        "`check-config --strict`).",
        secret=True,
        split=True,
        env="EVENTS_CACHE_ADMIN_TOKEN",
    )
    admin_token_file: str = setting(
        "",
        "Read the token(s) from this file, one per line. Wins over `admin_token`.",
        secret_file_of="admin_token",
    )
    allow_token_in_query: bool = setting(
        False,
        "`true` also accepts `?token=` as Jitsu Classic did (tokens then end up in access "
        "logs and browser history: keep it off).",
    )
    cache: CacheSettings = section(CacheSettings)


@dataclass(frozen=True)
class StorageSettings:
    """meta.storage."""

    redis: RedisSettings = section(RedisSettings)


@dataclass(frozen=True)
class MetaSettings:
    """meta."""

    storage: StorageSettings = section(StorageSettings)


@dataclass(frozen=True)
class Config:
    """The whole configuration, in the layout of the YAML file."""

    server: ServerSettings = section(ServerSettings)
    meta: MetaSettings = section(MetaSettings)
    sidecar: SidecarSettings = section(SidecarSettings)
    # Unknown keys found in the file (dotted), warned about and ignored.
    warnings: tuple[str, ...] = field(default=(), compare=False, metadata={"internal": True})
    # Settings that work but should not ("key: why"), warned about (errors under --strict).
    advice: tuple[str, ...] = field(default=(), compare=False, metadata={"internal": True})

    @property
    def admin_tokens(self) -> tuple[str, ...]:
        """The admin tokens that are valid now."""
        return self.server.admin_token

    @property
    def events(self) -> EventsSettings:
        """server.cache.events."""
        return self.server.cache.events

    @property
    def redis(self) -> RedisSettings:
        """meta.storage.redis."""
        return self.meta.storage.redis

    @property
    def ingest(self) -> IngestSettings:
        """sidecar.ingest."""
        return self.sidecar.ingest
