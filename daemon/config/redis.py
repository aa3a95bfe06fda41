"""meta.storage.redis: where the cache lives (Jitsu Classic's keys, and a few more)."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config.fields import section, setting


@dataclass(frozen=True)
class TtlMinutesSettings:
    """meta.storage.redis.ttl_minutes."""

    events_cache: int = setting(
        0,
        "`> 0`: the trim loop also sets `EXPIRE` on each list written, and ids not written "
        "for that long leave the id index.",
        minimum=0,
    )


@dataclass(frozen=True)
class RedisSettings:
    """meta.storage.redis; `url` (from EVENTS_CACHE_REDIS_URL) wins over host/port/db."""

    host: str = setting(
        "",
        "A host name, or a URL: `redis://[user:password@]host:port/db`, `rediss://...` "
        "(TLS), `unix:///path/to/socket`, `sentinel://master_name:password@node1:port,"
        "node2:port`. Empty (and no `EVENTS_CACHE_REDIS_URL`): the embedded default. With "
        "`sentinel_master_name`, a comma-separated list of sentinels `host[:port]` (port "
        "26379 by default).",
        url_credentials=True,
    )
    port: int = setting(6379, "Port when `host` is a plain host name.", minimum=1, maximum=65535)
    username: str = setting("", "Redis ACL user.")
    password: str = setting(
        "",
        "Redis password of the data nodes (not sent to the sentinels).",
        secret=True,
        env="EVENTS_CACHE_REDIS_PASSWORD",
    )
    password_file: str = setting(
        "", "Read the password from this file. Wins over `password`.", secret_file_of="password"
    )
    database: int = setting(
        0, "Database index (standalone and Sentinel; a URL path wins).", minimum=0
    )
    sentinel_master_name: str = setting("", "Connect through Sentinel to this master.")
    sentinel_password: str = setting(
        "",
        "Password of the sentinels themselves, when they have `requirepass`. See docs/redis.md.",
        secret=True,
    )
    cluster: bool = setting(False, "`host`/`port` (or the URL) is a node of a Redis Cluster.")
    tls_skip_verify: bool = setting(
        False,
        "TLS without certificate and host name verification (testing only); also turns "
        "TLS on for a plain host.",
    )
    tls_ca_file: str = setting(
        "",
        "CA bundle to verify the server; setting it also turns TLS on for a plain host.",
        existing_file=True,
    )
    ttl_minutes: TtlMinutesSettings = section(TtlMinutesSettings)
    url: str = setting(
        "",
        "Replaces `host`, `port` and `database` (any URL form of `host`).",
        env="EVENTS_CACHE_REDIS_URL",
        yaml=False,
        url_credentials=True,
    )

    @property
    def configured(self) -> bool:
        """False when neither a host nor a URL is set: the embedded default applies."""
        return bool(self.host or self.url)
