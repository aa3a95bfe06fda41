"""Every connection mode of meta.storage.redis against a real topology on loopback.

Each test starts its own servers (standalone, TLS with a CA made by the test, an ACL
user with only the sidecar's commands, a 3-master Cluster with replicas, a master +
replica behind three sentinels) and runs the daemon through that mode: events in by
the ingest, out by the query API. The daemon runs in-process; the server fixtures come
first in each signature, so they are torn down after the daemons, which stop in order
while their Redis still answers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.store.journey import JOURNEY_SHARDS
from tests.support import topologies as topo
from tests.support.daemon import StartDaemon
from tests.support.scrape import settle
from tests.support.servers import RedisServer, wait_for
from tests.support.topologies import (
    ACL_COMMANDS,
    ACL_COMMANDS_CLUSTER,
    ACL_COMMANDS_DATABASE,
    Cluster,
    SentinelSet,
    Topology,
    acl_denials,
    acl_setuser,
    look_around,
    round_trip,
)

pytestmark = pytest.mark.e2e


def redis_keys(host: str = "", **redis: Any) -> dict[str, Any]:
    """Config overrides for meta.storage.redis."""
    return {"meta": {"storage": {"redis": {"host": host, **redis}}}}


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    t = Topology(tmp_path / "topology")
    yield t
    t.stop()


@pytest.fixture
def server(topology: Topology) -> Iterator[RedisServer]:
    """A plain standalone server on TCP and a Unix socket."""
    sock_dir = topo.short_tmp()
    s = topology.add(
        RedisServer(
            topo.topology_binary(),
            topology.directory / "standalone",
            ["--unixsocket", str(sock_dir / "redis.sock"), "--unixsocketperm", "700"],
        )
    )
    s.start()
    yield s
    shutil.rmtree(sock_dir, ignore_errors=True)


def test_host_and_port_keys_with_a_database(server: RedisServer, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(redis_keys("127.0.0.1", port=server.port, database=3))
    round_trip(daemon, ["key-a", "key-b"])
    with server.client(db=3) as c:
        assert c.llen("events_cache:token#key-a") == 3
    with server.client(db=0) as c:
        assert c.dbsize() == 0


def test_host_port_in_host(server: RedisServer, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(redis_keys(f"127.0.0.1:{server.port}"))
    round_trip(daemon, ["key-a"])


def test_redis_url_with_database_in_path(server: RedisServer, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(redis_keys(f"redis://127.0.0.1:{server.port}/5"))
    round_trip(daemon, ["key-a"])
    with server.client(db=5) as c:
        assert c.llen("events_cache:token#key-a") == 3


def test_redis_url_from_the_environment_wins(
    server: RedisServer, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(
        redis_keys("127.0.0.1", port=1),  # nothing listens there
        env={"EVENTS_CACHE_REDIS_URL": f"redis://127.0.0.1:{server.port}/0"},
    )
    round_trip(daemon, ["key-env"])


def test_unix_socket_url(server: RedisServer, start_daemon: StartDaemon) -> None:
    path = server.args[1]
    daemon = start_daemon(redis_keys(f"unix://{path}?db=2"))
    round_trip(daemon, ["key-a"])
    with server.client(db=2) as c:
        assert c.llen("events_cache:token#key-a") == 3


# -- TLS -------------------------------------------------------------------------------------


def test_tls_url_verified_by_the_test_ca(topology: Topology, start_daemon: StartDaemon) -> None:
    tls, certs = topo.tls_server(topology)
    daemon = start_daemon(
        redis_keys(f"rediss://127.0.0.1:{tls.port}/0", tls_ca_file=str(certs["ca"]))
    )
    round_trip(daemon, ["key-tls"])
    with tls.client() as c:
        assert c.llen("events_cache:token#key-tls") == 3


def test_tls_host_with_ca_file_and_with_skip_verify(
    topology: Topology, start_daemon: StartDaemon
) -> None:
    tls, certs = topo.tls_server(topology)
    verified = start_daemon(redis_keys("localhost", port=tls.port, tls_ca_file=str(certs["ca"])))
    round_trip(verified, ["key-ca"], tag="ca")
    unverified = start_daemon(redis_keys("127.0.0.1", port=tls.port, tls_skip_verify=True))
    round_trip(unverified, ["key-skip"], tag="skip")


def test_tls_with_an_unknown_ca_fails_closed(
    topology: Topology, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    """A server certificate from another CA: no connection, ingest still answers 202."""
    tls, _ = topo.tls_server(topology)
    other = topo.make_ca(tmp_path / "other-ca")
    daemon = start_daemon(
        redis_keys(f"rediss://127.0.0.1:{tls.port}/0", tls_ca_file=str(other["ca"]))
    )
    assert daemon.post_token("key-x", '{"a": 1}').status == 202
    reply = daemon.api("/api/v1/events/cache", {"namespace": "token", "ids": "key-x"})
    assert reply.status == 503 and "message" in reply.json
    assert daemon.metric("events_cache_redis_up") == 0
    assert daemon.api("/readyz", token=None).json["redis"] == "down"


# -- ACL -------------------------------------------------------------------------------------


def test_acl_user_with_only_the_documented_commands(
    topology: Topology, start_daemon: StartDaemon
) -> None:
    """The operator's ACL from docs/redis.md: ingest, trim with TTL, limited counts, query."""
    s = topology.add(
        RedisServer(
            topo.topology_binary(),
            topology.directory / "acl",
            ["--requirepass", "admin-pw"],
            password="admin-pw",
        )
    )
    s.start()
    with s.client() as admin:
        acl_setuser(admin, "events", "events-pw", ACL_COMMANDS + ACL_COMMANDS_DATABASE)
    daemon = start_daemon(
        {
            **redis_keys(
                "127.0.0.1",
                port=s.port,
                username="events",
                password="events-pw",
                database=1,
                ttl_minutes={"events_cache": 5},
            ),
            "server": {"cache": {"events": {"size": 5, "trim_interval_ms": 50}}},
        }
    )
    round_trip(daemon, ["key-acl"], per_id=5)
    # beyond the limit: limited counts are flushed to Redis (HINCRBY, EXPIRE)
    reply = daemon.post_token("key-acl", '[{"a":1},{"a":2},{"a":3}]')
    assert reply.json["rate_limited"] == 3
    wait_for(lambda: daemon.query(namespace="token", ids="key-acl")["last_minute_limited"] == 3)
    assert daemon.query(namespace="token")["total_events"] == 5  # ids from the index
    with s.client(db=1) as admin:
        wait_for(lambda: admin.ttl("events_cache:token#key-acl") > 0)
    look_around(daemon, "key-acl")  # summary, filters, live tail, reset
    with s.client(db=1) as admin:
        assert acl_denials(admin) == []


