"""Query parameters and the admin token check."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from daemon.core.model import Collection, Namespace
from daemon.core.wire import DEFAULT_LIMIT
from daemon.query.params import QueryError, parse_query, parse_stream
from daemon.web.auth import TokenCheck


def test_defaults() -> None:
    q = parse_query({}, size=100)
    assert (q.namespace, q.collection, q.limit, q.ids) == (
        Namespace.DESTINATION,
        Collection.ALL,
        DEFAULT_LIMIT,
        None,
    )


def test_ids_absent_empty_and_listed() -> None:
    assert parse_query({}, 100).ids is None
    assert parse_query({"ids": ""}, 100).ids == ()
    assert parse_query({"ids": "b, a,,b"}, 100).ids == ("b", "a")


def test_limit_is_capped_at_size_and_zero_is_allowed() -> None:
    assert parse_query({"limit": "500"}, 100).limit == 100
    assert parse_query({"limit": "0"}, 100).limit == 0
    assert parse_query({"limit": "7"}, 100).limit == 7


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "abc"}, "limit must be int"),
        ({"limit": "1.5"}, "limit must be int"),
        ({"limit": "1_0"}, "limit must be int"),
        ({"limit": "-1"}, "limit must be >= 0"),
        ({"namespace": "users"}, "namespace must be 'token' or 'destination'"),
        ({"status": "ok"}, "status must be empty or 'error'"),
        ({"uid": "u" * 65}, "uid must be at most 64 characters"),
        ({"uid": "a", "before": "b"}, "give either uid .one entry. or before .a page., not both"),
    ],
)
def test_bad_parameters_name_themselves(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(params, 100)


def test_status_error_reads_the_error_collection() -> None:
    q = parse_query({"status": "error", "namespace": "token"}, 100)
    assert (q.namespace, q.collection) == (Namespace.TOKEN, Collection.ERROR)


def _request(path: str, headers: dict[str, str] | None = None) -> object:
    return make_mocked_request("GET", path, headers=headers or {})


def test_token_check_header_rotation_and_query_parameter() -> None:
    check = TokenCheck(("old", "new"), allow_in_query=False)
    assert check.allows(_request("/", {"X-Admin-Token": "old"}))  # type: ignore[arg-type]
    assert check.allows(_request("/", {"X-Admin-Token": "new"}))  # type: ignore[arg-type]
    assert not check.allows(_request("/", {"X-Admin-Token": "ne"}))  # type: ignore[arg-type]
    assert not check.allows(_request("/"))  # type: ignore[arg-type]
    assert not check.allows(_request("/?token=new"))  # type: ignore[arg-type]
    in_query = TokenCheck(("new",), allow_in_query=True)
    assert in_query.allows(_request("/?token=new"))  # type: ignore[arg-type]


def test_token_check_with_no_tokens_refuses_everything() -> None:
    check = TokenCheck((), allow_in_query=True)
    assert not check.allows(_request("/?token=", {"X-Admin-Token": ""}))  # type: ignore[arg-type]


# -- filters, summary, reset ---------------------------------------------------------------


def test_filters_parse_and_name_the_parameter() -> None:
    from daemon.query.params import parse_query

    q = parse_query(
        {"since": "2024-05-01T12:00:00Z", "until": "2024-05-01T14:00:00+02:00", "q": "PageView"},
        100,
    )
    assert q.since is not None and q.until is not None and q.since == q.until
    assert q.q == "pageview" and q.filtered
    assert not parse_query({}, 100).filtered
    for name in ("since", "until"):
        for bad in ("yesterday", "2024-05-01", "2024-05-01T12:00:00"):
            with pytest.raises(QueryError, match=rf"^{name} must be RFC 3339"):
                parse_query({name: bad}, 100)
    with pytest.raises(QueryError, match=r"^q must be at most 1000"):
        parse_query({"q": "x" * 1001}, 100)
    with pytest.raises(QueryError, match=r"^before must be at most 64"):
        parse_query({"before": "u" * 65}, 100)


def test_ids_query_limits_and_defaults() -> None:
    from daemon.core.wire import DEFAULT_IDS_LIMIT, MAX_IDS_LIMIT
    from daemon.query.params import parse_ids_query

    q = parse_ids_query({})
    assert (q.namespace, q.q, q.limit, q.cursor) == (
        Namespace.DESTINATION,
        "",
        DEFAULT_IDS_LIMIT,
        "",
    )
    assert parse_ids_query({"limit": str(MAX_IDS_LIMIT)}).limit == MAX_IDS_LIMIT
    for bad in ("0", str(MAX_IDS_LIMIT + 1), "-1"):
        with pytest.raises(QueryError, match=r"^limit must be between 1 and"):
            parse_ids_query({"limit": bad})
    with pytest.raises(QueryError, match=r"^limit must be int"):
        parse_ids_query({"limit": "ten"})


def test_reset_needs_ids_or_all_but_not_both() -> None:
    from daemon.query.params import parse_reset

    assert parse_reset({"namespace": "token", "ids": "a,b,a"}).ids == ("a", "b")
    everything = parse_reset({"all": "true"})
    assert everything.everything and everything.ids == ()
    for params in ({}, {"ids": ""}, {"all": "false"}):
        with pytest.raises(QueryError, match=r"^ids is required"):
            parse_reset(params)
    with pytest.raises(QueryError, match="not both"):
        parse_reset({"ids": "a", "all": "true"})
    with pytest.raises(QueryError, match=r"^all must be 'true' or 'false'"):
        parse_reset({"all": "yes"})


def test_cursor_round_trip_and_foreign_cursors() -> None:
    from daemon.store.index import Cursor, CursorError

    cursor = Cursor(1795704581.266593, "key:ünï/,x".encode())
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "!!", "bm90IGpzb24", "WzFd", "WyJhIiwiYiJd"):
        with pytest.raises(CursorError):
            Cursor.decode(bad)


V7 = "018f33a4-4f63-7a1e-8a07-2f1e4b0c1d2e"


def test_stream_backfill_parameters_and_last_event_id() -> None:
    plain = parse_stream({"namespace": "token"}, "", cap=50)
    assert (plain.last, plain.since, plain.after, plain.backfills) == (0, None, "", False)
    assert parse_stream({"last": "20"}, "", cap=50).last == 20
    assert parse_stream({"last": "500"}, "", cap=50).last == 50  # capped
    since = parse_stream({"since": "2024-05-01T14:00:00+02:00"}, "", cap=50)
    assert since.since is not None and since.since.hour == 14 and since.backfills
    # a version 7 Last-Event-ID replaces last and since: a reconnect resumes
    resumed = parse_stream({"last": "20"}, V7.upper(), cap=50)
    assert (resumed.last, resumed.after, resumed.unknown_anchor) == (0, V7, False)
    # any other is ignored, and said to be unknown; last still holds
    for other in ("6f1c9a7e-0d4b-4c44-9a57-2f1e4b0c1d2e", "42", V7 + "x" * 64):
        old = parse_stream({"last": "3"}, other, cap=50)
        assert (old.last, old.after, old.unknown_anchor) == (3, "", True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"last": "-1"}, "last must be >= 0"),
        ({"last": "1.5"}, "last must be int"),
        ({"since": "10m"}, "since must be RFC 3339"),
        ({"last": "1", "since": "2024-05-01T12:00:00Z"}, "either last"),
        ({"status": "ok"}, "status must be"),
    ],
)
def test_bad_stream_parameters_name_themselves(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_stream(params, "", cap=50)
