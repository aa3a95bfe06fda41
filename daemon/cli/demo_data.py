"""The vocabulary of the demo generator: sites, browsers, event types and the shape of
destinations' results, as a Jitsu Classic installation would see them (the destinations
themselves, their skips and errors: demo_destinations)."""

from __future__ import annotations

import json
from typing import Any

from daemon.cli.demo_destinations import (
    DESTINATION_SKIPS,
    DESTINATIONS,
    Destination,
    Failure,
    destinations,
)

__all__ = ["DESTINATIONS", "DESTINATION_SKIPS", "Destination", "Failure", "destinations"]

# (host, page paths with their titles) of the sites whose API keys send events.
SITES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "shop.example.com",
        (
            ("/", "Example Shop"),
            ("/products/blue-mug", "Blue mug | Example Shop"),
            ("/products/desk-lamp", "Desk lamp | Example Shop"),
            ("/cart", "Your cart | Example Shop"),
            ("/checkout", "Checkout | Example Shop"),
        ),
    ),
    (
        "docs.example.org",
        (
            ("/", "Documentation"),
            ("/getting-started", "Getting started | Docs"),
            ("/api/events", "Events API | Docs"),
            ("/faq", "FAQ | Docs"),
        ),
    ),
    (
        "app.example.io",
        (
            ("/dashboard", "Dashboard"),
            ("/reports/weekly", "Weekly report"),
            ("/settings/billing", "Billing settings"),
        ),
    ),
    (
        "www.example.net",
        (
            ("/", "Example | Home"),
            ("/pricing", "Pricing | Example"),
            ("/blog/launch-week", "Launch week | Example blog"),
            ("/signup", "Sign up | Example"),
        ),
    ),
)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
)
BOT_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
REFERERS = ("", "https://www.google.com/", "https://news.ycombinator.com/", "https://t.co/x4Ab9")
LANGUAGES = ("en-US", "en-GB", "de-DE", "fr-FR", "pt-BR")
SCREENS = (("1920x1080", "1280x720"), ("2560x1440", "1512x860"), ("390x844", "390x664"))
UTM_SOURCES = ("", "", "newsletter", "google", "twitter")

# Browser event types and their weights; server-to-server keys send the S2S ones.
BROWSER_EVENTS = (
    ("pageview", 50),
    ("click", 16),
    ("add_to_cart", 9),
    ("identify", 6),
    ("signup", 4),
    ("purchase", 5),
    ("scroll_depth", 10),
)
S2S_EVENTS = (("purchase", 5), ("subscription_renewed", 3), ("refund", 1), ("invoice_paid", 3))
PRODUCTS = (("blue-mug", 12.5), ("desk-lamp", 49.0), ("notebook", 6.9), ("poster", 19.0))

# The key of a load test against a staging site, with no destination connected: the
# demo's busy key, the one that shows the cache's rate limit at work.
BUSY_KEY = "js.busy-loadtest"
BUSY_SITE = ("staging.shop.example.com", SITES[0][1])

# Why the ingest skips a browser event (it is cached with `skip`); the bot's skip comes
# with the bot's user agent in the body (demo_faults).
BOT_SKIP = "bot filtered (user agent: Googlebot/2.1)"
OTHER_SKIPS = (
    "ip 203.0.113.7 is on the exclusion list",
    "consent not given (cookie policy)",
)
# Sites that copied a browser key into their own pages: the ingest refuses their origin.
FOREIGN_ORIGINS = ("https://evil.example", "https://shop-example-deals.example")
# Browser events whose numbers a site's tag manager read from the page, as text
# ("12.50"): the databases with numeric columns refuse them (demo_destinations).
TEXT_NUMBERS_RATIO = 0.2


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as Jitsu flattens them into columns: eventn_ctx_url, ..."""
    out: dict[str, Any] = {}
    for name, item in value.items():
        column = f"{prefix}{name}"
        if isinstance(item, dict):
            out.update(flatten(item, column + "_"))
        else:
            out[column] = json.dumps(item) if isinstance(item, list) else item
    return out


def success(dest: Destination, original: dict[str, Any]) -> dict[str, Any]:
    """The success payload of the facts sheet: a typed row for a database, the request
    for an HTTP destination."""
    if dest.kind == "http":
        body = {
            "event_type": original["event_type"],
            "user_id": original.get("user_id") or original.get("user", {}).get("id"),
            "time": original["_timestamp"],
        }
        return {
            "destination_id": dest.id,
            "url": dest.url,
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body),
        }
    text, time, integer, number = dest.types
    record = []
    for field, value in sorted(flatten(original).items()):
        if field.endswith(("_timestamp", "utc_time")):
            kind = time
        elif isinstance(value, bool) or isinstance(value, str) or value is None:
            kind = text
        else:
            kind = integer if isinstance(value, int) else number
        record.append({"field": field, "type": kind, "value": value})
    return {"destination_id": dest.id, "table": dest.table, "record": record}