def test_acl_user_without_a_command_is_reported_not_fatal(
    topology: Topology, start_daemon: StartDaemon
) -> None:
    """A too-strict ACL: the daemon keeps running, counts the drops, says why."""
    s = topology.add(RedisServer(topo.topology_binary(), topology.directory / "strict"))
    s.start()
    with s.client() as admin:
        commands = [c for c in ACL_COMMANDS if c != "lpush"]
        acl_setuser(admin, "events", "pw", commands)
    daemon = start_daemon(redis_keys("127.0.0.1", port=s.port, username="events", password="pw"))
    assert daemon.post_token("key-x", '{"a": 1}').status == 202
    wait_for(lambda: daemon.metric("events_cache_dropped_total", reason="redis_error") == 1)
    # The log says why. /readyz said it too, but only until the writer's next PING (which
    # the ACL allows) succeeded: reading it there raced with that PING.
    wait_for(lambda: "redis unavailable" in daemon.log() and "lpush" in daemon.log())
    assert daemon.metric("events_cache_redis_errors_total", operation="write") >= 1
    assert daemon.post_token("key-y", '{"a": 2}').status == 202  # still serving


# -- Cluster ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One Cluster for the module (creating one takes seconds)."""
    c = Cluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster(shared_cluster: Cluster) -> Cluster:
    """The module's Cluster, flushed, with no ACL user but `default`."""
    shared_cluster.reset()
    return shared_cluster


