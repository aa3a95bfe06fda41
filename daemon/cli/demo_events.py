"""Synthetic Jitsu-like traffic for `events-cache demo`: pure (no I/O, the caller passes
the time), reproducible from the random generator it is given.

Each request is one body the ingest received for an API key (a JSON event, sometimes an
array of them from a server key, or a body that is not JSON at all), followed by what
each of the key's destinations made of its events: a database row or an HTTP request,
an error, or a skip. With `error_ratio` R, a body is bad with probability R / 2 (half of
them not JSON, half rejected by the ingest) and a destination fails an event with
probability R; skips (bots, filters) come on top, whatever R. Every message fits its
event (demo_faults).

The shape is that of the cache's limit (100 events per id a minute by default): the
quiet keys send a fixed, modest rate, low enough that neither they nor the destinations
they share reach it, and the busy key (data.BUSY_KEY, no destination) takes the rest of
the rate, so that one id, and only one, shows the limit at work.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from dataclasses import dataclass
from typing import Any

from daemon.cli import demo_data as data
from daemon.cli import demo_faults as faults
from daemon.cli.demo_data import Destination, destinations, success
from daemon.cli.demo_faults import iso

DEFAULT_RATE = 20.0  # incoming events a second
INGEST_SKIP_RATIO = 0.04
USERS_PER_KEY = 40
ARRAY_RATIO = 0.3  # of a server key's bodies: an array of 2 or 3 events
# Events a second of the first quiet key; the n-th sends QUIET_RATE / (1 + n / 2). The
# busiest destination then gets about 80 a minute, under the default 100 per id.
QUIET_RATE = 0.8


@dataclass(frozen=True)
class Incoming:
    """A body the ingest received for an API key, as the client's incoming() takes it."""

    token_id: str
    body: bytes
    skip: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Processed:
    """What a destination made of an event, as the client's processed() takes it."""

    destination_id: str
    token_id: str
    original: dict[str, Any]
    success: dict[str, Any] | None = None
    error: str | None = None
    skip: str | None = None


Item = Incoming | Processed


@dataclass
class Tally:
    """What the generator produced so far."""

    requests: int = 0  # bodies handed over for the token namespace
    events: int = 0  # events in them (an array body counts each element)
    malformed: int = 0  # bodies that are not JSON
    rejected: int = 0  # bodies the ingest rejected
    skipped: int = 0  # events the ingest skipped
    results: int = 0  # destination results
    result_errors: int = 0
    result_skips: int = 0


@dataclass(frozen=True)
class ApiKey:
    """An API key: a browser key of a site, or a server-to-server key."""

    id: str
    host: str
    pages: tuple[tuple[str, str], ...]
    server: bool
    destinations: tuple[Destination, ...]


def key_rates(ids: int, rate: float) -> list[float]:
    """Events a second of each key: the busy key first (from two ids), then the quiet
    ones. Below twice what the quiet keys send, all keys slow down alike."""
    if ids == 1:
        return [rate]
    quiet = [QUIET_RATE / (1 + n / 2) for n in range(ids - 1)]
    scale = min(1.0, rate / (2 * sum(quiet)))
    quiet = [q * scale for q in quiet]
    return [rate - sum(quiet), *quiet]


def _name(i: int) -> str:
    # The same names every run (the traffic varies): repeated demos feed the same ids.
    named = random.Random(f"events-cache demo key {i}")
    alphabet = string.ascii_lowercase + string.digits
    return "".join(named.choice(alphabet) for _ in range(12))


