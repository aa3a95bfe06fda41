"""End-to-end bad input: every client mistake gets a 4xx (or is cached as malformed),
never a 500 and never a traceback, on both listeners.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.daemon import InProcessDaemon, Reply, StartDaemon
from tests.support.scrape import list_key as key
from tests.support.scrape import settle
from tests.support.servers import wait_for

pytestmark = pytest.mark.e2e

CACHE = "/api/v1/events/cache"


def sane(reply: Reply, status: int | None = None) -> Any:
    """No 500, no traceback; JSON body; the expected status when given."""
    assert reply.status < 500, (reply.status, reply.raw[:500])
    assert b"Traceback" not in reply.raw and b'File "' not in reply.raw, reply.raw[:500]
    if status is not None:
        assert reply.status == status, (reply.status, reply.raw[:500])
    return reply.json


def clean_log(daemon: InProcessDaemon) -> None:
    """The daemon logged no unexpected exception while handling the requests."""
    log = daemon.log()
    assert "request failed" not in log and "Traceback" not in log, log[-3000:]


def only_event(daemon: InProcessDaemon, token: str) -> dict[str, Any]:
    answer = daemon.query(namespace="token", ids=token)
    assert answer["total_events"] == 1, answer
    event: dict[str, Any] = answer["events"][0]
    return event


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> Iterator[InProcessDaemon]:
    d = start_daemon(
        {
            "server": {"cache": {"events": {"max_malformed_event_size_bytes": 2000}}},
            "sidecar": {"ingest": {"max_request_bytes": 300_000}},
        }
    )
    yield d
    clean_log(d)


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"namespace": "tokens"}, "namespace"),
        ({"namespace": "TOKEN"}, "namespace"),
        ({"namespace": "x" * 5000}, "namespace"),
        ({"status": "ok"}, "status"),
        ({"status": "errors"}, "status"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"limit": " 5"}, "limit"),
        ({"limit": "0x10"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "-100"}, "limit"),
        ({"limit": "٣"}, "limit"),  # an Arabic-Indic digit: int() would take it
    ],
)
def test_query_400s(daemon: InProcessDaemon, params: dict[str, str], word: str) -> None:
    reply = daemon.api(CACHE, {"ids": "a", **params})
    body = sane(reply, 400)
    assert list(body) == ["message"]
    assert word in body["message"]
    assert len(body["message"]) < 1000


def test_query_400_limit_message_is_jitsus(daemon: InProcessDaemon) -> None:
    assert sane(daemon.api(CACHE, {"limit": "abc"}), 400) == {"message": "limit must be int"}


def test_query_odd_but_valid_parameters(daemon: InProcessDaemon) -> None:
    for params in (
        {"ids": "\u00e9t\u00e9,\u2603,a b,a%2Cb,#,x:errors"},
        {"ids": "x" * 1024},
        {"ids": "a", "limit": "000"},
        {"ids": "a", "status": ""},
        {"ids": "a", "unknown": "1"},
    ):
        body = sane(daemon.api(CACHE, params), 200)
        assert body["events"] == []
    # What the id rule refuses is a 400 that names it (id= takes a stored one whole).
    for ids, words in ((":error", ":error"), ("x" * 1025, "1024 bytes"), ("a\u202eb", "format")):
        assert words in sane(daemon.api(CACHE, {"ids": ids}), 400)["message"]


def test_query_undecodable_parameters(daemon: InProcessDaemon) -> None:
    """Percent-encoded bytes that are not UTF-8 (or encode a surrogate) are not a 500."""
    for raw in ("ids=%FF%FE", "ids=%ED%A0%80", "namespace=%FF", "status=%C0%AF", "limit=%FF"):
        conn = http.client.HTTPConnection("127.0.0.1", daemon.api_port, timeout=10)
        try:
            conn.request("GET", f"{CACHE}?{raw}", headers={"X-Admin-Token": daemon.token})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status in (200, 400), (raw, response.status, body[:300])
        assert b"Traceback" not in body
        json.loads(body)


def test_admin_token_with_odd_bytes(daemon: InProcessDaemon) -> None:
    # http.client sends header text as Latin-1: this sends the UTF-8 bytes of a snowman.
    snowmen = ("\u2603" * 100).encode().decode("latin-1")
    for token in ("t\u00e9st", snowmen, "a" * 4000):
        assert sane(daemon.api(CACHE, {"ids": ""}, token=token), 401) == {
            "message": "Admin token does not match"
        }
    conn = http.client.HTTPConnection("127.0.0.1", daemon.api_port, timeout=10)
    try:
        conn.putrequest("GET", f"{CACHE}?ids=")
        conn.putheader("X-Admin-Token", b"\xff\xfe\x80")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 401 and json.loads(response.read())["message"]
    finally:
        conn.close()


def test_413_with_content_length(daemon: InProcessDaemon, redis_client: redis.Redis) -> None:
    body = b'{"a": "' + b"x" * 300_000 + b'"}'
    for via in ("unix", "tcp"):
        msg = sane(daemon.post_token("big", body, via=via), 413)["message"]
        assert "max_request_bytes" in msg
        line = json.dumps({"namespace": "token", "id": "big", "original": {"a": "x" * 300_000}})
        assert sane(daemon.post_ndjson([line], via=via), 413)["message"]
    # A body at the limit is taken.
    fits = b'{"a": "' + b"x" * (300_000 - 9) + b'"}'
    assert len(fits) == 300_000
    assert sane(daemon.post_token("fits", fits), 202)["accepted"] == 1
    settle(daemon)
    assert not redis_client.exists(key("token", "big"))
    assert redis_client.llen(key("token", "fits")) == 1
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == 1


def _chunked_post(
    daemon: InProcessDaemon, path: str, chunks: list[bytes], via: str
) -> tuple[int, bytes]:
    if via == "tcp":
        conn = http.client.HTTPConnection("127.0.0.1", daemon.ingest_port, timeout=10)
    else:
        conn = http.client.HTTPConnection("localhost", timeout=10)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(daemon.socket_path)
        conn.sock = sock
    try:
        conn.request("POST", path, body=iter(chunks), encode_chunked=True)
        response = conn.getresponse()
        assert response.getheader("Content-Length") or response.getheader("Transfer-Encoding")
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_413_with_chunked_transfer(
    daemon: InProcessDaemon, redis_client: redis.Redis, via: str
) -> None:
    chunks = [b'{"a": "'] + [b"y" * 50_000] * 7 + [b'"}']
    status, raw = _chunked_post(daemon, "/v1/token/chunked/events", chunks, via)
    assert status == 413, raw
    assert "max_request_bytes" in json.loads(raw)["message"]
    lines = [
        json.dumps({"namespace": "token", "id": "chunked", "original": {"n": n}}).encode() + b"\n"
        for n in range(20_000)
    ]
    status, raw = _chunked_post(daemon, "/v1/events", lines, via)
    assert status == 413, raw
    # A small chunked body is fine.
    status, raw = _chunked_post(daemon, "/v1/token/chunked-ok/events", [b'{"a"', b": 1}"], via)
    assert status == 202 and json.loads(raw)["accepted"] == 1
    settle(daemon)
    assert not redis_client.exists(key("token", "chunked"))
    assert only_event(daemon, "chunked-ok")["original"] == {"a": 1}


def test_invalid_utf8_body_is_cached_as_malformed(
    daemon: InProcessDaemon, redis_client: redis.Redis
) -> None:
    body = b'{"name": "caf\xe9", "bad": "\xff\xfe"}'
    assert sane(daemon.post_token("latin1", body), 202)["accepted"] == 1
    settle(daemon)
    event = only_event(daemon, "latin1")
    assert event["malformed"] == '{"name": "caf\ufffd", "bad": "\ufffd\ufffd"}'
    assert "original" not in event and event["error"]
    # Valid UTF-8 JSON in Redis, in both lists.
    for k in (key("token", "latin1"), key("token", "latin1", True)):
        (raw,) = redis_client.lrange(k, 0, -1)
        assert isinstance(raw, bytes)
        assert json.loads(raw.decode("utf-8"))["malformed"] == event["malformed"]


def test_invalid_utf8_in_ndjson_line(daemon: InProcessDaemon) -> None:
    body = (
        b'{"namespace": "token", "id": "u", "original": {"a": "\xff"}}\n'
        b'{"namespace": "token", "id": "u", "original": {"a": "ok"}}\n'
        b'{"namespace": "token", "id": "\xc3", "original": {}}'
    )
    reply = sane(daemon.post_ndjson(body), 202)
    assert (reply["accepted"], reply["invalid"]) == (1, 2)
    assert [e["line"] for e in reply["errors"]] == [1, 3]
    settle(daemon)
    assert only_event(daemon, "u")["original"] == {"a": "ok"}


def test_invalid_utf8_in_headers_and_path(daemon: InProcessDaemon) -> None:
    for header in ("X-Events-Cache-Skip", "X-Events-Cache-Error"):
        conn = http.client.HTTPConnection("127.0.0.1", daemon.ingest_port, timeout=10)
        try:
            conn.putrequest("POST", "/v1/token/hdr/events")
            conn.putheader(header, b"bad \xff\xfe bytes")
            conn.putheader("Content-Length", "8")
            conn.endheaders(b'{"a": 1}')
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        assert response.status == 202, (header, response.status, raw[:300])
    for path in ("/v1/token/%FF%FE/events", "/v1/token/%ED%A0%80/events"):
        reply = daemon.ingest(path, b'{"a": 1}', via="tcp")
        sane(reply)
        assert reply.status in (202, 400)
    settle(daemon)
    # The header text is kept with the undecodable bytes replaced, like a malformed body.
    rejected, skipped = daemon.query(namespace="token", ids="hdr")["events"]
    assert skipped["skip"] == "bad \ufffd\ufffd bytes" and skipped["original"] == {"a": 1}
    assert rejected["error"] == "bad \ufffd\ufffd bytes" and rejected["malformed"] == '{"a": 1}'
    sane(daemon.api(CACHE, {"namespace": "token"}), 200)
    for event in daemon.query(namespace="token")["events"]:
        json.dumps(event, ensure_ascii=False).encode("utf-8")  # no lone surrogates


def test_compressed_bodies(daemon: InProcessDaemon, redis_client: redis.Redis) -> None:
    """Content-Encoding bodies are inflated by the daemon: a good one is taken, the limit
    applies to the inflated size, and a body that does not inflate is a 400 that says
    why, whether its bytes come with the head or after it."""
    for via in ("unix", "tcp"):
        reply = daemon.post_token(
            "gz", gzip.compress(b'{"packed": true}'), headers={"Content-Encoding": "gzip"}, via=via
        )
        assert sane(reply, 202)["accepted"] == 1
        bomb = gzip.compress(b"0" * 5_000_000)
        assert len(bomb) < 300_000
        reply = daemon.post_token("bomb", bomb, headers={"Content-Encoding": "gzip"}, via=via)
        assert "max_request_bytes" in sane(reply, 413)["message"]
        for encoding, body in (("gzip", b"this is not gzip"), ("deflate", b"nor deflate")):
            reply = daemon.post_token("garbled", body, headers={"Content-Encoding": encoding})
            assert f"not valid {encoding} data" in sane(reply, 400)["message"]
    truncated = (
        ("gzip", gzip.compress(b'{"a": 1}')[:-12]),
        ("deflate", zlib.compress(b'{"a": 1}')[:5]),
    )
    for via in ("unix", "tcp"):
        for encoding, body in truncated:
            for split in (None, 0, 2, len(body) - 1):  # None: the body comes with the head
                answer = split_exchange(daemon, via, encoding, body, split)
                assert answer.startswith(b"HTTP/1.1 400 "), (encoding, split, answer[:300])
                message = json.loads(answer.partition(b"\r\n\r\n")[2])["message"]
                assert f"ends before its {encoding} stream does" in message, message
    settle(daemon)
    assert [e["original"] for e in daemon.query(namespace="token", ids="gz")["events"]] == [
        {"packed": True},
        {"packed": True},
    ]
    for refused in ("bomb", "garbled", "truncated"):
        assert not redis_client.exists(key("token", refused))


def test_compressed_bodies_chunked(daemon: InProcessDaemon) -> None:
    """Under chunked framing too, a body is inflated within the limit, whole or not."""
    good = gzip.compress(b'{"chunked": true}')
    bomb = gzip.compress(b"0" * 5_000_000)
    for via in ("unix", "tcp"):
        for body, status in ((good, 202), (bomb, 413), (good[:-12], 400)):
            chunks = b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 4096]), body[i : i + 4096])
                for i in range(0, len(body), 4096)
            )
            head = (
                b"POST /v1/token/chunked/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            answer = raw_exchange(daemon, via, head + chunks + b"0\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:300]
    settle(daemon)
    assert daemon.query(namespace="token", ids="chunked")["total_events"] == 2


def split_exchange(
    daemon: InProcessDaemon, via: str, encoding: str, body: bytes, split: int | None
) -> bytes:
    """A token POST whose body follows its head after a pause (`split`: how many body
    bytes go with the head; None, all of them): the answer, until the server closes."""
    head = (
        f"POST /v1/token/truncated/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    if split is None:
        return raw_exchange(daemon, via, head + body)
    return raw_exchange(daemon, via, head + body[:split], body[split:])


def test_client_gone_mid_body(daemon: InProcessDaemon) -> None:
    """A client that disconnects before sending the whole body is not an error to log."""
    for via in ("unix", "tcp"):
        if via == "tcp":
            sock = socket.create_connection(("127.0.0.1", daemon.ingest_port), timeout=10)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(daemon.socket_path)
        sock.sendall(
            b'POST /v1/token/gone/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a": '
        )
        sock.close()
    # The daemon still answers, and counted nothing for the broken requests.
    assert sane(daemon.post_token("after", b"{}"), 202)["accepted"] == 1
    settle(daemon)
    wait_for(lambda: daemon.metric("events_cache_received_total", cache_namespace="token") == 1)
    assert daemon.query(namespace="token", ids="gone")["total_events"] == 0


def test_deep_nesting(daemon: InProcessDaemon, redis_client: redis.Redis) -> None:
    deep = b"[" * 100_000
    assert sane(daemon.post_token("deep", deep), 202)["accepted"] == 1
    balanced = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert sane(daemon.post_token("deep", balanced), 202)["accepted"] == 1
    line = b'{"namespace": "token", "id": "deep", "original": ' + b"[" * 50_000
    reply = sane(daemon.post_ndjson(line), 202)
    assert (reply["accepted"], reply["invalid"]) == (0, 1)
    settle(daemon)
    answer = daemon.query(namespace="token", ids="deep")
    assert answer["total_events"] == 2
    newest, oldest = answer["events"]
    assert newest["malformed"] == balanced[:2000].decode()
    assert oldest["malformed"] == "[" * 2000  # cut to max_malformed_event_size_bytes
    assert redis_client.llen(key("token", "deep", True)) == 2


@pytest.mark.parametrize("depth", [100, 300, 1000])
def test_valid_deep_nesting(daemon: InProcessDaemon, depth: int) -> None:
    """Valid JSON nested deeper than orjson writes (254 levels; it reads 1024) never 500s.

    An object body is kept as sent and answered as sent: an object, at any depth, as
    Jitsu answers it. An array element too deep to re-encode is kept as malformed; an
    NDJSON line too deep is invalid.
    """
    obj = '{"deep": ' + "[" * depth + "]" * depth + "}"
    sane(daemon.post_token("obj", obj), 202)
    sane(daemon.post_token("arr", "[" + obj + "]"), 202)
    line = '{"namespace": "destination", "id": "dst", "original": ' + obj + ', "skip": "s"}'
    reply = sane(daemon.post_ndjson(line.encode()), 202)
    encodable = depth < 254
    assert (reply["accepted"], reply["invalid"]) == ((1, 0) if encodable else (0, 1))
    settle(daemon)

    answer = daemon.api(CACHE, {"namespace": "token", "ids": "obj"})
    assert answer.status == 200 and b'"events":[{"original":%s,' % obj.encode() in answer.raw
    if depth < 900:  # Python's json reads the answer
        (event,) = sane(answer, 200)["events"]
        assert event["original"] == json.loads(obj)
    (event,) = sane(daemon.api(CACHE, {"namespace": "token", "ids": "arr"}), 200)["events"]
    if encodable:
        assert event["original"] == json.loads(obj)
    else:
        assert event["malformed"] == ("[" + obj + "]")[:2000]
        assert "array element 0" in event["error"]
    events = sane(daemon.api(CACHE, {"ids": "dst"}), 200)["events"]
    assert [e["original"] for e in events] == ([json.loads(obj)] if encodable else [])
    # The whole namespace is still answered with such entries in it.
    whole = daemon.api(CACHE, {"namespace": "token"})
    assert whole.status == 200 and b'{"total_events":2,' in whole.raw


def test_huge_numbers(daemon: InProcessDaemon) -> None:
    big_int = "1" + "0" * 400
    for body in (
        '{"n": ' + big_int + "}",
        '{"f": 1e400}',
        '{"f": -1e-400}',
        '[{"n": 123456789012345678901234567890}]',
        "9" * 100_000,
    ):
        assert sane(daemon.post_token("num", body), 202)["accepted"] == 1
    settle(daemon)
    answer = sane(daemon.api(CACHE, {"namespace": "token", "ids": "num"}), 200)
    assert answer["total_events"] == 5
    # Every entry is kept: as an object when it parses, else as the malformed text.
    assert all("original" in e or "malformed" in e for e in answer["events"])
    assert answer["events"][0]["malformed"] == "9" * 2000


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (b"", ""),
        (b"   \n ", "   \n "),
        (b"null", "null"),
        (b"42", "42"),
        (b'"a string"', '"a string"'),
        (b"true", "true"),
        (b"[]", None),
    ],
)
def test_empty_and_scalar_bodies(daemon: InProcessDaemon, body: bytes, stored: str | None) -> None:
    reply = sane(daemon.post_token("scalar", body), 202)
    settle(daemon)
    answer = daemon.query(namespace="token", ids="scalar")
    if stored is None:  # an empty array holds no events
        assert reply["accepted"] == 0 and answer["total_events"] == 0
        return
    assert reply["accepted"] == 1
    (event,) = answer["events"]
    assert event.get("malformed", "") == stored and event["error"]
    assert daemon.query(namespace="token", ids="scalar", status="error")["total_events"] == 1


def test_wrong_method_and_unknown_path(daemon: InProcessDaemon) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        for path in ("/v1/events", "/v1/token/k/events"):
            for via in ("unix", "tcp"):
                reply = daemon.ingest(path, b"{}", via=via, method=method)
                body = sane(reply, 405)
                assert body["message"] and "POST" in reply.headers.get("Allow", "")
    for method in ("POST", "PUT", "PATCH"):
        reply = daemon.api(CACHE, {"ids": ""}, method=method, body=b"{}")
        assert sane(reply, 405)["message"]
        assert {"GET", "DELETE"} <= set(reply.headers.get("Allow", "").replace(" ", "").split(","))
    # A 404 says which listener answered, and where the right one is.
    for path in ("/", "/v1", "/v1/token//events", "/v1/token/k/event", "/v2/events", "/x" * 500):
        message = sane(daemon.ingest(path, b"{}"), 404)["message"]
        assert "events-cache ingest listener" in message and "sidecar.api.listen" in message
    for path in ("/api/v1/events", "/api/v1/events/cache/x", "/nope", "/metrics/x"):
        message = sane(daemon.api(path, {}), 404)["message"]
        assert "events-cache API listener" in message and "/openapi.json" in message
    for path in ("/v1/events", "/v1/token/k/events"):
        message = sane(daemon.api(path, {}, method="POST", body=b"{}"), 404)["message"]
        assert "events go to the ingest listener, http://127.0.0.1:" in message, message


def test_ndjson_with_only_invalid_lines(daemon: InProcessDaemon, redis_client: redis.Redis) -> None:
    lines: list[Any] = [
        "not json",
        "[1, 2]",
        '"text"',
        {"namespace": "token"},
        {"namespace": "token", "id": "", "original": {}},
        {"namespace": "token", "id": 5, "original": {}},
        {"namespace": "token", "id": "i" * 2000, "original": {}},
        {"namespace": "token", "id": "t", "original": [1]},
        {"namespace": "token", "id": "t", "original": {}, "malformed": "x"},
        {"namespace": "token", "id": "t", "original": {}, "timestamp": "yesterday"},
        {"namespace": "destination", "id": "d", "original": {}, "success": {}, "error": "e"},
        {"namespace": "destination", "id": "d", "original": {}, "success": "ok"},
        {"namespace": "destination", "id": "d", "original": 5, "skip": "s"},
        {"namespace": "other", "id": "d", "original": {}},
    ]
    reply = sane(daemon.post_ndjson(lines), 202)
    assert reply["accepted"] == 0 and reply["invalid"] == len(lines)
    assert len(reply["errors"]) == 10
    assert [e["line"] for e in reply["errors"]] == list(range(1, 11))
    for only_blank in (b"", b"\n\n  \n"):
        reply = sane(daemon.post_ndjson(only_blank), 202)
        assert (reply["accepted"], reply["invalid"]) == (0, 0)
    assert daemon.metric("events_cache_invalid_total") == len(lines)
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == 0
    assert redis_client.keys("events_cache:token#*") == []
    assert redis_client.keys("events_cache:destination#*") == []


def test_token_id_limits(daemon: InProcessDaemon) -> None:
    assert sane(daemon.post_token("k" * 1025, b"{}"), 400)["message"]
    assert sane(daemon.post_token("k" * 1024, b"{}"), 202)["accepted"] == 1
    reply = daemon.post_token("sp ace/slash#hash:colon", b'{"a": 1}')
    assert sane(reply, 202)["accepted"] == 1
    settle(daemon)
    assert only_event(daemon, "sp ace/slash#hash:colon")["original"] == {"a": 1}


def test_metrics_and_probes_never_500(daemon: InProcessDaemon) -> None:
    for path in ("/metrics", "/healthz", "/readyz", "/openapi.json"):
        reply = daemon.api(path, {}, token=None)
        assert reply.status == 200, path
    assert sane(daemon.api("/openapi.json", {}, token=None), 200)["openapi"].startswith("3.")


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    obj=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5),
    ascii_only=st.booleans(),
    junk=st.binary(max_size=200),
)
def test_any_json_object_round_trips_and_any_bytes_are_taken(
    daemon: InProcessDaemon, obj: dict[str, Any], ascii_only: bool, junk: bytes
) -> None:
    token = f"fuzz-{daemon.metric('events_cache_received_total', cache_namespace='token'):.0f}"
    body = json.dumps(obj, ensure_ascii=ascii_only).encode()
    assert sane(daemon.post_token(token, body), 202)["accepted"] == 1
    assert sane(daemon.post_token(token + "-junk", junk), 202)["accepted"] >= 0
    wait_for(lambda: daemon.query(namespace="token", ids=token)["total_events"] == 1)
    (event,) = daemon.query(namespace="token", ids=token)["events"]
    assert event["original"] == obj
    sane(daemon.api(CACHE, {"namespace": "token", "ids": token + "-junk"}), 200)


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_protocol_level_errors_are_json(daemon: InProcessDaemon, via: str) -> None:
    """What aiohttp refuses before any handler runs is JSON with a message, on both
    listeners, and the connection is closed after it."""

    def json_error(reply: Reply, *statuses: int) -> None:
        assert reply.status in statuses, (reply.status, reply.raw[:300])
        assert reply.headers["Content-Type"].startswith("application/json"), reply.raw[:300]
        assert json.loads(reply.raw)["message"], reply.raw[:300]
        assert b"Traceback" not in reply.raw

    # Requests refused at their head carry no body: the server answers and closes before
    # reading one, so a body sent after the head could meet a closed connection (EPIPE).
    # A header over 8190 bytes, on the API and on the ingest.
    json_error(daemon.api(CACHE, {"ids": ""}, token="a" * 9000), 400, 431)
    json_error(daemon.ingest("/v1/events", b"", headers={"X-Big": "b" * 9000}, via=via), 400)
    # A Content-Encoding the server cannot decode.
    json_error(
        daemon.post_token("br", b"xx", headers={"Content-Encoding": "br"}, via=via), 400, 415
    )
    # A method llhttp does not know, a request line over the ingest's 16 KiB.
    json_error(daemon.ingest("/v1/events", b"", method="BREW", via=via), 400)
    json_error(daemon.ingest("/v1/token/" + "k" * 17000 + "/events", b"", via=via), 400, 414)
    json_error(daemon.api(CACHE, {"ids": ""}, method="BREW"), 400)
    # Bytes that are not HTTP at all.
    raw = raw_exchange(daemon, via, b"\x16\x03\x01 not http\r\n\r\n")
    assert raw.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), raw[:300]
    assert b"application/json" in raw, raw[:300]
    assert b'"message"' in raw, raw[:300]


def raw_exchange(daemon: InProcessDaemon, via: str, data: bytes, *later: bytes) -> bytes:
    """Send `data` on a fresh connection to the ingest listener, then each of `later`
    after a pause (so the server reads it apart); what comes back until the server
    closes the connection."""
    if via == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(daemon.socket_path)
    else:
        sock = socket.create_connection(("127.0.0.1", daemon.ingest_port))
    with sock:
        sock.settimeout(10)
        sock.sendall(data)
        for part in later:
            time.sleep(0.05)
            sock.sendall(part)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