@pytest.mark.xdist_group("redis-cluster")  # one worker, one Cluster
def test_cluster_round_trip_across_all_masters(cluster: Cluster, start_daemon: StartDaemon) -> None:
    masters = {
        cluster.master_of_slot(topo.key_slot(f"events_cache:token#k{n}")).port for n in range(30)
    }
    assert len(masters) == 3  # the ids below land on every master
    for server in cluster.servers:
        with server.client() as c:
            acl_setuser(c, "events", "pw", ACL_COMMANDS + ACL_COMMANDS_CLUSTER)
    seed = cluster.servers[4]  # any node will do, a replica too: it serves the slot map
    daemon = start_daemon(
        {
            **redis_keys(
                f"127.0.0.1:{seed.port}",
                cluster=True,
                username="events",
                password="pw",
                ttl_minutes={"events_cache": 5},
            ),
            "server": {"cache": {"events": {"size": 5}}},
        }
    )
    ids = [f"k{n}" for n in range(30)]
    round_trip(daemon, ids, per_id=2)
    more = [{"namespace": "token", "id": "k0", "original": {"x": n}} for n in range(10)]
    # 5 per window: 2 cached before, 3 more now
    assert daemon.post_ndjson(more).json["rate_limited"] == 7
    # the 3 new entries are written asynchronously: the query sees them once written
    wait_for(lambda: daemon.query(namespace="token")["total_events"] == 30 * 2 + 3)
    wait_for(lambda: daemon.query(namespace="token", ids="k0")["last_minute_limited"] == 7)
    # every id's activity, its hashes on every master: 2 each; k0 2 + 10, 7 limited
    expected = {i: (2, 2, 0) for i in ids} | {"k0": (12, 5, 7)}

    def counted() -> bool:
        answer = daemon.api("/api/v1/events/activity", {"namespace": "token", "ids": ",".join(ids)})
        kinds = ("received", "cached", "rate_limited")
        found = {r["id"]: tuple(sum(r[k]) for k in kinds) for r in answer.json["ids"]}
        return found == expected

    wait_for(counted)
    # Several ids on every master in one query: one cluster pipeline of LLEN, LRANGE and
    # HGETALLs, split per node by redis-py; the replies come back in the ids' order.
    several = ["k0", *(f"k{n}" for n in range(1, 30, 3))]
    assert (
        len({cluster.master_of_slot(topo.key_slot(f"events_cache:token#{i}")) for i in several})
        == 3
    )
    answer = daemon.query(namespace="token", ids=",".join(several), limit=2)
    assert [e["token_id"] for e in answer["events"]] == [i for i in several for _ in range(2)]
    assert [e["original"]["x"] for e in answer["events"][:2]] == [2, 1]  # k0, newest first
    assert [e["original"]["n"] for e in answer["events"][2:4]] == [1, 0]
    assert answer["total_events"] == 5 + 2 * (len(several) - 1)
    assert answer["last_minute_limited"] == 7
    assert answer["response_events"] == 2 * len(several)
    client = cluster.client()
    try:
        assert client.llen("events_cache:token#k0") == 5
        assert client.ttl("events_cache:token#k0") > 0
    finally:
        client.close()
    look_around(daemon, "k1")  # summary, filters, the live tail over Cluster, reset
    for server in cluster.servers:
        with server.client() as c:
            assert acl_denials(c) == [], server.address


@pytest.mark.xdist_group("redis-cluster")
def test_cluster_journey_index_spreads_over_the_masters(
    cluster: Cluster, start_daemon: StartDaemon
) -> None:
    """The journey's index of one window is JOURNEY_SHARDS keys, on every master, not one
    hot key; a look-up finds an event through the one key of its shard, on any master."""
    daemon = start_daemon(redis_keys(f"127.0.0.1:{cluster.servers[0].port}", cluster=True))
    ids = [f"ev-{n}" for n in range(40)]
    events = [{"event_type": "pageview", "eventn_ctx": {"event_id": i}} for i in ids]
    assert daemon.post_token("shop", json.dumps(events)).status == 202
    lines = [
        {"namespace": "destination", "id": "pg", "original": e, "success": {"table": "t"}}
        for e in events
    ]
    assert daemon.post_ndjson(lines).status == 202
    settle(daemon)
    client = cluster.client()
    try:
        keys = [k.decode() for k in client.scan_iter("events_cache:journey:*", target_nodes="all")]
    finally:
        client.close()
    assert JOURNEY_SHARDS <= len(keys) <= 2 * JOURNEY_SHARDS  # one window (two at a turn)
    masters = {cluster.master_of_slot(topo.key_slot(k)).port for k in keys}
    assert len(masters) == 3
    for event_id in ids:
        reply = daemon.api("/api/v1/events/journey", {"event_id": event_id})
        assert reply.status == 200, reply.raw
        assert [e["token_id"] for e in reply.json["received"]] == ["shop"]
        assert [(d["destination_id"], d["status"]) for d in reply.json["destinations"]] == [
            ("pg", "success")
        ]