class Traffic:
    """The generator: `request(now)` gives the items of one incoming request."""

    def __init__(
        self, ids: int, error_ratio: float, rng: random.Random, rate: float = DEFAULT_RATE
    ) -> None:
        if ids < 1:
            raise ValueError("ids must be at least 1")
        if not 0 <= error_ratio <= 1:
            raise ValueError("error_ratio must be between 0 and 1")
        if rate <= 0:
            raise ValueError("rate must be above 0")
        self.rng = rng
        self.error_ratio = error_ratio
        self.tally = Tally()
        dests = destinations(ids)
        quiet = [self._key(i, dests) for i in range(ids - 1 if ids > 1 else 1)]
        busy = ApiKey(data.BUSY_KEY, *data.BUSY_SITE, server=False, destinations=())
        self.keys = [busy, *quiet] if ids > 1 else quiet
        self.rates = key_rates(ids, rate)
        # requests, not events, are drawn: a server key's arrays hold several events
        arrays = 1 + ARRAY_RATIO * 1.5
        pairs = zip(self.keys, self.rates, strict=True)
        self.weights = [r / (arrays if k.server else 1) for k, r in pairs]
        self.users = {k.id: [self._hex(16) for _ in range(USERS_PER_KEY)] for k in self.keys}

    def _key(self, i: int, dests: tuple[Destination, ...]) -> ApiKey:
        server = i % 4 == 2  # with the default 4 ids: two browser keys, one server key
        host, pages = data.SITES[i % len(data.SITES)]
        routed = tuple(dests[(i + j) % len(dests)] for j in range(min(2 + i % 2, len(dests))))
        return ApiKey(f"{'s2s' if server else 'js'}.{_name(i)}", host, pages, server, routed)

    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def request(self, now: float) -> list[Item]:
        """One incoming request for a key, then its destinations' results."""
        rng, tally = self.rng, self.tally
        key = rng.choices(self.keys, self.weights)[0]
        count = rng.randint(2, 3) if key.server and rng.random() < ARRAY_RATIO else 1
        events = [self._event(key, now) for _ in range(count)]
        tally.requests += 1
        tally.events += count
        if rng.random() < self.error_ratio / 2:
            return [self._bad(key, events, now)]
        if not key.server and rng.random() < INGEST_SKIP_RATIO:
            tally.skipped += count
            reason = faults.skip(events, rng)
            return [Incoming(key.id, _body(events), skip=reason)]
        items: list[Item] = [Incoming(key.id, _body(events))]
        for event in events:
            original = self._enriched(event, now)
            items += [self._result(d, key, original) for d in key.destinations]
        return items

    def _bad(self, key: ApiKey, events: list[dict[str, Any]], now: float) -> Incoming:
        """A body that is not JSON, or one the ingest rejected for what it holds."""
        rng = self.rng
        if rng.random() < 0.5:
            self.tally.rejected += 1
            error = faults.reject(events, key.server, now, rng)
            return Incoming(key.id, _body(events), error=error)
        self.tally.malformed += 1
        body = _body(events)
        text = body.decode()
        choices = [
            body[: rng.randint(10, max(11, len(body) - 2))],  # cut off in transit
            text.replace("}", ",}", 1).encode(),  # a trailing comma
            b"event_type=pageview&url=https%3A%2F%2F" + key.host.encode(),  # a form post
            b"undefined",
            b"\xff\xfe" + body[:40],  # not UTF-8
        ]
        return Incoming(key.id, rng.choice(choices))

    def _event(self, key: ApiKey, now: float) -> dict[str, Any]:
        rng = self.rng
        table = data.S2S_EVENTS if key.server else data.BROWSER_EVENTS
        event_type = rng.choices([t for t, _ in table], [w for _, w in table])[0]
        anonymous_id = rng.choice(self.users[key.id])
        if key.server:
            event: dict[str, Any] = {
                "api_key": key.id,
                "event_type": event_type,
                "event_id": self._uuid(),
                "user": {"id": f"u_{int(anonymous_id[:6], 16) % 100000}"},
                "utc_time": iso(now - rng.uniform(0, 2)),
                "src": "api",
            }
        else:
            event = {
                "api_key": key.id,
                "event_type": event_type,
                "eventn_ctx": self._context(key, anonymous_id, now),
                "src": "jitsu",
            }
        details = self._details(event_type, anonymous_id)
        if not key.server and rng.random() < data.TEXT_NUMBERS_RATIO:
            details = faults.numbers_as_text(details)
        event.update(details)
        return event

    def _context(self, key: ApiKey, anonymous_id: str, now: float) -> dict[str, Any]:
        """eventn_ctx of the JavaScript SDK: the page, the browser and the user."""
        rng = self.rng
        path, title = rng.choice(key.pages)
        utm = rng.choice(data.UTM_SOURCES)
        search = f"?utm_source={utm}" if utm else ""
        screen, viewport = rng.choice(data.SCREENS)
        return {
            "event_id": self._uuid(),
            "user": {"anonymous_id": anonymous_id},
            "ids": {"ga": f"GA1.1.{rng.randint(10**8, 10**9)}.{int(now) - 86400}"},
            "user_agent": rng.choice(data.USER_AGENTS),
            "utc_time": iso(now - rng.uniform(0, 0.5)),
            "local_tz_offset": rng.choice((-120, -60, 0, 240, 420)),
            "referer": rng.choice(data.REFERERS),
            "url": f"https://{key.host}{path}{search}",
            "page_title": title,
            "doc_path": path,
            "doc_host": key.host,
            "doc_search": search,
            "screen_resolution": screen,
            "vp_size": viewport,
            "user_language": rng.choice(data.LANGUAGES),
            "doc_encoding": "UTF-8",
            "utm": {"source": utm} if utm else {},
            "click_id": {},
        }

    def _details(self, event_type: str, anonymous_id: str) -> dict[str, Any]:
        """The fields of an event type beyond the context."""
        rng = self.rng
        sku, price = rng.choice(data.PRODUCTS)
        if event_type in ("purchase", "invoice_paid", "subscription_renewed", "refund"):
            quantity = rng.randint(1, 3)
            return {
                "order_id": f"ord_{rng.randint(10000, 99999)}",
                "revenue": round(price * quantity * (-1 if event_type == "refund" else 1), 2),
                "currency": "USD",
                "items": [{"sku": sku, "price": price, "quantity": quantity}],
            }
        if event_type == "add_to_cart":
            return {"product": {"sku": sku, "price": price, "quantity": 1}}
        if event_type == "click":
            return {"element_id": rng.choice(("buy-now", "nav-pricing", "signup-cta"))}
        if event_type == "scroll_depth":
            return {"percent": rng.choice((25, 50, 75, 100))}
        if event_type in ("identify", "signup"):
            user_id = f"u_{int(anonymous_id[:6], 16) % 100000}"
            return {"user_id": user_id, "email": f"{user_id}@example.com", "plan": "free"}
        return {}

    def _enriched(self, event: dict[str, Any], now: float) -> dict[str, Any]:
        """The event as a destination gets it: Jitsu adds the time and the source IP,
        and gives a server event its id as `eventn_ctx_event_id`, the column its tables
        are keyed on (a browser event has it in eventn_ctx already). Every destination's
        entry thus carries the id of the API key's event: its journey joins them."""
        rng = self.rng
        ip = f"{rng.choice(('198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"  # doc ranges
        enriched = {**event, "_timestamp": iso(now), "source_ip": ip}
        if "eventn_ctx" not in event and "event_id" in event:
            enriched["eventn_ctx_event_id"] = event["event_id"]
        return enriched

    def _result(self, dest: Destination, key: ApiKey, original: dict[str, Any]) -> Processed:
        rng, tally = self.rng, self.tally
        tally.results += 1
        event_type = original["event_type"]
        skip = dest.skip(event_type)
        if skip:
            tally.result_skips += 1
            return Processed(dest.id, key.id, original, skip=skip)
        if rng.random() < self.error_ratio:
            tally.result_errors += 1
            return Processed(dest.id, key.id, original, error=faults.failure(dest, original, rng))
        return Processed(dest.id, key.id, original, success=success(dest, original))


def _body(events: list[dict[str, Any]]) -> bytes:
    """One event as an object, several as an array, as the SDKs post them."""
    return json.dumps(events if len(events) > 1 else events[0], ensure_ascii=False).encode()
