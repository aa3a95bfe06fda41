"""The viewer page as served: its files, headers, redirects, and what its source may
never do (HTML from data, inline scripts, absolute URLs). The browser tests are in
test_viewer_browser.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from daemon.web.viewer import CSP, add_viewer_routes, load_assets

ASSETS = load_assets()
SCRIPTS = {name: a.body.decode() for name, a in ASSETS.items() if name.endswith(".js")}
INDEX = ASSETS["index.html"].body.decode()


async def client_of(aiohttp_client: Any, enabled: bool = True) -> Any:
    app = web.Application()
    add_viewer_routes(app, enabled)
    return await aiohttp_client(app)


async def test_page_and_modules_are_served_with_strict_headers(aiohttp_client: Any) -> None:
    client = await client_of(aiohttp_client)
    for path, kind in [
        ("/ui/", "text/html"),
        ("/ui/index.html", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Type"].startswith(kind)
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP


async def test_redirects_are_relative_so_a_path_prefix_survives(aiohttp_client: Any) -> None:
    client = await client_of(aiohttp_client)
    for path in ("/ui", "/"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == "ui/"  # /p/ui -> /p/ui/, /p/ -> /p/ui/


async def test_unknown_files_are_404_and_etags_revalidate(aiohttp_client: Any) -> None:
    client = await client_of(aiohttp_client)
    for path in ("/ui/nope.js", "/ui/..%2Fapp.py", "/ui/__init__.py"):
        assert (await client.get(path)).status == 404, path
    first = await client.get("/ui/app.js")
    again = await client.get("/ui/app.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304


async def test_the_viewer_can_be_turned_off(aiohttp_client: Any) -> None:
    client = await client_of(aiohttp_client, enabled=False)
    assert (await client.get("/ui/")).status == 404
    assert (await client.get("/", allow_redirects=False)).status == 404


def test_every_file_the_page_names_is_package_data() -> None:
    named = set(re.findall(r'(?:src|href)="\./([^"]+)"', INDEX))
    for source in SCRIPTS.values():
        named |= set(re.findall(r'from "\./([^"]+)"', source))
    assert named and named <= set(ASSETS), named - set(ASSETS)
    assert {"index.html", "app.js", "style.css"} <= set(ASSETS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_never_turn_data_into_html(name: str) -> None:
    source = re.sub(r"/\*.*?\*/|^\s*//.*$", "", SCRIPTS[name], flags=re.S | re.M)  # code only
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("on',
        "EventSource",
    ):
        assert sink not in source, f"{name} uses {sink}"
    # Only relative URLs: the page may be served under a path prefix.
    assert not re.search(r"""["'`]/(api|ui)/""", source), f"{name} has an absolute URL"
    assert not re.search(r"""fetch\(\s*["'`]/""", source)


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    assert re.findall(r"<script\b[^>]*>", INDEX) == ['<script type="module" src="./app.js">']
    assert "<style" not in INDEX and " style=" not in INDEX
    assert not re.search(r"\son[a-z]+=", INDEX)
    assert not re.search(r"""(?:src|href)="/""", INDEX)


@pytest.mark.e2e
def test_daemon_serves_the_viewer_unless_turned_off(start_daemon: Any) -> None:
    on = start_daemon()
    page = on.api("/ui/", token=None)
    assert page.status == 200 and b'src="./app.js"' in page.raw
    assert on.api("/ui", token=None).headers["Location"] == "ui/"
    off = start_daemon({"sidecar": {"api": {"viewer": False}}})
    assert off.api("/ui/", token=None).status == 404
    assert off.api("/healthz", token=None).status == 200
