"""The `token_from` rules of the mirror and the proxy (pure), their validation at load
time, and the tee's decoding of compressed bodies."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from daemon.config import ConfigError, load_config
from daemon.core.model import TeeOutcome
from daemon.core.parse import parse_token_body
from daemon.core.tokenfrom import RuleError, RuleKind, TokenFinder, check_rules, parse_rule
from daemon.core.wire import MAX_ID_BYTES
from daemon.web.tee import TeeBuffer, decoded

ALL = ["query:token", "header:X-Auth-Token", "path:/api/v1/event/{token}", "json:api_key"]


def find(
    rules: list[str],
    path: str = "/",
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Any:
    return TokenFinder(rules).find(path, query or {}, headers or {}, body)


# -- parsing ------------------------------------------------------------------------------


def test_each_kind_parses_with_its_name() -> None:
    rules = [parse_rule(r) for r in ALL]
    assert [r.kind for r in rules] == list(RuleKind)
    assert [r.name for r in rules] == ["token", "X-Auth-Token", "/api/v1/event/{token}", "api_key"]
    assert [str(r) for r in rules] == ALL
    assert parse_rule(" header : X-Key ").name == "X-Key"  # spaces around are forgiven


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("token", "unknown kind 'token'; a rule is kind:name with kind one of query, header"),
        ("cookie:sid", "unknown kind 'cookie'"),
        ("query:", "the query rule needs a name after the colon"),
        ("header:  ", "the header rule needs a name after the colon"),
        ("json:", "the json rule needs a name"),
        ("path:", "the path rule needs a name"),
        ("path:/api/v1/event", "a path template holds {token} exactly once"),
        ("path:/{token}/{token}", "a path template holds {token} exactly once"),
        ("path:api/{token}", "a path template starts with /"),
    ],
)
def test_a_bad_rule_says_what_is_wrong(rule: str, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_rule(rule)


def test_check_rules_names_every_faulty_rule_by_position() -> None:
    assert check_rules(ALL) is None
    assert check_rules([]) is None
    problem = check_rules(["query:token", "bad", "path:/x"])
    assert problem is not None
    assert problem.startswith("rule 2 'bad': unknown kind")
    assert "rule 3 'path:/x': a path template holds {token} exactly once" in problem
    assert "rule 1" not in problem


# -- finding ------------------------------------------------------------------------------


def test_rules_are_tried_in_order_and_the_first_key_wins() -> None:
    request: dict[str, Any] = {
        "path": "/api/v1/event/from-path",
        "query": {"token": "from-query"},
        "headers": {"X-Auth-Token": "from-header"},
        "body": b'{"api_key": "from-json"}',
    }
    assert find(ALL, **request).token == "from-query"
    assert find(ALL[1:], **request).token == "from-header"
    assert find(ALL[2:], **request).token == "from-path"
    assert find(ALL[3:], **request).token == "from-json"
    assert find(list(reversed(ALL)), **request).token == "from-json"
    # A rule that finds nothing passes to the next.
    assert find(ALL, path="/x", headers={"X-Auth-Token": "h"}).token == "h"
    assert find(ALL, path="/nothing").token is None


def test_header_names_are_case_insensitive_as_http_says() -> None:
    from multidict import CIMultiDict

    headers = CIMultiDict({"x-auth-token": "lower"})
    assert find(["header:X-Auth-Token"], headers=headers).token == "lower"


def test_path_templates_match_the_whole_path_one_segment_per_placeholder() -> None:
    rules = ["path:/api/{version}/event/{token}"]
    assert find(rules, "/api/v1/event/abc").token == "abc"
    assert find(rules, "/api/v2/event/a.b-c_d").token == "a.b-c_d"
    assert find(rules, "/api/v1/event/abc/more").token is None  # the whole path
    assert find(rules, "/prefix/api/v1/event/abc").token is None
    assert find(rules, "/api/v1/event/").token is None  # an empty segment is no key
    assert find(["path:/t/{token}.gif"], "/t/key1.gif").token == "key1"
    assert find(["path:/a.b/{token}"], "/aXb/k").token is None  # literal text stays literal


def test_json_rule_reads_top_level_strings_of_object_bodies_only() -> None:
    rules = ["json:api_key"]
    assert find(rules, body=b'{"api_key": "k1", "event": 1}').token == "k1"
    assert find(rules, body=b'[{"api_key": "k1"}]').token is None  # an array
    assert find(rules, body=b'{"api_key": 12}').token is None  # not a string
    assert find(rules, body=b'{"ctx": {"api_key": "nested"}}').token is None
    assert find(rules, body=b"not json").token is None
    assert find(rules, body=b"").token is None
    assert find(rules, body=None).token is None  # no body at hand: json rules are skipped


def test_unusable_values_are_no_key() -> None:
    rules = ["query:token", "header:X-Auth-Token"]
    assert find(rules, query={"token": ""}, headers={"X-Auth-Token": "h"}).token == "h"
    too_long = "k" * (MAX_ID_BYTES + 1)
    assert find(rules, query={"token": too_long}).token is None
    assert find(rules, query={"token": "k" * MAX_ID_BYTES}).token == "k" * MAX_ID_BYTES
    # A header's bytes that are not UTF-8 arrive as surrogates: not a key to store.
    surrogates = b"ab\xff".decode("utf-8", "surrogateescape")
    assert find(rules, headers={"X-Auth-Token": surrogates}).token is None


def test_the_body_is_parsed_once_and_the_document_handed_on() -> None:
    body = b'{"api_key": "k1", "x": [1, 2]}'
    found = find(["json:other", "json:api_key"], body=body)
    assert found.token == "k1"
    assert found.parsed == ({"api_key": "k1", "x": [1, 2]},)
    # parse_token_body takes it instead of parsing again, with the same events.
    reused = parse_token_body(body, "k1", 1000, parsed=found.parsed)
    fresh = parse_token_body(body, "k1", 1000)
    assert [e.original for e in reused] == [e.original for e in fresh] == [body.decode()]
    # No json rule reached: nothing parsed.
    assert find(["query:token", "json:api_key"], query={"token": "q"}, body=body).parsed is None


def test_reason_lists_the_rules_tried() -> None:
    assert TokenFinder(ALL).reason() == (
        "no API key found by the token_from rules (query:token, header:X-Auth-Token, "
        "path:/api/v1/event/{token}, json:api_key)"
    )
    assert TokenFinder(ALL).reads_body and not TokenFinder(ALL[:3]).reads_body


# -- configuration ------------------------------------------------------------------------


def load(tmp_path: Path, sidecar: dict[str, Any]) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sidecar": sidecar}))
    return load_config(str(path), env={})


def problems(tmp_path: Path, sidecar: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, sidecar)
    return {p.location: p.error for p in e.value.problems}


def test_both_listeners_are_off_by_default(tmp_path: Path) -> None:
    config = load(tmp_path, {})
    assert config.sidecar.mirror.listen is None and config.sidecar.mirror.token_from == ()
    proxy = config.sidecar.proxy
    assert proxy.listen is None and proxy.upstream == "" and proxy.token_from == ()
    assert (proxy.connect_timeout_seconds, proxy.read_timeout_seconds) == (5.0, 60.0)


def test_a_working_configuration_loads(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "mirror": {"listen": "0.0.0.0:8002", "token_from": ALL},
            "proxy": {
                "listen": "0.0.0.0:8000",
                "upstream": "http://127.0.0.1:8080",
                "token_from": ["header:X-Auth-Token"],
                "read_timeout_seconds": 2.5,
            },
        },
    )
    assert str(config.sidecar.mirror.listen) == "0.0.0.0:8002"
    assert config.sidecar.mirror.token_from == tuple(ALL)
    assert config.sidecar.proxy.read_timeout_seconds == 2.5


def test_bad_rules_are_located_errors(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "mirror": {
                "listen": "0.0.0.0:8002",
                "token_from": ["query:token", "cookie:x", "path:/a"],
            }
        },
    )
    message = found["sidecar.mirror.token_from"]
    assert "rule 2 'cookie:x': unknown kind 'cookie'" in message
    assert "rule 3 'path:/a': a path template holds {token} exactly once" in message
    assert "at least one rule" not in message  # one message per key
    assert list(found) == ["sidecar.mirror.token_from"]


def test_listeners_need_rules_and_the_proxy_an_upstream(tmp_path: Path) -> None:
    found = problems(
        tmp_path, {"mirror": {"listen": "0.0.0.0:8002"}, "proxy": {"listen": "0.0.0.0:8000"}}
    )
    assert (
        "must name at least one rule when sidecar.mirror.listen is set"
        in (found["sidecar.mirror.token_from"])
    )
    assert "when sidecar.proxy.listen is set" in found["sidecar.proxy.token_from"]
    assert found["sidecar.proxy.upstream"].startswith(
        "must be set when sidecar.proxy.listen is set"
    )


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ("127.0.0.1:8080", "must be http://host[:port] or https://host[:port]"),
        ("ftp://host", "must be http://host[:port]"),
        ("http://", "must be http://host[:port]"),
        ("http://host:port", "not a URL"),
        ("http://host:8080/api", "must have no path or query"),
        ("http://host:8080?x=1", "must have no path or query"),
    ],
)
def test_the_upstream_must_be_a_base_url(tmp_path: Path, upstream: str, message: str) -> None:
    found = problems(tmp_path, {"proxy": {"upstream": upstream}})
    assert message in found["sidecar.proxy.upstream"]


def test_rules_are_checked_even_while_the_listener_is_off(tmp_path: Path) -> None:
    assert (
        "unknown kind"
        in problems(tmp_path, {"proxy": {"token_from": ["x"]}})["sidecar.proxy.token_from"]
    )
    assert load(tmp_path, {"proxy": {"upstream": "https://ingest:8443/"}}).sidecar.proxy.upstream


# -- the tee's buffer and decoding ---------------------------------------------------------


def test_the_buffer_keeps_chunks_up_to_the_limit_then_nothing() -> None:
    buffer = TeeBuffer(10)
    buffer.add(b"12345")
    buffer.add(b"67890")
    assert buffer.chunks == [b"12345", b"67890"] and not buffer.overflow
    buffer.add(b"x")
    assert buffer.overflow and buffer.chunks == []
    buffer.add(b"y")
    assert buffer.chunks == []


def test_decoding_as_the_ingest_listener_would_read_the_body() -> None:
    body = orjson.dumps({"event": "x" * 500})
    assert decoded(body, "", 10_000) == body
    assert decoded(body, "identity", 10_000) == body
    assert decoded(gzip.compress(body), "gzip", 10_000) == body
    assert decoded(gzip.compress(body), "x-gzip", 10_000) == body
    assert decoded(zlib.compress(body), "deflate", 10_000) == body
    raw_deflate = zlib.compressobj(wbits=-15)
    assert decoded(raw_deflate.compress(body) + raw_deflate.flush(), "Deflate", 10_000) == body
    # Bounded: a small compressed body that expands past the limit is not inflated whole.
    bomb = gzip.compress(b"0" * 5_000_000)
    assert len(bomb) < 10_000
    assert decoded(bomb, "gzip", 1_000_000) is TeeOutcome.TOO_LARGE
    assert decoded(b"not gzip", "gzip", 10_000) is TeeOutcome.ENCODING
    assert decoded(gzip.compress(body)[:-12], "gzip", 10_000) is TeeOutcome.ENCODING  # cut
    assert decoded(body, "br", 10_000) is TeeOutcome.ENCODING
    assert decoded(body, "gzip, br", 10_000) is TeeOutcome.ENCODING
