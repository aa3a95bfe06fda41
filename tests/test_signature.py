"""Error signatures (daemon.core.signature): messages that differ only in values reduce
to one signature; the words stay; the tally counts written errors per signature."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.model import Namespace, Target
from daemon.core.signature import MAX_MESSAGE_CHARS, signature
from daemon.pipeline.errors import MAX_SIGNATURES, ErrorTally
from daemon.pipeline.queue import QueuedEntry

PQ = 'pq: column "{}" is of type numeric but expression is of type text'


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (PQ.format("revenue"), "pq: column <q> is of type numeric but expression is of type text"),
        (
            'pq: invalid input syntax for type integer: "12abc"',
            "pq: invalid input syntax for type integer: <q>",
        ),
        (
            "dial tcp 10.0.0.12:5432: connect: connection refused",
            "dial tcp <addr>: connect: connection refused",
        ),
        ("dial tcp [::1]:5432: i/o timeout", "dial tcp <addr>: i/o timeout"),
        (
            "read tcp 192.168.1.4: connection reset by peer",
            "read tcp <addr>: connection reset by peer",
        ),
        ("clickhouse.internal:9000: timeout", "<addr>: timeout"),
        (
            'Post "https://api.example.com/v1/track": context deadline exceeded '
            "(Client.Timeout exceeded while awaiting headers)",
            "Post <q>: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
        ),
        (
            "googleapi: Error 400: Provided Schema does not match Table p:d.events. Field "
            "revenue has changed type from NUMERIC to STRING, invalid",
            "googleapi: Error <n>: Provided Schema does not match Table p:d.events. Field "
            "revenue has changed type from NUMERIC to STRING, invalid",
        ),
        (
            "code: 53, message: Type mismatch in IN or VALUES section. Expected: UInt64. "
            "Got: String",
            "code: <n>, message: Type mismatch in IN or VALUES section. Expected: UInt64. "
            "Got: String",
        ),
        (
            "request 3f2a9c1e-1b2c-4d5e-8f90-123456789abc failed after 30s",
            "request <uuid> failed after <n>s",
        ),
        ("trace deadbeef0123 id 0x1F", "trace <hex> id <hex>"),
        ("at 2024-05-01T12:00:00.123Z retry 3 of 5", "at <n> retry <n> of <n>"),
        ("x86_64 utf8 http2 stay words", "x86_64 utf8 http2 stay words"),
        ("HTTP 503 -12.5 1e10", "HTTP <n> <n> <n>"),
    ],
)
def test_values_become_placeholders(message: str, expected: str) -> None:
    assert signature(message) == expected


def test_a_uuid_is_one_placeholder_not_hex_and_numbers() -> None:
    assert signature(f"id {uuid.uuid4()} gone") == "id <uuid> gone"


_KINDS = (
    (st.integers(-(10**12), 10**12).map(str), "<n>"),
    (st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"), "<n>"),
    (st.uuids().map(str), "<uuid>"),
    (st.ip_addresses(v=4).map(str), "<addr>"),
    (
        st.tuples(st.ip_addresses(v=4), st.integers(1, 65535)).map(lambda t: f"{t[0]}:{t[1]}"),
        "<addr>",
    ),
    (
        st.tuples(
            st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){1,3}", fullmatch=True), st.integers(1, 65535)
        ).map(lambda t: f"{t[0]}:{t[1]}"),
        "<addr>",
    ),
    (
        st.text(st.characters(blacklist_characters='"\\\n'), max_size=30).map(lambda t: f'"{t}"'),
        "<q>",
    ),
    (st.binary(min_size=1, max_size=16).map(lambda b: "0x" + b.hex()), "<hex>"),
)
TEMPLATES = (
    "insert failed: value {} rejected by the destination",
    "pq: column {} is of type numeric but expression is of type text",
    "{}: connection refused",
)


@settings(max_examples=500, deadline=None)
@given(data=st.data(), kind=st.sampled_from(_KINDS), template=st.sampled_from(TEMPLATES))
def test_messages_that_differ_only_in_values_share_one_signature(
    data: st.DataObject, kind: tuple[st.SearchStrategy[str], str], template: str
) -> None:
    values, placeholder = kind
    a, b = data.draw(values), data.draw(values)
    assert (
        signature(template.format(a))
        == signature(template.format(b))
        == template.format(placeholder)
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_has_a_bounded_signature_that_is_stable(message: str) -> None:
    once = signature(message)
    assert signature(message) == once
    assert len(once) <= MAX_MESSAGE_CHARS * 6  # a placeholder is at most 6 characters


def _entry(id_: str, error: str) -> QueuedEntry:
    return QueuedEntry(Namespace.DESTINATION, id_, int(Target.ALL | Target.ERROR), b"{}", "", error)


def test_the_tally_counts_per_signature_id_and_minute() -> None:
    clock = iter([120.5, 121.0, 190.0])
    tally = ErrorTally(lambda: next(clock))
    tally.add([_entry("pg", PQ.format("a")), _entry("bq", PQ.format("b")), _entry("pg", "")])
    tally.add([_entry("pg", PQ.format("c"))])
    tally.add([_entry("pg", PQ.format("d"))])  # the next minute
    taken = tally.take()
    sig = signature(PQ.format("x"))
    minute2 = taken.seen[Namespace.DESTINATION, 2, sig]
    assert (minute2.count, minute2.ids, minute2.first, minute2.last) == (
        3,
        {"pg": 2, "bq": 1},
        120.5,
        121.0,
    )
    assert taken.seen[Namespace.DESTINATION, 3, sig].count == 1
    assert tally.take().seen == {}


def test_the_tally_counts_at_most_max_signatures_a_minute() -> None:
    tally = ErrorTally(lambda: 60.0)
    tally.add(
        [
            _entry("d", f"kind {chr(65 + n // 26)}{chr(65 + n % 26)}")
            for n in range(MAX_SIGNATURES + 5)
        ]
    )
    taken = tally.take()
    assert len(taken.seen) == MAX_SIGNATURES and taken.skipped == 5


def test_the_memo_is_bounded_and_keeps_only_heads() -> None:
    from daemon.core.signature import MEMO_SIZE, _memoised

    long = "boom " + "z" * 100_000
    assert signature(long) == signature(long + " and more")  # one head, one signature
    for n in range(MEMO_SIZE + 10):
        signature(f"message number {n} of many")
    info = _memoised.cache_info()
    assert info.currsize <= MEMO_SIZE and info.hits > 0


def test_the_tally_holds_a_bounded_amount_of_examples() -> None:
    from daemon.pipeline.errors import MAX_EXAMPLE_BYTES

    tally = ErrorTally(lambda: 60.0)
    big = b"x" * (MAX_EXAMPLE_BYTES // 2 - 10)
    entries = [
        QueuedEntry(Namespace.TOKEN, "t", int(Target.ERROR), big, "", f"kind {k}") for k in "ABC"
    ]
    tally.add(entries)
    held = [seen.example for seen in tally.take().seen.values()]
    assert held == [big, big, b""]  # the third signature is counted with no example
