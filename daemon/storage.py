"""Redis: connection from settings, the key layout in one place, and typed operations.

Every command here touches exactly one key, so the same code runs on a standalone
server, behind Sentinel, or on a Redis Cluster (redis-py's cluster pipeline refuses
multi-key commands even when the keys share a slot).

Key layout (Jitsu Classic's, so both can share one Redis during a migration):
- `events_cache:<namespace>#<id>` all events of an id, newest first (a List);
- `events_cache:<namespace>#<id>:error` its error events only;
- `events_cache:index:<namespace>` our id index (a Sorted Set, score = last write time);
- `events_cache:limited:<namespace>#<id>:<collection>:<minute>` limited-event counts
  of every sidecar, one hash field per second.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from daemon.config import RedisSettings
from daemon.entry import Collection, Namespace

KEY_PREFIX = "events_cache:"
LIMITED_KEY_TTL_S = 180  # a minute's hash is read for two minutes, then expires
DEFAULT_SENTINEL_PORT = 26379
CLIENT_NAME = "events-cache"
SCHEMES = ("redis", "rediss", "unix", "sentinel")

RedisClient = Redis | RedisCluster


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


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Every failure of a Redis call surfaces as a RedisError (cancellation passes)."""
    try:
        yield
    except (RedisError, OSError):
        raise
    except RedisClusterException as e:
        raise ClusterUnavailableError(f"{type(e).__name__}: {e}") from e
    except Exception as e:
        raise ClientInternalError(f"{type(e).__name__}: {e}") from e


def events_key(namespace: str, id_: str, collection: Collection = Collection.ALL) -> str:
    """The List of an id's events (all, or errors only)."""
    suffix = ":error" if collection == Collection.ERROR else ""
    return f"{KEY_PREFIX}{namespace}#{id_}{suffix}"


def index_key(namespace: str) -> str:
    """The Sorted Set of ids that have been written, by last write time."""
    return f"{KEY_PREFIX}index:{namespace}"


def limited_key(namespace: str, id_: str, collection: str, minute: int) -> str:
    """The hash of one minute's limited counts for an id and collection."""
    return f"{KEY_PREFIX}limited:{namespace}#{id_}:{collection}:{minute}"


@dataclass(frozen=True, slots=True)
class IdEvents:
    """What the query needs of one id: list length, newest entries, limited counts."""

    total: int
    entries: list[bytes]
    limited_slots: dict[int, int]


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
    """Timeouts that fail fast (queries answer 503, writers back off), auth and a name."""
    options: dict[str, Any] = {
        "socket_timeout": 5.0,
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


def create_client(settings: RedisSettings) -> RedisClient:
    """A redis-py asyncio client for standalone, Sentinel or Cluster, as configured."""
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
    if sentinel_password:
        sentinel_options["password"] = sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs=sentinel_options, **options
    )
    client: Redis = sentinel.master_for(master, db=db)
    return client


class Storage:
    """The sidecar's Redis operations; one client shared by writers, trimmer and queries."""

    def __init__(self, client: RedisClient, size: int, ttl_s: int) -> None:
        self.client = client
        self.size = size
        self.ttl_s = ttl_s
        self._expiring: set[str] = set()  # limited-count keys this sidecar gave a TTL
        self._expiring_minute = 0

    async def ping(self) -> None:
        """Raise when Redis does not answer."""
        with _redis_errors():
            await self.client.ping()

    async def write(
        self, lists: Mapping[str, Sequence[bytes]], ids: Mapping[str, Iterable[str]], now: float
    ) -> None:
        """One pipeline: one multi-value LPUSH per list, one ZADD per namespace index.

        The values of a list are in ingest order; LPUSH leaves the last one first.
        """
        pipe = self.client.pipeline(transaction=False)
        for key, values in lists.items():
            pipe.lpush(key, *values)
        for namespace, namespace_ids in ids.items():
            pipe.zadd(index_key(namespace), dict.fromkeys(namespace_ids, now))
        with _redis_errors():
            await pipe.execute()

    async def trim(self, keys: Iterable[str], now: float) -> None:
        """Cut each list to `size`, refresh its TTL, and prune the id index."""
        pipe = self.client.pipeline(transaction=False)
        keep = self.size - 1
        for key in keys:
            pipe.ltrim(key, 0, keep)
            if self.ttl_s:
                pipe.expire(key, self.ttl_s)
        if self.ttl_s:
            for namespace in Namespace:
                pipe.zremrangebyscore(index_key(namespace), "-inf", now - self.ttl_s)
        with _redis_errors():
            await pipe.execute()

    async def add_limited(self, counts: Mapping[tuple[Any, int], int]) -> None:
        """Add this sidecar's limited counts ((namespace, id, collection), second) -> n."""
        pipe = self.client.pipeline(transaction=False)
        new_keys: set[str] = set()
        for ((namespace, id_, collection), second), count in counts.items():
            key = limited_key(namespace, id_, collection, second // 60)
            pipe.hincrby(key, str(second), count)
            if key not in self._expiring:
                new_keys.add(key)
        # One EXPIRE per minute key and sidecar: set on the first write of the minute, it
        # outlives the two minutes the key is read in, so later writes need not renew it.
        for key in new_keys:
            pipe.expire(key, LIMITED_KEY_TTL_S)
        with _redis_errors():
            await pipe.execute()
        minute = max((second // 60 for (_, second) in counts), default=0)
        if minute != self._expiring_minute:
            self._expiring = {k for k in self._expiring if k.endswith(f":{minute}")}
            self._expiring_minute = minute
        self._expiring |= new_keys

    async def read(
        self,
        namespace: str,
        ids: Sequence[str],
        collection: Collection,
        limit: int,
        now_s: int,
    ) -> list[IdEvents]:
        """Length, newest `limit` entries and limited counts of each id, in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        minute = now_s // 60
        for id_ in ids:
            key = events_key(namespace, id_, collection)
            pipe.llen(key)
            if limit:
                pipe.lrange(key, 0, limit - 1)
            pipe.hgetall(limited_key(namespace, id_, collection, minute))
            pipe.hgetall(limited_key(namespace, id_, collection, minute - 1))
        with _redis_errors():
            replies = iter(await pipe.execute())
        out = []
        for _ in ids:
            total = int(next(replies))
            entries = list(next(replies)) if limit else []
            slots: dict[int, int] = {}
            for _minute in range(2):
                for field, value in next(replies).items():
                    slots[int(field)] = slots.get(int(field), 0) + int(value)
            out.append(IdEvents(total, entries, slots))
        return out

    async def ids(self, namespace: str) -> list[str]:
        """Ids of the namespace that sidecars have written, most recently written first."""
        with _redis_errors():
            members = await self.client.zrevrange(index_key(namespace), 0, -1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
