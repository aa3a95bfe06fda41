"""The Redis client from the settings: standalone, TLS, ACL user, Sentinel or Cluster.

Also the one place that turns every failure inside redis-py into a RedisError, so the
writers, the trimmer and the queries treat any of them as "Redis is down".
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from daemon.config import RedisSettings

DEFAULT_SENTINEL_PORT = 26379
CLIENT_NAME = "events-cache"
COMMAND_TIMEOUT_S = 5.0  # one command or pipeline
# A pipeline's limit grows with what it carries, at the pace of the slowest link a healthy
# Redis may sit behind (a busy shared network, a loaded server): a large batch is slow to
# send, not a sign that Redis is down, and a batch that timed out is counted as dropped.
SLOWEST_HEALTHY_BYTES_PER_S = 1024 * 1024
SENTINEL_TIMEOUT_S = 2.0
SCHEMES = ("redis", "rediss", "unix", "sentinel")

RedisClient = Redis | RedisCluster


def database_of(client: RedisClient) -> int:
    """The database a client works in (a Cluster has only database 0)."""
    if isinstance(client, RedisCluster):
        return 0
    pool = getattr(client, "connection_pool", None)  # a Sentinel's master client has one too
    return int((getattr(pool, "connection_kwargs", None) or {}).get("db") or 0)


class StorageConfigError(ValueError):
    """The Redis settings cannot describe a connection (e.g. an unknown URL scheme)."""


class ClusterUnavailableError(RedisConnectionError):
    """The cluster client found no node for a command (no reachable node, slot not covered).

    redis-py raises these as RedisClusterException, which is not a RedisError; as a
    ConnectionError the writers, trimmer and queries treat them as "Redis is down".
    """


class ClientInternalError(RedisConnectionError):
    """redis-py failed inside itself, e.g. a connection closed under a command while the
    cluster client reinitialised after a failover (AttributeError on a None writer, seen
    with redis-py 8.1). Treated as "Redis is down" so the caller backs off and retries;
    left unwrapped it killed a writer task, and that writer's shard never drained again.
    """


def call_timeout(payload_bytes: int) -> float:
    """The time limit of a call that sends `payload_bytes` of values."""
    return COMMAND_TIMEOUT_S + payload_bytes / SLOWEST_HEALTHY_BYTES_PER_S


class StoreUnavailable(Exception):
    """The store did not do what was asked: Redis could not be reached, did not answer
    in time, or failed. The one error the rest of the daemon sees of the store (nothing
    outside `daemon.store` names Redis); its text says what Redis' client said."""


@asynccontextmanager
async def redis_call(timeout_s: float = COMMAND_TIMEOUT_S) -> AsyncIterator[None]:
    """One Redis command or pipeline: bounded in time, and any failure surfaces as
    StoreUnavailable (cancellation passes). A timeout drops the connection (redis-py
    closes a connection whose read was interrupted), so no late reply is read by a later
    command."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except asyncio.CancelledError:
        raise
    except StoreUnavailable:
        raise
    except Exception as e:
        raise unavailable(e, timeout_s) from e


def unavailable(error: BaseException, timeout_s: float = COMMAND_TIMEOUT_S) -> StoreUnavailable:
    """What the rest of the daemon is told of a failure of Redis' client."""
    if isinstance(error, StoreUnavailable):
        return error
    if isinstance(error, TimeoutError):
        error = RedisTimeoutError(f"Redis did not answer within {timeout_s:g}s")
    elif isinstance(error, RedisClusterException):
        error = ClusterUnavailableError(f"{type(error).__name__}: {error}")
    elif not isinstance(error, RedisError | OSError):
        error = ClientInternalError(f"{type(error).__name__}: {error}")
    return StoreUnavailable(f"{type(error).__name__}: {error}")


def _split_hosts(text: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for part in text.split(","):
        part = part.strip()
        if part:
            hosts.append(_host_port(part, default_port))
    if not hosts:
        raise StorageConfigError("no sentinel host given")
    return hosts


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address keeps the port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else default_port
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, default_port


def _common_options(settings: RedisSettings) -> dict[str, Any]:
    """Timeouts that fail fast (queries answer 503, writers back off), auth and a name.

    No read timeout in redis-py itself: it would arm an asyncio timeout for every reply
    of a pipeline (500 of them for a summary page, a third of its time). `redis_call`
    bounds each command or pipeline as a whole instead.
    """
    options: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": 2.0,
        # One retry, on a connection error only (a pooled connection that died): after a
        # timeout the server may have applied the pipeline, and LPUSH again would
        # duplicate the batch. A failed batch is counted as dropped{redis_error}.
        "retry": Retry(
            ExponentialBackoff(cap=0.2, base=0.02),
            retries=1,
            supported_errors=(RedisConnectionError,),
        ),
        "health_check_interval": 15,
        "client_name": CLIENT_NAME,
    }
    if settings.username:
        options["username"] = settings.username
    if settings.password:
        options["password"] = settings.password
    return options


