"""What goes wrong in the demo's traffic, each time consistent with the event it is
attached to: a message is chosen among those that fit the event, and the event is
changed to be what the message says (a rejected body without event_type lacks it, a
bot's skipped event has the bot's user agent), so the viewer never shows an error
that its own event contradicts.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from daemon.cli import demo_data as data
from daemon.cli.demo_data import Destination, flatten

DAY_S = 86400.0


def iso(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, as the JavaScript SDK writes utc_time."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _no_event_type(events: list[dict[str, Any]], now: float, rng: random.Random) -> str:
    for event in events:
        del event["event_type"]
    return "event has no event_type"


def _in_the_future(events: list[dict[str, Any]], now: float, rng: random.Random) -> str:
    days = rng.randint(2, 5)
    when = iso(now + days * DAY_S + rng.uniform(0, 3600))
    for event in events:
        holder = event.get("eventn_ctx", event)  # browser events keep it in the context
        holder["utc_time"] = when
    return f"event utc_time {when} is {days} days in the future"


def _foreign_origin(events: list[dict[str, Any]], now: float, rng: random.Random) -> str:
    origin = rng.choice(data.FOREIGN_ORIGINS)
    for event in events:
        ctx = event["eventn_ctx"]
        ctx["doc_host"] = origin.removeprefix("https://")
        ctx["url"] = f"{origin}{ctx['doc_path']}{ctx['doc_search']}"
    return f"origin {origin} is not allowed for this API key"


def reject(events: list[dict[str, Any]], server: bool, now: float, rng: random.Random) -> str:
    """Spoil `events` (one body's) as one of the ingest's rejections says; its message.

    Only a browser body has an origin to refuse: a server key posts from a backend.
    """
    reasons = [_no_event_type, _in_the_future]
    if not server:
        reasons.append(_foreign_origin)
    return rng.choice(reasons)(events, now, rng)


def skip(events: list[dict[str, Any]], rng: random.Random) -> str:
    """Why the ingest skips these browser events; a bot's carry the bot's user agent."""
    reason = rng.choice((data.BOT_SKIP, *data.OTHER_SKIPS))
    if reason == data.BOT_SKIP:
        for event in events:
            event["eventn_ctx"]["user_agent"] = data.BOT_AGENT
    return reason


def numbers_as_text(details: dict[str, Any]) -> dict[str, Any]:
    """An event's numbers as a tag manager that reads them from the page sends them
    ("12.50"): what a database's numeric column refuses (demo_destinations)."""
    out = dict(details)
    if isinstance(out.get("revenue"), int | float):
        out["revenue"] = f"{out['revenue']:.2f}"
    if isinstance(out.get("percent"), int):
        out["percent"] = str(out["percent"])
    if isinstance(out.get("product"), dict):
        out["product"] = {**out["product"], "price": f"{out['product']['price']:.2f}"}
    return out


def failure(dest: Destination, original: dict[str, Any], rng: random.Random) -> str:
    """An error of `dest` that this event could have caused, with its values in it."""
    row = flatten(original)
    fitting = [f for f in dest.errors if f.fits(row)]
    return rng.choice(fitting).text(row, dest.table, rng)
