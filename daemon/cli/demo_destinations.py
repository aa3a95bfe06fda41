"""The demo's destinations as a Jitsu Classic installation has them: databases with their
column types and HTTP endpoints, what each one skips, and the errors each one gives.

The errors repeat with varying values, as real ones do: a replica's address, a port, a
size, the column an event's value did not fit. So the viewer's error signatures group
them (`GET /api/v1/errors`) instead of showing each message once. Every message fits the
event it is attached to (`Failure.fits`): a column named is one the event has, with the
value the message says.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Why a destination skips an event: Jitsu's own message for a table-name filter, and an
# HTTP destination's mapping that drops an event type.
DESTINATION_SKIPS = (
    "Transform or table name filter marked object to be skipped. This object will be skipped.",
    "event_type {event_type} is not sent to this destination",
)
CRM_EVENTS = ("identify", "signup", "purchase", "subscription_renewed", "refund", "invoice_paid")
ORDER_EVENTS = ("purchase", "invoice_paid", "refund")


def _anything(value: Any) -> bool:
    return True


def _nothing(rng: random.Random) -> dict[str, Any]:
    return {}


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _fraction(value: Any) -> bool:
    return isinstance(value, float) and not value.is_integer()


def _negative(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value < 0


def _port(rng: random.Random) -> int:
    return rng.randint(32768, 60999)  # the sender's ephemeral port


@dataclass(frozen=True)
class Failure:
    """An error a destination gives, and which events it can happen to: those whose
    flattened row has the column `needs` with a value `when` accepts, and, when `columns`
    (column: the type the table has for it) is given, one of those columns with a value
    `column_when` accepts. The message may name that value (`{value}`), the destination's
    table (`{table}`), the column and its type (`{column}`, `{column_type}`) and what
    `vary` draws (an address, a size), so what the viewer shows beside the event is what
    that event would have caused."""

    message: str
    needs: str = ""
    when: Callable[[Any], bool] = _anything
    columns: Mapping[str, str] = field(default_factory=dict)
    column_when: Callable[[Any], bool] = _anything
    vary: Callable[[random.Random], dict[str, Any]] = _nothing

    def _named(self, row: dict[str, Any]) -> list[str]:
        return [c for c in self.columns if c in row and self.column_when(row[c])]

    def fits(self, row: dict[str, Any]) -> bool:
        """Whether this failure can happen to an event with this flattened row."""
        needed = not self.needs or (self.needs in row and self.when(row[self.needs]))
        return needed and (not self.columns or bool(self._named(row)))

    def text(self, row: dict[str, Any], table: str, rng: random.Random) -> str:
        """The message for that event."""
        value = row.get(self.needs) if self.needs else None
        shown = value if isinstance(value, str) else json.dumps(value)
        column = rng.choice(self._named(row)) if self.columns else ""
        return self.message.format(
            value=shown,
            table=table,
            column=column,
            column_type=self.columns.get(column, ""),
            **self.vary(rng),
        )


@dataclass(frozen=True)
class Destination:
    """A destination as Jitsu knows it: a database with its column types, or an HTTP
    endpoint; the event types it takes (`only`, else all) or drops (`never`), and the
    errors it gives (at least one of them fits any event)."""

    id: str
    kind: str  # "database" or "http"
    table: str = ""
    types: tuple[str, str, str, str] = ("text", "timestamp", "bigint", "numeric")
    url: str = ""
    errors: tuple[Failure, ...] = ()
    only: tuple[str, ...] = ()
    never: tuple[str, ...] = ()

    def skip(self, event_type: str) -> str | None:
        """Why this destination skips an event of this type, or None when it takes it."""
        if self.only and event_type not in self.only:
            return DESTINATION_SKIPS[0]
        if event_type in self.never:
            return DESTINATION_SKIPS[1].format(event_type=event_type)
        return None


# The columns a site's tag manager sometimes fills with text read from the page
# ("12.50"): numeric in the tables, so the database refuses the row.
PG_NUMBERS = {"revenue": "bigint", "product_price": "numeric", "percent": "bigint"}

DESTINATIONS = (
    Destination(
        "pg_main",
        "database",
        table="events",
        errors=(
            Failure(
                'pq: column "{column}" is of type {column_type} but expression is of type text',
                columns=PG_NUMBERS,
                column_when=_text,
            ),
            # the column was created from whole numbers; this revenue has a fraction
            Failure(
                'pq: invalid input syntax for type bigint: "{value}"',
                needs="revenue",
                when=lambda revenue: not isinstance(revenue, str),
            ),
            Failure(
                "dial tcp {host}:5432: connect: connection refused",
                vary=lambda r: {"host": f"10.20.0.{r.choice((15, 16, 17))}"},
            ),
            Failure('pq: duplicate key value violates unique constraint "{table}_pkey"'),
        ),
    ),
    Destination(
        "clickhouse_events",
        "database",
        table="events",
        types=("String", "DateTime64(6)", "Int64", "Float64"),
        errors=(
            Failure(
                "code: 241, message: Memory limit (total) exceeded: would use {gib} GiB "
                "(attempt to allocate chunk of {chunk} bytes), maximum: 8.00 GiB",
                vary=lambda r: {
                    "gib": f"{r.uniform(8.01, 9.9):.2f}",
                    "chunk": r.choice((1048576, 2097152, 4194304, 8388608)),
                },
            ),
            Failure(
                "code: 209, message: Timeout exceeded while reading from socket "
                "({host}:9000, {ms} ms)",
                vary=lambda r: {"host": f"10.20.1.{r.randint(20, 23)}", "ms": 30000},
            ),
            Failure("code: 60, message: Table default.{table} doesn't exist"),
        ),
    ),
    Destination(
        "webhook_crm",
        "http",
        url="https://crm.example.com/hooks/jitsu",
        only=CRM_EVENTS,
        errors=(
            Failure("POST https://crm.example.com/hooks/jitsu: 502 Bad Gateway"),
            Failure(
                'Post "https://crm.example.com/hooks/jitsu": dial tcp {host}:443: i/o timeout',
                vary=lambda r: {"host": f"93.184.215.{r.randint(10, 14)}"},
            ),
            Failure(
                'Post "https://crm.example.com/hooks/jitsu": context deadline exceeded '
                "(Client.Timeout exceeded while awaiting headers)"
            ),
        ),
    ),
    Destination(
        "bigquery_dwh",
        "database",
        table="jitsu_events",
        types=("STRING", "TIMESTAMP", "INTEGER", "FLOAT"),
        errors=(
            Failure(
                "googleapi: Error 403: Quota exceeded: Your table exceeded quota for imports "
                "or query appends per table, quotaExceeded"
            ),
            Failure(
                "googleapi: Error 400: Provided Schema does not match Table "
                "example-dwh:analytics.{table}. Field {column} has changed type from "
                "{column_type} to FLOAT, invalid",
                columns={"revenue": "INTEGER", "product_price": "INTEGER"},
                column_when=_fraction,
            ),
            Failure(
                'Post "https://bigquery.googleapis.com/upload/bigquery/v2/projects/example-dwh/'
                'jobs?uploadType=multipart": dial tcp {host}:443: i/o timeout',
                vary=lambda r: {"host": f"142.250.{r.randint(64, 79)}.{r.randint(1, 254)}"},
            ),
        ),
    ),
    Destination(
        "amplitude",
        "http",
        url="https://api2.amplitude.com/2/httpapi",
        never=("scroll_depth",),
        errors=(
            Failure("POST https://api2.amplitude.com/2/httpapi: 429 Too Many Requests"),
            Failure(
                'Post "https://api2.amplitude.com/2/httpapi": read tcp 10.0.3.{own}:{port}->'
                "{host}:443: read: connection reset by peer",
                vary=lambda r: {
                    "own": r.randint(2, 9),
                    "port": _port(r),
                    "host": f"52.{r.randint(1, 254)}.{r.randint(1, 254)}.{r.randint(1, 254)}",
                },
            ),
        ),
    ),
    Destination(
        "mysql_orders",
        "database",
        table="orders",
        types=("TEXT", "DATETIME", "BIGINT", "DOUBLE"),
        only=ORDER_EVENTS,
        errors=(
            Failure("Error 1062 (23000): Duplicate entry '{value}' for key 'PRIMARY'", "order_id"),
            # an unsigned column: only a refund's negative revenue is out of its range
            Failure(
                "Error 1264 (22003): Out of range value for column 'revenue' at row 1",
                needs="revenue",
                when=_negative,
            ),
            Failure("Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction"),
            Failure(
                "dial tcp {host}:3306: i/o timeout",
                vary=lambda r: {"host": f"10.20.2.{r.choice((40, 41))}"},
            ),
        ),
    ),
)


def destinations(n: int) -> tuple[Destination, ...]:
    """`n` destinations: the catalogue, then numbered copies of it."""
    out = []
    for i in range(n):
        base = DESTINATIONS[i % len(DESTINATIONS)]
        suffix = f"_{i // len(DESTINATIONS) + 1}" if i >= len(DESTINATIONS) else ""
        out.append(dataclasses.replace(base, id=base.id + suffix))
    return tuple(out)
