"""Realistic Jitsu events (~1.5 KB, nested `eventn_ctx`) from a fixed seed."""

from __future__ import annotations

import random
from typing import Any

import orjson

SEED = 20240501

_PAGES = ["/", "/pricing", "/docs/getting-started", "/blog/2024/05/release-notes", "/signup"]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
]
_TYPES = ["pageview", "click", "identify", "app_page", "conversion"]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def make_event(rng: random.Random, api_key: str) -> dict[str, Any]:
    """One event as a Jitsu JS SDK sends it, with the server-side enrichment."""
    page = rng.choice(_PAGES)
    agent = rng.choice(_AGENTS)
    anonymous_id = _hex(rng, 10)
    second = rng.randrange(0, 86400)
    clock = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    utc = f"2024-05-01T{clock}.{rng.randrange(1000):03d}000Z"
    return {
        "api_key": api_key,
        "event_type": rng.choice(_TYPES),
        "event_id": _uuid(rng),
        "src": "jitsu",
        "source_ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "eventn_ctx": {
            "event_id": _uuid(rng),
            "user": {
                "anonymous_id": anonymous_id,
                "hashed_anonymous_id": _hex(rng, 32),
                "id": f"user-{rng.randrange(100000)}",
                "email": f"person{rng.randrange(100000)}@example.com",
            },
            "user_agent": agent,
            "utc_time": utc,
            "local_tz_offset": rng.choice([-120, 0, 60, 180, 330]),
            "referer": rng.choice(["", "https://www.google.com/", "https://news.ycombinator.com/"]),
            "url": f"https://www.example.com{page}?utm_source=newsletter&utm_campaign=spring",
            "page_title": "Example — the product that does things",
            "doc_path": page,
            "doc_host": "www.example.com",
            "doc_search": "?utm_source=newsletter&utm_campaign=spring",
            "screen_resolution": rng.choice(["1920x1080", "2560x1440", "390x844"]),
            "vp_size": rng.choice(["1903x947", "1440x789", "390x664"]),
            "user_language": rng.choice(["en-US", "de-DE", "fr-FR"]),
            "doc_encoding": "UTF-8",
            "utm": {"source": "newsletter", "campaign": "spring", "medium": "email"},
            "click_id": {"gclid": _hex(rng, 24)} if rng.random() < 0.3 else {},
            "parsed_ua": {
                "ua_family": rng.choice(["Chrome", "Safari", "Mobile Safari"]),
                "ua_version": f"{rng.randrange(100, 125)}.0.{rng.randrange(9999)}",
                "os_family": rng.choice(["Windows", "Mac OS X", "iOS"]),
                "os_version": f"{rng.randrange(10, 18)}.{rng.randrange(10)}",
                "device_family": rng.choice(["Other", "iPhone", "Mac"]),
                "bot": False,
            },
            "location": {
                "country": rng.choice(["US", "DE", "FR", "IN"]),
                "city": rng.choice(["Berlin", "Austin", "Lyon", "Pune"]),
                "latitude": round(rng.uniform(-60, 60), 4),
                "longitude": round(rng.uniform(-120, 120), 4),
                "zip": f"{rng.randrange(10000, 99999)}",
            },
        },
        "properties": {
            "plan": rng.choice(["free", "team", "enterprise"]),
            "experiment": {"name": "new-onboarding", "variant": rng.choice(["a", "b"])},
            "items": rng.randrange(0, 12),
            "value": round(rng.uniform(0, 500), 2),
        },
        "_timestamp": utc,
    }


def token_ids(count: int) -> list[str]:
    """Stable API keys for `count` ids."""
    return [f"js.bench{n:05d}.{'k' * 12}" for n in range(count)]


def token_bodies(count: int, ids: list[str], seed: int = SEED) -> list[tuple[str, bytes]]:
    """`count` raw single-event bodies, (token, body), tokens taken in turn from `ids`."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        token = ids[n % len(ids)]
        out.append((token, orjson.dumps(make_event(rng, token))))
    return out


def ndjson_lines(count: int, ids: list[str], seed: int = SEED) -> list[bytes]:
    """`count` NDJSON entries of the token namespace, ids taken in turn from `ids`."""
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        token = ids[n % len(ids)]
        entry = {"namespace": "token", "id": token, "original": make_event(rng, token)}
        lines.append(orjson.dumps(entry))
    return lines
