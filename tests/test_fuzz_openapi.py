"""Schemathesis against the served /openapi.json: both APIs, thousands of requests.

Every operation of the document is fuzzed with valid (positive) and invalid (negative)
data: no 5xx, the daemon never crashes, answers conform to the document, and every 4xx
carries a `message`. Ingest operations go to the ingest listener (their path-level
`servers` entry), the rest to the API listener. EVENTS_CACHE_FUZZ_EXAMPLES sets the
examples per operation and mode (default 200: about 2,000 requests over five operations).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from daemon.core.capture import check_capture  # noqa: E402
from daemon.core.ids import ASTRAL_CC_CF, check_id  # noqa: E402
from tests.support.daemon import StartDaemon  # noqa: E402

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("EVENTS_CACHE_FUZZ_EXAMPLES", "200"))
INGEST_PATHS = ("/v1/token/{token_id}/events", "/v1/events")
# The live tail never ends by itself: its parameters are checked in test_e2e_tail.py; a
# long poll waits for its timeout (up to 120 s): its parameters, in test_e2e_wait.py.
NOT_FUZZED = ("GET /api/v1/events/stream", "GET /api/v1/events/wait")
# Rules a schema cannot state, each a 400 whose message names what is wrong:
# DELETE needs `ids` or `all=true`, not both, and GET takes `uid` or `before`, not both
# (OpenAPI 3.0 cannot relate query parameters); a summary cursor must be one the API
# handed out (it is opaque).
SEMANTIC_400 = {
    "DELETE /api/v1/events/cache": ("ids", "all=true"),
    "GET /api/v1/events/cache": ("uid", "before"),
    "GET /api/v1/events/ids": ("cursor",),
}
PARSER_LIMIT = "Got more than"


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes | None:
    """The NDJSON body is documented as a string; anything else goes as JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


def _id_rule_in_words(response: Any, case: Any) -> bool:
    """A 400 for an id holding a Cc or Cf code point past U+FFFF, or ending in :error:
    parts of the id rule the document states in words only (its pattern cannot)."""
    token = (case.path_parameters or {}).get("token_id")
    listed = (case.query or {}).get("ids")
    # Schemathesis may hand the path parameter already percent-encoded, as sent.
    ids = [unquote(token) if "%" in token else token] if isinstance(token, str) else []
    ids += [i.strip() for i in listed.split(",") if i.strip()] if isinstance(listed, str) else []
    refused = [i for i in ids if check_id(i) is not None]
    return bool(refused) and all(
        i.endswith(":error") or any(lo <= ord(c) <= hi for c in i for lo, hi in ASTRAL_CC_CF)
        for i in refused
    )


def _capture_rule_in_words(response: Any, case: Any) -> bool:
    """A 400 for a capture tag over 256 bytes (its characters within maxLength) or holding
    a Cc or Cf code point past U+FFFF: parts of the tag's rule stated in words only."""
    tag = (case.query or {}).get("capture")
    if not isinstance(tag, str) or check_capture(tag) is None:
        return False
    return response.json()["message"].startswith("capture ") and (
        len(tag.encode("utf-8", "surrogatepass")) > 256
        or any(lo <= ord(c) <= hi for c in tag for lo, hi in ASTRAL_CC_CF)
    )


def _semantic_words(label: str, case: Any) -> tuple[str, ...]:
    """What a 400 for a schema-valid request must mention (the reset by capture has rules
    of its own, each message naming `capture`)."""
    if label.startswith("DELETE") and "capture" in (case.query or {}):
        return ("capture",)
    return SEMANTIC_400[label]


def _message_on_4xx(response: Any) -> bool:
    if response.text.startswith(PARSER_LIMIT):
        # Beyond aiohttp's parser limits (request line > 16 KiB, a header > 8 KiB): its
        # own plain-text 400, before any handler or middleware could shape it.
        assert response.status_code == 400
        return True
    if 400 <= response.status_code < 500:
        doc = response.json()
        assert isinstance(doc, dict) and isinstance(doc.get("message"), str) and doc["message"], (
            f"{response.status_code} without a message: {response.text[:200]}"
        )
    return True


@pytest.mark.timeout(300)  # a minute or two alone; more beside the rest of the suite
def test_openapi_fuzzing_both_apis(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(
        {
            "server": {"cache": {"events": {"size": 20}}},
            "sidecar": {"ingest": {"max_request_bytes": 65536, "queue_size": 5000}},
        }
    )
    document = daemon.api("/openapi.json", token=None).json
    schema = schemathesis.openapi.from_dict(document)
    api_url = f"http://127.0.0.1:{daemon.api_port}"
    ingest_url = f"http://127.0.0.1:{daemon.ingest_port}"
    session = requests.Session()
    calls: dict[str, int] = {}
    statuses: dict[int, int] = {}

    def run(operation: Any, mode: GenerationMode, base: str, label: str) -> None:
        headers = {"X-Admin-Token": daemon.token} if "/api/" in label else None

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            response = case.call(base_url=base, session=session, headers=headers, timeout=10)
            calls[label] = calls.get(label, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (label, response.status_code, response.text)
            _message_on_4xx(response)
            if mode == GenerationMode.POSITIVE:
                excluded = None
                if response.status_code == 400 and (
                    _id_rule_in_words(response, case) or _capture_rule_in_words(response, case)
                ):
                    excluded = [positive_data_acceptance]
                elif response.status_code == 400 and label in SEMANTIC_400:
                    message = response.json()["message"]
                    words = _semantic_words(label, case)
                    assert all(word in message for word in words), message
                    excluded = [positive_data_acceptance]
                case.validate_response(response, headers=headers, excluded_checks=excluded)

        try:
            fuzz()
        except Unsatisfiable:
            if mode == GenerationMode.POSITIVE:
                raise  # negative data is impossible for an operation without inputs

    for result in schema.get_all_operations():
        operation = result.ok()
        base = ingest_url if operation.path in INGEST_PATHS else api_url
        label = f"{operation.method.upper()} {operation.path}"
        if label in NOT_FUZZED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run(operation, mode, base, label)
            assert daemon.alive, daemon.log()[-3000:]

    assert daemon.api("/healthz", token=None).status == 200
    total = sum(calls.values())
    print(f"\nFUZZ-REPORT requests={total} per_operation={calls} statuses={statuses}")
    assert total >= 1000
    assert daemon.metric("events_cache_http_request_duration_seconds_count") >= 0