def _tls_options(settings: RedisSettings) -> dict[str, Any]:
    """redis-py's SSL connection options (without `ssl` itself, which from_url refuses)."""
    options: dict[str, Any] = {}
    if settings.tls_ca_file:
        options["ssl_ca_certs"] = settings.tls_ca_file
    if settings.tls_skip_verify:
        options["ssl_cert_reqs"] = ssl.CERT_NONE
        options["ssl_check_hostname"] = False
    return options


def _wants_tls(settings: RedisSettings) -> bool:
    """A CA file or skip-verify asks for TLS even with a plain host or redis:// URL."""
    return bool(settings.tls_ca_file or settings.tls_skip_verify)


def settings_problem(settings: RedisSettings) -> str | None:
    """Why the daemon could not build its client from these settings, or None: the same
    rules create_client applies at start, checked without connecting."""
    try:
        client = create_client(settings)
    except StorageConfigError as e:
        return str(e)
    del client  # built only to be checked; it never opened a connection
    return None


def create_client(settings: RedisSettings) -> RedisClient:
    """A redis-py asyncio client for standalone, Sentinel or Cluster, as configured;
    StorageConfigError when the settings cannot describe one."""
    try:
        return _create_client(settings)
    except StorageConfigError:
        raise
    except ValueError as e:  # redis-py's word on a URL it cannot read (never the URL)
        raise StorageConfigError(f"invalid Redis address: {e}") from e


def _create_client(settings: RedisSettings) -> RedisClient:
    target = (settings.url or settings.host).strip()
    if "://" in target:
        return _client_from_url(settings, target)
    options = _common_options(settings)
    if _wants_tls(settings):
        options.update(ssl=True, **_tls_options(settings))
    if settings.sentinel_master_name:
        return _sentinel_master(
            settings.sentinel_master_name,
            _split_hosts(target, DEFAULT_SENTINEL_PORT),
            options,
            settings.database,
            settings.sentinel_password,
        )
    host, port = _host_port(target, settings.port)
    if settings.cluster:
        return _cluster(options, host=host, port=port)
    return Redis(host=host, port=port, db=settings.database, **options)


def _cluster(options: dict[str, Any], url: str = "", **where: Any) -> RedisCluster:
    """A cluster client; the first node given is only where the slot map is read from."""
    options = dict(options)
    options.pop("health_check_interval")  # not a RedisCluster option
    # Cluster-level retry: after a node error redis-py refreshes the slot map and sends
    # again only the commands that have no reply yet (MOVED after a failover or a
    # migration). On a timeout that may repeat an LPUSH the node did apply.
    options["retry"] = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1)
    if url:
        return RedisCluster.from_url(url, **options)
    return RedisCluster(**where, **options)


def _client_from_url(settings: RedisSettings, url: str) -> RedisClient:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StorageConfigError(
            f"unsupported Redis URL scheme {scheme!r}: use one of {', '.join(SCHEMES)}"
        )
    options = _common_options(settings)
    if scheme == "sentinel":
        # sentinel://master_name:password@node1:port,node2:port[/db], as Jitsu accepted it.
        master = unquote(parts.username or "") or settings.sentinel_master_name
        if not master:
            raise StorageConfigError("a sentinel:// URL needs the master name as its user part")
        if parts.password:
            options["password"] = unquote(parts.password)
        if _wants_tls(settings):
            options.update(ssl=True, **_tls_options(settings))
        hosts = parts.netloc.rpartition("@")[2]
        db_text = parts.path.strip("/")
        if db_text and not db_text.isdigit():
            raise StorageConfigError(f"the database in a sentinel:// URL must be a number: {url}")
        db = int(db_text) if db_text else settings.database
        return _sentinel_master(
            master,
            _split_hosts(hosts, DEFAULT_SENTINEL_PORT),
            options,
            db,
            settings.sentinel_password,
        )
    if scheme == "redis" and _wants_tls(settings):
        url = "rediss" + url[len(scheme) :]  # a CA file or skip-verify means TLS
        scheme = "rediss"
    if scheme == "rediss":
        options.update(_tls_options(settings))
    # Values in the URL win over these (redis-py's from_url), so db is only a default.
    if settings.cluster:
        return _cluster(options, url=url)
    options.setdefault("db", settings.database)
    return Redis.from_url(url, **options)


def _sentinel_master(
    master: str,
    sentinels: list[tuple[str, int]],
    options: dict[str, Any],
    db: int,
    sentinel_password: str,
) -> Redis:
    """The master behind Sentinel; redis-py asks the sentinels again after a failover.

    The password (and ACL user) are the data nodes'. Sentinels often have no auth, and
    AUTH against a server without a password fails, so they get `sentinel_password`
    only (as Jitsu Classic, which never authenticated to sentinels).
    """
    sentinel_options = {k: v for k, v in options.items() if k.startswith(("socket_", "ssl"))}
    # Sentinels are asked outside redis_call (when the master is looked up): bound them.
    sentinel_options["socket_timeout"] = SENTINEL_TIMEOUT_S
    if sentinel_password:
        sentinel_options["password"] = sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
        sentinels, sentinel_kwargs=sentinel_options, **options
    )
    client: Redis = sentinel.master_for(master, db=db)
    return client
