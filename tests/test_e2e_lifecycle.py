"""End-to-end lifecycle: Redis outages, metrics bookkeeping, shutdown, CLI, start-up.

Tests that stop or pause Redis run on a server of their own (`spawn_redis`), never on
the suite's shared one. Signals, SIGKILL, the command line and the embedded default's
printed token need the daemon as a subprocess (`start_daemon_process`); the rest run it
in-process (`start_daemon`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.support.daemon import ADMIN_TOKEN, DaemonProcess, StartDaemon, StartDaemonProcess
from tests.support.scrape import accounted, settle
from tests.support.scrape import list_key as key
from tests.support.servers import SpawnRedis, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "daemon"]
NO_REFILL = {"time_window_sec": 3600}
CACHE = "/api/v1/events/cache"
NAMESPACES = ("token", "destination")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_CACHE_")}
    clean.update(env or {})
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=clean, cwd=ROOT
    )


def wait_exit(daemon: DaemonProcess, timeout: float = 30) -> int:
    """The exit code of a daemon already signalled (stop() would signal it again)."""
    try:
        return daemon.process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"daemon did not exit:\n{daemon.log()[-3000:]}") from None


def token_lines(id_: str, start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"namespace": "token", "id": id_, "original": {"seq": n}}
        for n in range(start, start + count)
    ]


# -- Redis outage ----------------------------------------------------------------------


def test_redis_stopped_while_ingesting(start_daemon: StartDaemon, spawn_redis: SpawnRedis) -> None:
    server = spawn_redis()
    queue_size = 20
    daemon = start_daemon(
        {
            "server": {"cache": {"events": {"size": 10_000, **NO_REFILL}}},
            "sidecar": {"ingest": {"queue_size": queue_size}},
        },
        url=server.url,
    )
    for n in range(5):
        assert daemon.post_token("before", json.dumps({"seq": n})).status == 202
    settle(daemon)
    assert daemon.metric("events_cache_redis_up") == 1
    cached_before = daemon.metric(
        "events_cache_cached_total", collection="all", cache_namespace="token"
    )
    assert cached_before == 5

    server.kill()
    replies = [daemon.post_token("during", json.dumps({"seq": n})) for n in range(100)]
    assert [r.status for r in replies] == [202] * 100
    answered_dropped = sum(r.json["dropped"] for r in replies)
    assert sum(r.json["accepted"] for r in replies) + answered_dropped == 100

    wait_for(lambda: daemon.metric("events_cache_redis_up") == 0, timeout=10)
    m = daemon.metrics()
    queue_full = m['events_cache_dropped_total{reason="queue_full"}']
    redis_error = m['events_cache_dropped_total{reason="redis_error"}']
    assert queue_full == answered_dropped
    # The queue holds at most queue_size; the rest was dropped, and counted.
    assert m["events_cache_queue_depth"] <= queue_size
    assert queue_full + redis_error >= 100 - queue_size
    assert redis_error >= 1  # the batch the writer had taken when Redis went away
    received, done = accounted(m, "token")
    assert received == 105 and received == done

    # The query API reports the outage as 503; the probes stay up.
    reply = daemon.api(CACHE, {"namespace": "token", "ids": "during"})
    assert reply.status == 503 and reply.json["message"]
    assert daemon.api("/readyz", token=None).status == 200
    assert daemon.api("/readyz", token=None).json["redis"] == "down"
    assert daemon.api("/healthz", token=None).status == 200

    server.start()  # same port, empty (no persistence); the daemon is not restarted
    wait_for(lambda: daemon.metric("events_cache_redis_up") == 1, timeout=10)
    settle(daemon)
    m = daemon.metrics()
    written_after = (
        m['events_cache_cached_total{cache_namespace="token",collection="all"}'] - cached_before
    )
    client = server.client()
    try:
        # What was still queued when Redis came back was written, and nothing else.
        assert client.llen(key("token", "during")) == written_after
        assert m["events_cache_queue_depth"] == 0
        for r in range(3):
            reply = daemon.post_token("after", json.dumps({"seq": r}))
            assert reply.json["accepted"] == 1
        settle(daemon)
        answer = daemon.query(namespace="token", ids="after")
        assert [e["original"]["seq"] for e in answer["events"]] == [2, 1, 0]
        assert client.llen(key("token", "after")) == 3
    finally:
        client.close()
    received, done = accounted(daemon.metrics(), "token")
    assert (received, done) == (108, 108)
    assert daemon.api("/readyz", token=None).json["redis"] == "up"
    assert daemon.stop() == 0


def test_redis_down_at_start(start_daemon: StartDaemon, spawn_redis: SpawnRedis) -> None:
    """The sidecar starts, is ready and takes ingest without Redis; writes begin once it
    is there, without a restart."""
    server = spawn_redis()
    server.kill()
    daemon = start_daemon(
        {"sidecar": {"ingest": {"queue_size": 50}}, "server": {"cache": {"events": NO_REFILL}}},
        url=server.url,
    )
    assert daemon.api("/readyz", token=None).json["redis"] == "down"
    assert daemon.metric("events_cache_redis_up") == 0
    reply = daemon.post_token("early", b'{"a": 1}')
    assert (reply.status, reply.json["accepted"]) == (202, 1)
    assert daemon.api(CACHE, {"namespace": "token"}).status == 503

    server.start()
    wait_for(lambda: daemon.metric("events_cache_redis_up") == 1, timeout=10)
    for n in range(3):
        assert daemon.post_token("late", json.dumps({"seq": n})).json["accepted"] == 1
    settle(daemon)
    answer = daemon.query(namespace="token", ids="late")
    assert [e["original"]["seq"] for e in answer["events"]] == [2, 1, 0]
    received, done = accounted(daemon.metrics(), "token")
    assert received == done == 4
    assert daemon.stop() == 0


# -- Metrics ---------------------------------------------------------------------------


def test_metrics_move_as_predicted(start_daemon: StartDaemon, redis_client: redis.Redis) -> None:
    queue_size = 777
    daemon = start_daemon(
        {
            "server": {"cache": {"events": {"size": 3, **NO_REFILL}}},
            "sidecar": {"ingest": {"queue_size": queue_size}},
        }
    )
    m = daemon.metrics()
    assert m["events_cache_queue_capacity"] == queue_size
    assert m["events_cache_redis_up"] == 1
    assert any(k.startswith("events_cache_build_info{version=") for k in m)
    for ns in NAMESPACES:
        assert m[f'events_cache_received_total{{cache_namespace="{ns}"}}'] == 0

    # token k: 5 events with room for 3, then a malformed body: its all-list bucket is
    # empty but its error bucket is not, so it is cached in the error list only.
    replies = [daemon.post_token("k", json.dumps({"seq": n})) for n in range(5)]
    assert [r.json["accepted"] for r in replies] == [1, 1, 1, 0, 0]
    assert [r.json["rate_limited"] for r in replies] == [0, 0, 0, 1, 1]
    reply = daemon.post_token("k", b"{broken")
    assert (reply.json["accepted"], reply.json["rate_limited"]) == (0, 1)

    # destination d: 3 successes, then 4 errors: 3 fit the error bucket, 1 does not.
    dest = [
        {"namespace": "destination", "id": "d", "original": {"seq": n}, "success": {}}
        for n in range(3)
    ] + [
        {"namespace": "destination", "id": "d", "original": {"seq": n}, "error": "e"}
        for n in range(3, 7)
    ]
    reply = daemon.post_ndjson([*dest, "not json", {"namespace": "x"}])
    assert reply.json == {
        "accepted": 3,
        "rate_limited": 4,
        "dropped": 0,
        "invalid": 2,
        "errors": reply.json["errors"],
        "limited": reply.json["limited"],
    }
    # both of d's buckets are empty now: its events are limited at the source until then
    [limited] = reply.json["limited"]
    assert (limited["namespace"], limited["id"]) == ("destination", "d")
    assert limited["collections"] == ["all", "error"]
    settle(daemon)

    m = daemon.metrics()
    expected = {
        'events_cache_received_total{cache_namespace="token"}': 6,
        'events_cache_cached_total{cache_namespace="token",collection="all"}': 3,
        'events_cache_cached_total{cache_namespace="token",collection="error"}': 1,
        'events_cache_rate_limited_total{cache_namespace="token",collection="all"}': 3,
        'events_cache_rate_limited_total{cache_namespace="token",collection="error"}': 0,
        'events_cache_received_total{cache_namespace="destination"}': 7,
        'events_cache_cached_total{cache_namespace="destination",collection="all"}': 3,
        'events_cache_cached_total{cache_namespace="destination",collection="error"}': 3,
        'events_cache_rate_limited_total{cache_namespace="destination",collection="all"}': 4,
        'events_cache_rate_limited_total{cache_namespace="destination",collection="error"}': 1,
        'events_cache_dropped_total{reason="queue_full"}': 0,
        'events_cache_dropped_total{reason="redis_error"}': 0,
        'events_cache_dropped_total{reason="shutdown"}': 0,
        "events_cache_malformed_total": 1,
        "events_cache_invalid_total": 2,
        "events_cache_queue_depth": 0,
        "events_cache_redis_up": 1,
    }
    assert {k: m.get(k) for k in expected} == expected
    for ns in NAMESPACES:
        received, done = accounted(m, ns)
        assert received == done, ns
    # What the counters say is what Redis holds.
    assert redis_client.llen(key("token", "k")) == 3
    assert redis_client.llen(key("token", "k", True)) == 1
    assert redis_client.llen(key("destination", "d")) == 3
    assert redis_client.llen(key("destination", "d", True)) == 3
    assert m["events_cache_redis_write_seconds_count"] >= 1
    route = (
        'events_cache_http_request_duration_seconds_count{listener="ingest",method="POST",'
        'route="/v1/token/{token_id}/events",status="202"}'
    )
    assert m[route] == 6

    # The limited counts reach Redis within about a second and show in the query.
    wait_for(lambda: daemon.query(ids="d")["last_minute_limited"] == 4, timeout=5)
    assert daemon.query(ids="d", status="error")["last_minute_limited"] == 1
    assert daemon.query(namespace="token", ids="k")["last_minute_limited"] == 3
    query_route = (
        'events_cache_http_request_duration_seconds_count{listener="api",method="GET",'
        'route="/api/v1/events/cache",status="200"}'
    )
    assert daemon.metrics()[query_route] >= 3
    # No label carries a token or destination id; the admin token is never logged.
    assert not any('"k"' in k or '"d"' in k for k in daemon.metrics())
    assert daemon.stop() == 0
    assert ADMIN_TOKEN not in daemon.log()


# -- Shutdown --------------------------------------------------------------------------


def test_sigterm_with_events_queued_loses_none(
    start_daemon_process: StartDaemonProcess, spawn_redis: SpawnRedis
) -> None:
    server = spawn_redis()
    daemon = start_daemon_process(
        {
            "server": {"cache": {"events": {"size": 100_000, **NO_REFILL}, "pool": {"size": 4}}},
            "sidecar": {"ingest": {"queue_size": 100_000}},
        },
        url=server.url,
    )
    ids = [f"id-{i}" for i in range(10)]
    for id_ in ids:
        daemon.post_ndjson(token_lines(id_, 0, 1))
    settle(daemon)

    client = server.client()
    try:
        # Hold the writers: their LPUSH waits until the pause ends, so events stay queued.
        client.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
        accepted = 0
        for r in range(5):
            lines = [line for id_ in ids for line in token_lines(id_, 1 + r * 200, 200)]
            reply = daemon.post_ndjson(lines)
            assert reply.status == 202
            accepted += reply.json["accepted"]
        assert accepted == 10_000
        assert daemon.metric("events_cache_queue_depth") > 0
        daemon.signal(signal.SIGTERM)
        # Shutdown has begun while the events are still queued; now let Redis take them.
        wait_for(lambda: daemon.api("/readyz", token=None).json["draining"], timeout=5)
        assert daemon.metric("events_cache_queue_depth") > 0
        client.execute_command("CLIENT", "UNPAUSE")
        assert wait_exit(daemon) == 0
        assert sum(client.llen(key("token", id_)) for id_ in ids) == 10_010
        for id_ in ids:
            seqs = [
                json.loads(json.loads(raw)["original"])["seq"]
                for raw in client.lrange(key("token", id_), 0, -1)
            ]
            assert seqs == list(range(1000, -1, -1)), id_
    finally:
        client.close()
    stopped = [json.loads(line) for line in daemon.log().splitlines() if '"stopped"' in line]
    assert len(stopped) == 1 and stopped[0]["dropped_at_shutdown"] == 0


def test_shutdown_with_redis_hanging_counts_the_rest(
    start_daemon_process: StartDaemonProcess, spawn_redis: SpawnRedis
) -> None:
    """Redis does not answer: after flush_timeout_seconds the daemon exits 0 anyway and
    counts what it could not write as dropped (the summary line adds up)."""
    server = spawn_redis()
    daemon = start_daemon_process(
        {
            "server": {"cache": {"events": {"size": 100_000, **NO_REFILL}, "pool": {"size": 1}}},
            "sidecar": {"shutdown": {"drain_seconds": 0, "flush_timeout_seconds": 1}},
        },
        url=server.url,
    )
    daemon.post_ndjson(token_lines("warm", 0, 1))
    settle(daemon)
    client = server.client()
    try:
        client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        # One writer takes at most 2000 entries at a time: of 3000, some stay queued.
        for r in range(6):
            reply = daemon.post_ndjson(token_lines(f"id-{r}", 0, 500))
            assert reply.json["accepted"] == 500
        assert daemon.metric("events_cache_queue_depth") > 0
        daemon.signal(signal.SIGTERM)
        assert wait_exit(daemon) == 0
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
        client.close()
    (summary,) = [json.loads(x) for x in daemon.log().splitlines() if '"stopped"' in x]
    assert summary["dropped_at_shutdown"] > 0
    assert summary["received"] == 3001
    assert summary["received"] == summary["cached"] + summary["dropped"], summary
    # Every drop happened in the flush, the batch its timeout cut included.
    assert summary["dropped_at_shutdown"] == summary["dropped"], summary


def test_the_shutdown_summary_adds_up(start_daemon_process: StartDaemonProcess) -> None:
    """received = cached + rate_limited + dropped, the error lists apart: an error event
    is cached (or limited) in both lists and counts once in each pair."""
    daemon = start_daemon_process({"server": {"cache": {"events": {"size": 2, **NO_REFILL}}}})
    lines = [{**line, "error": "failed"} for line in token_lines("k", 0, 5)]
    assert daemon.post_ndjson(lines).json["accepted"] == 2
    assert daemon.post_ndjson(token_lines("quiet", 0, 1)).json["accepted"] == 1
    settle(daemon)
    daemon.signal(signal.SIGTERM)
    assert wait_exit(daemon) == 0
    (summary,) = [json.loads(x) for x in daemon.log().splitlines() if '"stopped"' in x]
    assert (summary["received"], summary["cached"], summary["rate_limited"]) == (6, 3, 3)
    assert (summary["cached_errors"], summary["rate_limited_errors"]) == (2, 3)
    assert summary["dropped"] == summary["dropped_at_shutdown"] == 0


def test_drain_keeps_accepting_after_sigterm(
    start_daemon_process: StartDaemonProcess, redis_client: redis.Redis
) -> None:
    daemon = start_daemon_process({"sidecar": {"shutdown": {"drain_seconds": 2}}})
    daemon.signal(signal.SIGTERM)
    wait_for(lambda: daemon.api("/readyz", token=None).json["draining"], timeout=5)
    for via in ("unix", "tcp"):
        reply = daemon.post_token("late", b'{"when": "draining"}', via=via)
        assert (reply.status, reply.json["accepted"]) == (202, 1)
    assert daemon.process.poll() is None
    assert wait_exit(daemon) == 0
    assert redis_client.llen(key("token", "late")) == 2
    assert not Path(daemon.socket_path).exists()  # the socket is removed on exit


def test_second_sigterm_exits_at_once(start_daemon_process: StartDaemonProcess) -> None:
    daemon = start_daemon_process({"sidecar": {"shutdown": {"drain_seconds": 60}}})
    daemon.signal(signal.SIGTERM)
    wait_for(lambda: daemon.api("/readyz", token=None).json["draining"], timeout=5)
    assert daemon.process.poll() is None  # still draining
    code = daemon.stop(signal.SIGTERM, timeout=10)
    assert code != 0


def test_sigint_stops_like_sigterm(
    start_daemon_process: StartDaemonProcess, redis_client: redis.Redis
) -> None:
    daemon = start_daemon_process()
    daemon.post_token("int", b'{"a": 1}')
    assert daemon.stop(signal.SIGINT) == 0
    assert redis_client.llen(key("token", "int")) == 1


def test_socket_mode_and_stale_socket(
    start_daemon_process: StartDaemonProcess, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "shared" / "ingest.sock"
    settings = {"sidecar": {"ingest": {"socket": str(path), "socket_mode": "0600"}}}
    first = start_daemon_process(settings)
    assert path.is_socket()
    assert path.stat().st_mode & 0o777 == 0o600
    # Killed without cleanup (OOM, SIGKILL): the socket file stays behind ...
    first.process.kill()
    first.process.wait()
    assert path.is_socket()
    # ... and the restarted container takes the path over.
    second = start_daemon(settings)
    second.socket_path = str(path)
    assert second.post_token("k", b"{}").json["accepted"] == 1
    assert second.stop() == 0
    assert not path.exists()


def test_listeners_can_be_turned_off(start_daemon: StartDaemon) -> None:
    no_socket = start_daemon({"sidecar": {"ingest": {"socket": ""}}})
    assert not Path(no_socket.socket_path).exists()
    assert no_socket.post_token("k", b"{}", via="tcp").json["accepted"] == 1
    no_tcp = start_daemon({"sidecar": {"ingest": {"listen": ""}}})
    with pytest.raises(OSError):
        no_tcp.post_token("k", b"{}", via="tcp")
    assert no_tcp.post_token("k", b"{}").json["accepted"] == 1


# -- Command line ----------------------------------------------------------------------


def test_settle_heap_freezes_what_start_up_left() -> None:
    """Once started, the daemon (daemon.serve.run) moves its start-up heap out of the
    collector's reach: a full collection then walks only what came later, not the
    modules, app and clients (tens of milliseconds each on a busy machine, issue 12).
    In a process of its own, not to freeze the test runner's heap."""
    code = (
        "import gc, daemon.app\n"
        "from daemon.serve import settle_heap\n"
        "settle_heap()\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    frozen, left = map(int, out.stdout.split())
    assert frozen > 10_000, out.stdout
    assert left < 1_000, out.stdout


def test_version() -> None:
    from daemon import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"events-cache {__version__}"
    console = ROOT / ".venv" / "bin" / "events-cache"
    if console.exists():
        out = subprocess.run([str(console), "--version"], capture_output=True, text=True)
        assert out.stdout.strip() == f"events-cache {__version__}"


def write_config(tmp_path: Path, doc: dict[str, Any], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_check_config_valid_redacts_secrets(tmp_path: Path) -> None:
    secrets = ("adm1n-s3cr3t-token", "second-adm1n-token", "p4ss-in-url", "p4ss-in-key")
    path = write_config(
        tmp_path,
        {
            "server": {
                "admin_token": [secrets[0], secrets[1]],
                "cache": {"events": {"size": 42, "time_window_sec": 30}},
            },
            "meta": {
                "storage": {
                    "redis": {
                        "host": f"redis://user:{secrets[2]}@redis.example:6380/2",
                        "password": secrets[3],
                    }
                }
            },
            "sidecar": {"ingest": {"queue_size": 1234}},
        },
    )
    for args in (("check-config", "--config", str(path)), ("--config", str(path), "check-config")):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        for secret in secrets:
            assert secret not in result.stdout + result.stderr
        settings = yaml.safe_load(result.stdout)
        assert settings["server"]["cache"]["events"]["size"] == 42
        assert settings["server"]["cache"]["events"]["time_window_sec"] == 30
        assert settings["server"]["cache"]["events"]["trim_interval_ms"] == 500  # default
        assert settings["sidecar"]["ingest"]["queue_size"] == 1234
        assert settings["server"]["admin_token"] != "" and "redacted" in result.stdout
        assert "redis.example" in result.stdout
    result = run_cli("check-config", "--config", str(path), "--format", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["server"]["cache"]["events"]["size"] == 42
    # Secrets from the environment are redacted too.
    result = run_cli(
        "check-config",
        "--config",
        str(path),
        env={"EVENTS_CACHE_ADMIN_TOKEN": "env-t0ken-xyz", "EVENTS_CACHE_REDIS_PASSWORD": "env-pw"},
    )
    assert result.returncode == 0
    assert "env-t0ken-xyz" not in result.stdout and "env-pw" not in result.stdout


@pytest.mark.parametrize(
    ("doc", "location"),
    [
        ({"server": {"cache": {"events": {"size": "big"}}}}, "server.cache.events.size"),
        ({"server": {"cache": {"events": {"size": 0}}}}, "server.cache.events.size"),
        ({"server": {"cache": {"pool": {"size": True}}}}, "server.cache.pool.size"),
        ({"sidecar": {"ingest": {"queue_size": 1.5}}}, "sidecar.ingest.queue_size"),
        ({"meta": {"storage": {"redis": {"port": "x"}}}}, "meta.storage.redis.port"),
        ({"server": {"allow_token_in_query": "yes"}}, "server.allow_token_in_query"),
        ({"server": {"cache": "on"}}, "server.cache"),
        ({"sidecar": {"log": {"format": "xml"}}}, "sidecar.log.format"),
    ],
)
def test_check_config_invalid_names_the_key(
    tmp_path: Path, doc: dict[str, Any], location: str
) -> None:
    path = write_config(tmp_path, {"server": {"admin_token": "t"}, **doc})
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert location in result.stderr
    assert "Traceback" not in result.stderr
    # The daemon itself refuses the same file the same way.
    result = run_cli("--config", str(path))
    assert result.returncode == 1 and location in result.stderr


def test_check_config_unknown_key_warns(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"server": {"admin_token": "t", "cache": {"sizee": 5}}})
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 0
    assert "server.cache.sizee" in result.stderr


def test_check_config_missing_file(tmp_path: Path) -> None:
    result = run_cli("check-config", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1 and "nope.yaml" in result.stderr


# -- Start-up --------------------------------------------------------------------------


def test_no_admin_token_with_redis_configured_refuses_to_start(
    start_daemon_process: StartDaemonProcess,
) -> None:
    daemon = start_daemon_process({"server": {"admin_token": ""}}, wait_ready=False)
    code = daemon.process.wait(15)
    assert code != 0
    assert "server.admin_token" in daemon.log()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_embedded_default_round_trip(start_daemon_process: StartDaemonProcess) -> None:
    daemon = start_daemon_process(
        {"server": {"admin_token": ""}, "meta": {"storage": {"redis": {"host": ""}}}}
    )
    log = daemon.log()
    match = re.search(r"Admin token: (\S+) +\(generated for this run", log)
    assert match, log
    token = match.group(1)
    assert "local to this process" in log

    children = _children(daemon.process.pid)
    assert len(children) == 1
    cmdline = Path(f"/proc/{children[0]}/cmdline").read_bytes()
    assert b"valkey-server" in cmdline or b"redis-server" in cmdline

    reply = daemon.post_token("my-api-key", b'{"event_type": "pageview"}')
    assert reply.json["accepted"] == 1
    settle(daemon)
    params = {"namespace": "token", "ids": "my-api-key"}
    assert daemon.api(CACHE, params, token=ADMIN_TOKEN).status == 401
    reply = daemon.api(CACHE, params, token=token)
    assert reply.status == 200, reply.raw
    assert [e["original"] for e in reply.json["events"]] == [{"event_type": "pageview"}]

    assert daemon.stop() == 0
    wait_for(lambda: not _alive(children[0]), timeout=10)
    # Printed once for the user; never in a log line.
    log_lines = [line for line in daemon.log().splitlines() if line.startswith("{")]
    assert log_lines and not any(token in line for line in log_lines)


def test_embedded_server_stopped_on_second_signal(
    start_daemon_process: StartDaemonProcess,
) -> None:
    """Exiting at once still takes the embedded server down with it."""
    daemon = start_daemon_process(
        {
            "meta": {"storage": {"redis": {"host": ""}}},
            "sidecar": {"shutdown": {"drain_seconds": 60}},
        }
    )
    (child,) = _children(daemon.process.pid)
    daemon.signal(signal.SIGTERM)
    wait_for(lambda: daemon.api("/readyz", token=None).json["draining"], timeout=5)
    assert _alive(child)
    assert daemon.stop(signal.SIGTERM, timeout=10) != 0
    wait_for(lambda: not _alive(child), timeout=10)


def test_embedded_server_dies_with_a_killed_daemon(
    start_daemon_process: StartDaemonProcess,
) -> None:
    daemon = start_daemon_process({"meta": {"storage": {"redis": {"host": ""}}}})
    (child,) = _children(daemon.process.pid)
    daemon.process.kill()  # SIGKILL: no clean-up code runs
    daemon.process.wait()
    wait_for(lambda: not _alive(child), timeout=10)


def test_the_daemon_warns_of_a_short_admin_token_without_showing_it(
    start_daemon_process: StartDaemonProcess,
) -> None:
    daemon = start_daemon_process({"server": {"admin_token": "pw-9-char"}})
    assert daemon.api("/api/v1/events/cache", {}, token="pw-9-char").status == 200
    daemon.signal(signal.SIGTERM)
    assert wait_exit(daemon) == 0
    lines = [json.loads(x) for x in daemon.log().splitlines() if x.startswith("{")]
    (warned,) = [x for x in lines if x.get("event") == "configuration to change"]
    assert warned["level"] == "warning"
    assert "a token of 9 characters is easy to guess" in warned["advice"]
    assert "pw-9-char" not in daemon.log()


EMBEDDED = {"meta": {"storage": {"redis": {"host": ""}}}}


def test_the_embedded_server_is_restarted_when_it_dies(
    start_daemon_process: StartDaemonProcess,
) -> None:
    """Killed, it is reaped (no zombie) and started again on the same socket, counted,
    and the cache works again."""
    daemon = start_daemon_process({**EMBEDDED, "server": {"admin_token": ADMIN_TOKEN}})
    (child,) = _children(daemon.process.pid)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: daemon.metric("events_cache_embedded_redis_restarts_total") == 1)
    (again,) = _children(daemon.process.pid)
    assert again != child and not _alive(child)  # reaped, not a zombie
    wait_for(lambda: daemon.api("/readyz", token=None).json["redis"] == "up", timeout=10)
    assert daemon.post_token("after", b'{"n": 1}').json["accepted"] == 1
    settle(daemon)
    assert daemon.query(namespace="token", ids="after")["total_events"] == 1
    assert "embedded Redis exited; restarting it" in daemon.log()


def test_an_embedded_server_that_keeps_dying_stops_the_daemon(
    start_daemon_process: StartDaemonProcess,
) -> None:
    """Five restarts a minute at most; the sixth death stops the daemon, saying why."""
    daemon = start_daemon_process(EMBEDDED)
    for restarts in range(1, 7):
        if daemon.process.poll() is not None:
            break
        (child,) = _children(daemon.process.pid)
        os.kill(child, signal.SIGKILL)
        if restarts <= 5:

            def restarted(n: int = restarts) -> bool:
                return daemon.metric("events_cache_embedded_redis_restarts_total") == n

            wait_for(restarted, timeout=10)
    assert wait_exit(daemon) == 4
    assert "embedded Redis keeps dying: the daemon stops" in daemon.log()
    assert "restarted 5 times in the last minute: giving up" in daemon.log()
