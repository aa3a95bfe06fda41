"""The viewer page at /ui/: static files of this package, served with strict headers.

The page is plain HTML, CSS and JavaScript modules (no build step, no CDN): it reaches
the query API by relative URLs only, so it works behind a proxy that serves it under a
path prefix (`kubectl port-forward`, an ingress). Its headers forbid inline scripts,
framing and referrers; event content is rendered as text by the page itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from daemon.core.wire import VIEWER_PATH

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
INDEX = "index.html"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",  # revalidated (ETag): a new daemon version shows at once
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the page, read once at start-up."""

    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """The page's files by name, from the package data beside this module."""
    assets = {}
    for item in resources.files(__package__ or __name__).iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in CONTENT_TYPES:
            body = item.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            assets[item.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return assets


async def _to_viewer(_: web.Request) -> web.Response:
    # Relative, so that it holds behind a proxy that strips a path prefix: from /p/ and
    # from /p/ui alike, "ui/" leads to /p/ui/.
    location = VIEWER_PATH.strip("/") + "/"
    return web.Response(status=302, headers={"Location": location, **SECURITY_HEADERS})


def add_viewer_routes(app: web.Application, enabled: bool = True) -> None:
    """Serve the viewer at /ui/ (`/ui` and `/` redirect to it) when enabled."""
    if not enabled:
        return
    assets = load_assets()

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info.get("name") or INDEX)
        if found is None:
            raise web.HTTPNotFound(text="no such file of the viewer")
        headers = {**SECURITY_HEADERS, "ETag": found.etag}
        if request.headers.get("If-None-Match") == found.etag:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = found.content_type
        return web.Response(body=found.body, headers=headers)

    app.router.add_get(VIEWER_PATH, asset)
    app.router.add_get(VIEWER_PATH + "{name}", asset)
    app.router.add_get(VIEWER_PATH.rstrip("/"), _to_viewer)
    app.router.add_get("/", _to_viewer)
