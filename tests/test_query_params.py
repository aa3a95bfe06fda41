"""Query parameters and the admin token check."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from daemon.core.model import Collection, Namespace
from daemon.core.wire import DEFAULT_LIMIT
from daemon.web.auth import TokenCheck
from daemon.web.query.params import QueryError, parse_query


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
