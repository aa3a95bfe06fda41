"""sidecar.mirror.reply: the mirror's answer, checked at load and seen on the wire.

The status is 2xx (not 204/205), the body JSON, the headers clean and not the
listener's own framing; every problem is named at once. On the wire: the configured
status and body replace the 202 and counts on every taken request, the headers go on
every answer (refusals too, so a browser can read them), and an OPTIONS preflight gets
the status and headers with no body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config import ConfigError, effective_settings, load_config
from daemon.config.render import chart_schema
from tests.support.servers import free_port, wait_for
from tests.support.standins import exchange, http_request

CLOSE = [(b"Connection", b"close")]
RULES = ["query:token"]


def load(tmp_path: Path, reply: Any) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sidecar": {"mirror": {"reply": reply}}}))
    return load_config(str(path), env={})


def problems(tmp_path: Path, reply: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, reply)
    return {p.location: p.error for p in caught.value.problems}


def test_the_default_is_the_ingest_answer(tmp_path: Path) -> None:
    reply = load_config(None, env={}).sidecar.mirror.reply
    assert (reply.status, reply.body, reply.headers.as_dict()) == (202, "", {})
    shown = effective_settings(load(tmp_path, {"headers": {"Access-Control-Max-Age": 600}}))
    assert shown["sidecar"]["mirror"]["reply"] == {
        "status": 202,
        "body": "",
        "headers": {"Access-Control-Max-Age": "600"},  # a YAML number, kept as its text
    }
    schema = chart_schema()["properties"]["sidecar"]["properties"]["mirror"]["properties"]
    assert schema["reply"]["properties"]["headers"]["type"] == "object"


@pytest.mark.parametrize(
    ("status", "why"),
    [(302, "must be a 2xx status"), (500, "must be a 2xx status"), (204, "carries no body")],
)
def test_a_status_other_than_2xx_with_a_body_is_refused(
    tmp_path: Path, status: int, why: str
) -> None:
    found = problems(tmp_path, {"status": status})
    assert list(found) == ["sidecar.mirror.reply.status"] and why in found[next(iter(found))]


def test_every_problem_of_the_reply_is_named_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "status": "ok",
            "body": "ok",
            "headers": {
                "Bad Name": "x",
                "Content-Length": "3",
                "X-Split": "a\r\nSet-Cookie: evil=1",
                "X-Fine": "yes",
            },
        },
    )
    assert set(found) == {
        "sidecar.mirror.reply.status",
        "sidecar.mirror.reply.body",
        "sidecar.mirror.reply.headers",
    }
    assert "must be an integer" in found["sidecar.mirror.reply.status"]
    assert "must be JSON" in found["sidecar.mirror.reply.body"]
    headers = found["sidecar.mirror.reply.headers"]
    assert "'Bad Name' is not a header name" in headers
    assert "'Content-Length' is set by the listener itself" in headers
    assert "X-Split: the value must be printable ASCII on one line" in headers
    assert "X-Fine" not in headers
    assert (
        "must be a mapping"
        in problems(tmp_path, {"headers": ["a"]})["sidecar.mirror.reply.headers"]
    )
    nested = problems(tmp_path, {"headers": {"X-List": [1]}})["sidecar.mirror.reply.headers"]
    assert "'X-List' must be a string naming a string, got a list" in nested


def test_the_answer_on_the_wire(start_daemon: Any) -> None:
    port = free_port()
    reply = {
        "status": 200,
        "body": '{"status":"ok"}',
        "headers": {"Access-Control-Allow-Origin": "*", "X-Stand-In": "events-cache"},
    }
    mirror = {"listen": f"127.0.0.1:{port}", "token_from": RULES, "reply": reply}
    daemon = start_daemon({"sidecar": {"mirror": mirror, "ingest": {"max_request_bytes": 1000}}})

    taken = exchange(port, http_request("POST", "/api/v1/event?token=k1", CLOSE, b'{"a": 1}'))
    assert (taken.status, taken.body) == (200, b'{"status":"ok"}')
    assert taken.header(b"Access-Control-Allow-Origin") == [b"*"]
    assert taken.header(b"X-Stand-In") == [b"events-cache"]
    assert taken.header(b"Content-Type") == [b"application/json"]
    # Without a key: not cached (counted invalid), answered the same, as a collector would.
    keyless = exchange(port, http_request("POST", "/api/v1/event", CLOSE, b'{"a": 2}'))
    assert (keyless.status, keyless.body) == (200, b'{"status":"ok"}')

    preflight = exchange(port, http_request("OPTIONS", "/api/v1/event?token=k1", CLOSE))
    assert (preflight.status, preflight.body) == (200, b"")
    assert preflight.header(b"Content-Length") == [b"0"]
    assert preflight.header(b"Access-Control-Allow-Origin") == [b"*"]

    refused = exchange(port, http_request("POST", "/e?token=k1", CLOSE, b"[" + b"1," * 600 + b"1]"))
    assert refused.status == 413 and json.loads(refused.body)["limit"] == "bytes"
    assert refused.header(b"Access-Control-Allow-Origin") == [b"*"]

    events = wait_for(lambda: daemon.query(namespace="token", ids="k1")["events"] or None)
    assert [e["original"] for e in events] == [{"a": 1}]
    assert daemon.metric("events_cache_invalid_total") == 1


def test_the_default_answer_is_unchanged(start_daemon: Any) -> None:
    """No reply set: 202 with the ingest's counts, no extra header (a mirrored copy's
    answer is thrown away; nothing changes for existing users)."""
    port = free_port()
    start_daemon({"sidecar": {"mirror": {"listen": f"127.0.0.1:{port}", "token_from": RULES}}})
    taken = exchange(port, http_request("POST", "/e?token=k2", CLOSE, b'{"a": 1}'))
    assert taken.status == 202
    assert json.loads(taken.body)["accepted"] == 1
    assert not taken.header(b"Access-Control-Allow-Origin")
