"""`events-cache errors` against two live daemons, as a person runs it: a table, JSON,
NDJSON, its filters, and a clear failure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.scrape import settle
from tests.support.servers import wait_for
from tests.test_cli_read import cli, url

pytestmark = pytest.mark.e2e

PQ = 'pq: column "{}" is of type numeric but expression is of type text'


def failed(id_: str, error: str) -> dict[str, Any]:
    return {"namespace": "destination", "id": id_, "original": {"e": 1}, "error": error}


def test_errors_as_a_table_json_and_ndjson(start_daemon: Any) -> None:
    first, second = start_daemon(), start_daemon()
    first.post_ndjson([failed("pg", PQ.format(c)) for c in ("a", "b", "c")])
    second.post_ndjson(
        [failed("bq", PQ.format("d")), failed("bq", "dial tcp 10.1.2.3:443: i/o timeout")]
    )
    settle(first)
    settle(second)

    def counted() -> Any:
        doc = json.loads(cli("errors", "--url", url(second)).stdout)  # not a terminal: JSON
        return doc if sum(s["count"] for s in doc["signatures"]) == 5 else None

    doc = wait_for(counted, 10, what="5 errors counted")
    assert doc["namespace"] == "destination"
    assert [(s["signature"], s["count"]) for s in doc["signatures"]] == [
        ("pq: column <q> is of type numeric but expression is of type text", 4),
        ("dial tcp <addr>: i/o timeout", 1),
    ]
    table = cli("errors", "--url", url(first), "--output", "table")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["COUNT", "LAST", "SEEN", "IDS", "SIGNATURE"]
    assert rows[0].split()[0] == "4" and "pg (3), bq (1)" in rows[0]
    assert rows[0].endswith("pq: column <q> is of type numeric but expression is of type text")
    lines = cli("errors", "--url", url(first), "--output", "ndjson", "--ids", "bq").stdout
    found = sorted(
        (json.loads(x)["signature"][:4], json.loads(x)["count"]) for x in lines.splitlines()
    )
    assert found == [("dial", 1), ("pq: ", 1)]  # bq's alone, one signature a line
    since = cli("errors", "--url", url(first), "--since", "10m", "--namespace", "token")
    assert json.loads(since.stdout) == {"namespace": "token", "signatures": []}


def test_a_bad_since_and_a_wrong_token_fail_clearly(start_daemon: Any) -> None:
    daemon = start_daemon()
    bad = cli("errors", "--url", url(daemon), "--since", "yesterday")
    assert bad.returncode == 1 and "--since must be RFC 3339 or a duration" in bad.stderr
    wrong = cli("errors", "--url", url(daemon), token="nope")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert "refused the admin token" in wrong.stderr