@pytest.mark.xdist_group("redis-cluster")
def test_cluster_url(cluster: Cluster, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(redis_keys(f"redis://127.0.0.1:{cluster.servers[0].port}", cluster=True))
    round_trip(daemon, ["u1", "u2", "u3"])


# -- Sentinel --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """One master + replica + three sentinels for the module."""
    s = SentinelSet(tmp_path_factory.mktemp("sentinel"), password="data-pw")
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture
def sentinels(shared_sentinels: SentinelSet) -> SentinelSet:
    """The module's sentinel set, its data flushed, with no ACL user but `default`."""
    shared_sentinels.reset()
    return shared_sentinels


@pytest.mark.xdist_group("redis-sentinel")  # one worker, one sentinel set
def test_sentinel_keys_with_several_sentinels(
    sentinels: SentinelSet, start_daemon: StartDaemon
) -> None:
    with sentinels.master.client() as c:
        acl_setuser(c, "events", "events-pw", ACL_COMMANDS + ACL_COMMANDS_DATABASE)
    daemon = start_daemon(
        redis_keys(
            sentinels.hosts,
            sentinel_master_name=sentinels.master_name,
            username="events",
            password="events-pw",
            database=2,
        )
    )
    round_trip(daemon, ["key-s1", "key-s2"])
    with sentinels.master.client(db=2) as c:
        assert c.llen("events_cache:token#key-s1") == 3
    look_around(daemon, "key-s2")
    with sentinels.master.client(db=2) as c:
        assert acl_denials(c) == []


@pytest.mark.xdist_group("redis-sentinel")
def test_sentinel_url_as_jitsu_accepted_it(
    sentinels: SentinelSet, start_daemon: StartDaemon
) -> None:
    url = f"sentinel://{sentinels.master_name}:data-pw@{sentinels.hosts}"
    daemon = start_daemon(redis_keys(url))
    round_trip(daemon, ["key-url"])


def test_sentinels_with_their_own_password(start_daemon: StartDaemon, tmp_path: Path) -> None:
    s = SentinelSet(tmp_path / "sentinel-auth", password="data-pw", sentinel_password="s-pw")
    try:
        s.start()
        daemon = start_daemon(
            redis_keys(
                s.sentinels[0].address,  # one sentinel is enough to find the master
                sentinel_master_name=s.master_name,
                password="data-pw",
                sentinel_password="s-pw",
            )
        )
        round_trip(daemon, ["key-auth"])
        assert daemon.stop() == 0  # in order, while the servers still run
    finally:
        s.stop()


# -- errors from inside redis-py -------------------------------------------------------------


class _BrokenClient:
    """Fails the way redis-py 8.1's cluster client did after a failover."""

    async def ping(self) -> None:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    async def zrevrange(self, *_: Any) -> None:
        from redis.exceptions import SlotNotCoveredError

        raise SlotNotCoveredError("slot 7 is not covered")


async def test_client_internal_errors_surface_as_the_stores_one_error() -> None:
    """Callers catch StoreUnavailable only: anything else used to kill a writer task."""
    from daemon.store.client import StoreUnavailable
    from daemon.store.storage import Storage

    storage = Storage(_BrokenClient(), size=10, ttl_s=0)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable, match="ClientInternalError: AttributeError"):
        await storage.ping()
    with pytest.raises(StoreUnavailable, match="ClusterUnavailableError: SlotNotCoveredError"):
        await storage.ids("token")
