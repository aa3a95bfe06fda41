"""The viewer in a real headless browser (Debian's chromium through chromedriver and
Selenium) against live daemons: token prompt, id list, an id's events, filters, live
tail (and its reconnect), reset, the XSS payloads, the states a person meets (empty,
loading, Redis down, no match), narrow and dark screens, and the page behind a real
reverse proxy (nginx) under a path prefix.

Screenshots of every state go to $EVENTS_CACHE_ARTIFACTS (default: a temporary folder,
printed at the start of the session).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.daemon import ADMIN_TOKEN
from tests.support.scrape import metric_sum, settle
from tests.support.servers import free_port, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "the browser tests need Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver; .ci/run installs them)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

XSS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>')
LAPTOP = (1366, 820)
PHONE = (390, 844)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: $EVENTS_CACHE_ARTIFACTS, else a temporary folder."""
    given = os.environ.get("EVENTS_CACHE_ARTIFACTS")
    path = Path(given) if given else tmp_path_factory.mktemp("viewer-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nviewer screenshots: {path}")
    return path


@pytest.fixture(scope="session")
def driver() -> Iterator[webdriver.Chrome]:
    """One headless chromium for the session, started without any network of its own."""
    profile = tempfile.mkdtemp(prefix="viewer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """The viewer in the browser, with the reads and waits the tests need."""

    def __init__(self, driver: webdriver.Chrome, artifacts: Path) -> None:
        self.d = driver
        self.artifacts = artifacts
        self.base = ""

    # -- navigation and waits ------------------------------------------------------------
    def open(self, base: str, fragment: str = "") -> None:
        self.base = base
        self.d.get(base + "ui/" + fragment)
        self.wait(lambda: self.js("return document.readyState") == "complete")

    def wait(self, predicate: Any, timeout: float = 10, message: str = "") -> Any:
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda _: predicate())
        except TimeoutException:
            self.shot("failure")
            raise AssertionError(
                f"not within {timeout}s: {message}\n{self.d.current_url}"
            ) from None

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    def el(self, css: str) -> WebElement:
        return self.d.find_element(By.CSS_SELECTOR, css)

    def visible(self, css: str) -> bool:
        found = self.d.find_elements(By.CSS_SELECTOR, css)
        return bool(found) and found[0].is_displayed()

    def text(self, css: str) -> str:
        return str(self.js("return document.querySelector(arguments[0])?.textContent ?? ''", css))

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.d.save_screenshot(str(path))
        return path

    # -- the parts -------------------------------------------------------------------------
    def login(self, token: str = ADMIN_TOKEN) -> None:
        self.wait(lambda: self.visible("#token-input"), message="token prompt")
        field = self.el("#token-input")
        field.clear()
        field.send_keys(token + Keys.ENTER)

    def ids(self) -> list[dict[str, Any]]:
        return list(
            self.js("""return [...document.querySelectorAll('#ids .id-btn')].map(b => ({
                id: b.dataset.id,
                total: Number(b.querySelector('[data-total]').dataset.total),
                errors: Number(b.querySelector('[data-errors]')?.dataset.errors ?? 0),
                failing: b.parentElement.classList.contains('failing'),
                error: b.querySelector('.id-error')?.textContent
                    .replace('newest error: ', '') ?? null,
                shown: b.textContent}))""")
        )

    def wait_ids(self, expected: list[str], timeout: float = 10) -> list[dict[str, Any]]:
        self.wait(
            lambda: [i["id"] for i in self.ids()] == expected,
            timeout,
            f"ids {expected}, shown {[i['id'] for i in self.ids()]}",
        )
        return self.ids()

    def namespace(self, namespace: str) -> None:
        # Right after the token prompt the switch may not be shown yet: clicking it then
        # fails as "not interactable", so wait until it is.
        button = f'.ns button[data-ns="{namespace}"]'
        self.wait(lambda: self.visible(button), message=f"the {namespace} switch shown")
        self.el(button).click()

    def select(self, id_: str) -> None:
        self.wait(lambda: self.js(_ID_BUTTON, id_) is not None, message=f"id {id_!r} listed")
        self.js(_ID_BUTTON + ".click()", id_)
        self.wait_loaded()

    def wait_loaded(self) -> None:
        self.wait(
            lambda: self.js("return !document.querySelector('#events[aria-busy]')"),
            message="events loaded",
        )

    def events(self) -> list[dict[str, str]]:
        return list(
            self.js("""return [...document.querySelectorAll('#events > li')].map(li => ({
                uid: li.dataset.uid, status: li.dataset.status,
                time: li.querySelector('time').getAttribute('datetime'),
                summary: li.querySelector('.ev-summary').textContent}))""")
        )

    def uids(self) -> list[str]:
        return [e["uid"] for e in self.events()]

    def set_filter(self, element: str, value: str) -> None:
        """Set a filter input or select as a person would, firing its events."""
        self.js(
            """const el = document.getElementById(arguments[0]); el.value = arguments[1];
               el.dispatchEvent(new Event('input', {bubbles: true}));
               el.dispatchEvent(new Event('change', {bubbles: true}));""",
            element,
            value,
        )

    def wait_uids(self, expected: list[str], timeout: float = 10) -> None:
        self.wait(lambda: self.uids() == expected, timeout, f"uids {expected}, shown {self.uids()}")

    def expand_all(self) -> None:
        self.js(
            "document.querySelectorAll('.event-btn[aria-expanded=false]').forEach(b => b.click())"
        )

    def console(self) -> list[dict[str, Any]]:
        return list(self.d.get_log("browser"))

    def emulate(self, dark: bool = False, size: tuple[int, int] = LAPTOP) -> None:
        scheme = "dark" if dark else "light"
        self.d.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        self.d.set_window_size(*size)


_ID_BUTTON = (
    "return [...document.querySelectorAll('#ids .id-btn')].find(b => b.dataset.id === arguments[0])"
)


@pytest.fixture
def page(driver: webdriver.Chrome, artifacts: Path) -> Iterator[Page]:
    """The browser, back to a laptop screen in light mode, on a blank page afterwards."""
    p = Page(driver, artifacts)
    p.emulate()
    driver.get_log("browser")  # drop what earlier tests left
    yield p
    with_alert = False
    try:
        driver.switch_to.alert.dismiss()
        with_alert = True
    except NoAlertPresentException:
        pass
    driver.execute_cdp_cmd("Network.disable", {})
    driver.get("about:blank")
    assert not with_alert, "a dialog was open"


def base_url(daemon: Any) -> str:
    return f"http://127.0.0.1:{daemon.api_port}/"


# -- data ---------------------------------------------------------------------------------


def seed(daemon: Any) -> dict[str, Any]:
    """Known events of both namespaces: a mixed API key (old and recent, every status),
    two more keys, and destinations with results, errors and skips."""
    now = datetime.now(UTC)
    lines: list[dict[str, Any]] = []
    for n in range(2):  # three hours ago
        when = iso(now - timedelta(hours=3, minutes=2 - n))
        lines.append(_token("js.mixed", {"event_type": "old_view", "n": n}, when))
    for n, kind in enumerate(["pageview", "signup", "checkout"]):
        when = iso(now - timedelta(seconds=30 - n))
        lines.append(
            _token("js.mixed", {"event_type": kind, "url": f"https://shop.example/{n}"}, when)
        )
    lines.append(
        _token(
            "js.mixed",
            {"event_type": "bot_view"},
            iso(now - timedelta(seconds=20)),
            skip="bot filtered",
        )
    )
    lines.append(
        {
            "namespace": "token",
            "id": "js.mixed",
            "malformed": '{"event_type":"pageview","url":"https://exa',
            "error": "invalid JSON: unexpected end of input",
            "timestamp": iso(now - timedelta(seconds=10)),
        }
    )
    for key, count in (("js.quiet", 3), ("srv.backend", 4)):
        for n in range(count):
            lines.append(
                _token(key, {"event_type": "track", "n": n}, iso(now - timedelta(seconds=60 - n)))
            )
    destination: list[tuple[str, dict[str, Any]]] = [
        (
            "pg_main",
            {
                "success": {
                    "destination_id": "pg_main",
                    "table": "events",
                    "record": [{"field": "event_type", "type": "text", "value": "pageview"}],
                }
            },
        ),
        ("pg_main", {"error": 'pq: column "revenue" is of type numeric'}),
        ("pg_main", {"skip": "filtered by destination rule"}),
        ("webhook_crm", {"error": "POST https://crm.example/hook: 502 Bad Gateway"}),
    ]
    for n, (dest, outcome) in enumerate(destination):
        lines.append(
            {
                "namespace": "destination",
                "id": dest,
                "original": {"event_type": "pageview", "n": n},
                "token_id": "js.mixed",
                "timestamp": iso(now - timedelta(seconds=5 - n)),
                **outcome,
            }
        )
    assert daemon.post_ndjson(lines).json["accepted"] == len(lines)
    settle(daemon)
    return {"now": now}


def _token(key: str, original: dict[str, Any], when: str, **extra: Any) -> dict[str, Any]:
    return {"namespace": "token", "id": key, "original": original, "timestamp": when, **extra}


def api_ids(daemon: Any, namespace: str) -> list[dict[str, Any]]:
    reply = daemon.api("/api/v1/events/ids", {"namespace": namespace})
    assert reply.status == 200
    return list(reply.json["ids"])


def api_uids(daemon: Any, **params: Any) -> list[str]:
    return [e["uid"] for e in daemon.query(**params)["events"]]


def status_of(namespace: str, event: dict[str, Any]) -> str:
    for field in ("malformed", "error", "skip"):
        if event.get(field):
            return field
    return "success" if event.get("success") or namespace == "token" else "pending"


# -- the token ------------------------------------------------------------------------


def test_token_prompt_wrong_token_and_the_token_stays_out_of_urls(
    start_daemon: Any, page: Page
) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.wait(lambda: page.visible("#token-input"), message="prompt")
    assert not page.visible("#main")
    page.shot("01-token-prompt")

    page.login("not-the-token")
    page.wait(lambda: "Wrong token" in page.text("#login-error"), message="wrong token said")
    assert "401" in page.text("#login-error")
    assert page.js("return sessionStorage.length") == 0
    page.shot("02-wrong-token")

    page.login()
    page.wait_ids([i["id"] for i in api_ids(daemon, "token")])
    assert page.js("return sessionStorage.getItem('events-cache.admin-token')") == ADMIN_TOKEN
    page.js("location.reload()")
    page.wait(lambda: len(page.ids()) == 3, message="list after reload, no prompt")
    assert not page.visible("#token-input")

    page.select("js.mixed")
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/api/v1/events/cache" in u for u in urls)
    assert all(ADMIN_TOKEN not in u for u in [*urls, page.d.current_url])

    page.el("#signout").click()
    page.wait(lambda: page.visible("#token-input"), message="prompt after forgetting")
    assert page.js("return sessionStorage.length") == 0


# -- the id list ------------------------------------------------------------------------


def test_id_list_shows_what_the_summary_says(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    for namespace in ("token", "destination"):
        if namespace == "destination":
            page.namespace("destination")
        summary = api_ids(daemon, namespace)
        shown = page.wait_ids([s["id"] for s in summary])
        for s, row in zip(summary, shown, strict=True):
            assert (row["total"], row["errors"]) == (s["total_events"], s["error_events"])
            assert row["failing"] == (s["error_events"] > 0)
            assert row["error"] == s["last_error"]
        if namespace == "token":  # js.mixed fails, the others do not
            assert [r["failing"] for r in shown].count(True) == 1
        page.shot(f"03-ids-{namespace}")

    page.set_filter("id-search", "WEBHOOK")  # any case, as the API's q
    page.wait_ids(["webhook_crm"])
    page.set_filter("id-search", "no-such-id")
    page.wait(lambda: "No id matches" in page.text("#ids-state"), message="no match")
    page.shot("04-ids-no-match")


def test_id_list_pages_through_the_cursor(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    lines = [{"namespace": "token", "id": f"key-{n:03d}", "original": {"n": n}} for n in range(57)]
    daemon.post_ndjson(lines)
    settle(daemon)
    page.open(base_url(daemon))
    page.login()
    page.wait(lambda: len(page.ids()) == 50, message="first page of 50")
    assert page.visible("#ids-more")
    page.el("#ids-more").click()
    page.wait(lambda: len(page.ids()) == 57, message="second page")
    assert sorted(str(i["id"]) for i in page.ids()) == sorted(str(line["id"]) for line in lines)
    page.wait(lambda: not page.visible("#ids-more"), message="no third page")


# -- one id's events --------------------------------------------------------------------


def test_an_ids_events_newest_first_with_statuses_and_details(
    start_daemon: Any, page: Page
) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    for namespace, id_ in (("token", "js.mixed"), ("destination", "pg_main")):
        if namespace == "destination":
            page.namespace("destination")
        page.select(id_)
        answer = daemon.query(namespace=namespace, ids=id_)["events"]
        page.wait_uids([e["uid"] for e in answer])
        shown = page.events()
        assert [e["status"] for e in shown] == [status_of(namespace, e) for e in answer]
        times = [e["time"] for e in shown]
        assert times == [e["timestamp"] for e in answer]
        assert times == sorted(times, reverse=True)  # newest first
    statuses = {e["status"] for e in page.events()}
    assert statuses == {"success", "error", "skip"}

    # A row expands to the original and the result side by side, each with a copy button.
    page.js("document.querySelector('#events > li[data-status=success] .event-btn').click()")
    panels = page.d.find_elements(By.CSS_SELECTOR, ".details .panel")
    assert [p.find_element(By.TAG_NAME, "h3").text.lower() for p in panels] == [
        "original",
        "result",
        "journey",
    ]
    panels = panels[:2]
    page.wait(lambda: "no event id" in page.text(".details .panel-journey"), message="no id said")
    left, right = (p.rect for p in panels)
    assert abs(left["y"] - right["y"]) < 2 and right["x"] > left["x"] + left["width"] - 1
    original = panels[0].find_element(By.TAG_NAME, "pre").text
    assert json.loads(original)["event_type"] == "pageview" and "\n  " in original  # pretty
    assert '"table": "events"' in panels[1].find_element(By.TAG_NAME, "pre").text
    assert len(page.d.find_elements(By.CSS_SELECTOR, ".details .copy")) == 2
    page.shot("05-event-expanded")

    page.namespace("token")
    page.select("js.mixed")
    page.js("document.querySelector('#events > li[data-status=malformed] .event-btn').click()")
    heads = [h.text.lower() for h in page.d.find_elements(By.CSS_SELECTOR, ".details h3")]
    assert heads == ["malformed body", "error"]
    assert "unexpected end of input" in page.text(".details .panel-error pre")


def test_each_filter_narrows_the_list_as_the_api_does(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.select("js.mixed")
    every = daemon.query(namespace="token", ids="js.mixed")["events"]
    page.wait_uids([e["uid"] for e in every])
    assert len(every) == 7

    def only(status: str) -> list[str]:
        return [e["uid"] for e in every if status_of("token", e) == status]

    cases: list[tuple[str, str, list[str]]] = [
        ("f-status", "error", api_uids(daemon, namespace="token", ids="js.mixed", status="error")),
        ("f-status", "malformed", only("malformed")),
        ("f-status", "success", only("success")),
        ("f-status", "skip", only("skip")),
    ]
    for element, value, expected in cases:
        page.set_filter(element, value)
        page.wait_uids(expected)
        assert 0 < len(expected) < len(every), (value, expected)
    page.set_filter("f-status", "")
    page.wait_uids([e["uid"] for e in every])

    page.set_filter("f-time", "3600")  # last hour: not the two of three hours ago
    recent = [e["uid"] for e in every if "old_view" not in json.dumps(e)]
    page.wait_uids(recent)
    assert len(recent) == 5
    page.set_filter("f-time", "custom")
    assert page.visible("#f-since")
    old = [e for e in every if "old_view" in json.dumps(e)]
    since = datetime.fromisoformat(old[-1]["timestamp"]).astimezone()  # local time
    until = datetime.fromisoformat(old[0]["timestamp"]).astimezone()
    page.set_filter("f-since", since.strftime("%Y-%m-%dT%H:%M:%S"))
    page.set_filter("f-until", (until + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    page.wait_uids([e["uid"] for e in old])
    page.shot("06-filter-time-range")
    page.el("#f-clear").click()
    page.wait_uids([e["uid"] for e in every])

    page.set_filter("f-q", "SIGNUP")
    expected = api_uids(daemon, namespace="token", ids="js.mixed", q="SIGNUP")
    page.wait_uids(expected)
    assert len(expected) == 1
    page.shot("07-filter-text")
    page.set_filter("f-q", "nothing-like-this")
    page.wait(lambda: "No event of this id matches" in page.text("#events-state"), message="none")
    page.shot("08-events-no-match")


def test_load_older_pages_with_before(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    lines = [
        {"namespace": "token", "id": "js.busy", "original": {"event_type": f"e{n}"}}
        for n in range(120)
    ]
    daemon.post_ndjson(lines)
    settle(daemon)
    page.open(base_url(daemon), "#token/js.busy")  # the fragment names the id: a link to it
    page.login()
    page.wait_loaded()
    newest = api_uids(daemon, namespace="token", ids="js.busy", limit=100)
    page.wait_uids(newest[:50])
    page.el("#older").click()
    page.wait_uids(newest[:100])
    page.el("#older").click()
    page.wait(lambda: not page.visible("#older"), message="nothing older than size")
    assert page.uids() == newest
    assert page.events()[0]["summary"] == "e99"  # e100.. were rate limited (100 a minute)


def stored_uids(key: str, daemon: Any) -> list[str]:
    """The uids of a token's list as stored, newest first (in the daemon's own Redis)."""
    client = redis.Redis.from_url(daemon.config["meta"]["storage"]["redis"]["host"])
    try:
        return [json.loads(raw)["uid"] for raw in client.lrange(f"events_cache:token#{key}", 0, -1)]
    finally:
        client.close()


def test_a_stuffed_key_shows_pages_it_can_draw_and_huge_originals_cut(
    start_daemon: Any, page: Page
) -> None:
    """Under a small byte bound, a key stuffed with big events: each page is what the
    bound holds (Load older goes on), an event longer than the bound arrives cut and
    shows its beginning with its size, one drawn whole would be too long and is cut here;
    "Show all" shows the whole original (fetched by uid= for the cut one)."""
    bound = 131072
    daemon = start_daemon({"sidecar": {"api": {"max_response_bytes": bound}}})
    pads = [300_000, 30_000, 30_000, 30_000, 100_000]  # oldest first
    for n, pad in enumerate(pads):
        body = json.dumps({"event_type": f"big{n}", "pad": "x" * pad})
        assert daemon.post_token("js.stuffed", body).status == 202
    settle(daemon)
    first = daemon.api("/api/v1/events/cache", {"namespace": "token", "ids": "js.stuffed"})
    assert first.headers.get("X-Events-Cache-Truncated") == "true"
    on_first = [e["uid"] for e in first.json["events"]]
    assert len(on_first) == 2  # 100 KB and 30 KB fit; the next 30 KB would not
    page.open(base_url(daemon), "#token/js.stuffed")
    page.login()
    page.wait_loaded()
    page.wait_uids(on_first)
    assert "Load older" in page.text("#older") and page.visible("#older")
    assert "max_response_bytes" in page.text("#events-counts")
    for _ in range(4):  # pages of 2, 2 and 1 events, each within the bound
        if not page.visible("#older"):
            break
        count = len(page.uids())
        page.js("document.getElementById('older').click()")
        page.wait(lambda count=count: len(page.uids()) > count, message="an older page")
    page.wait(lambda: not page.visible("#older"), message="every page loaded")
    newest = stored_uids("js.stuffed", daemon)
    assert page.uids() == newest and newest[:2] == on_first
    page.expand_all()
    page.wait(lambda: len(page.d.find_elements(By.CSS_SELECTOR, ".cut-note")) == 2, message="cut")
    notes = page.js(
        """return [...document.querySelectorAll('#events > li')].map(li => {
            const note = li.querySelector('.panel-original .cut-note');
            return note && {uid: li.dataset.uid, bytes: Number(note.dataset.bytes),
                text: note.textContent,
                shown: li.querySelector('.panel-original pre').textContent.length};
        })"""
    )
    by_uid = {n["uid"]: n for n in notes if n}
    biggest, drawn_cut = by_uid[newest[4]], by_uid[newest[0]]
    assert biggest["bytes"] > 300_000 and biggest["shown"] <= 8192
    assert "Showing the first 8.0 KiB of 293." in biggest["text"], biggest["text"]
    assert drawn_cut["bytes"] > 100_000 and drawn_cut["shown"] == 65536
    page.shot("20-events-cut")
    for uid, pad in ((newest[4], 300_000), (newest[0], 100_000)):
        page.js(
            "document.querySelector(`#events > li[data-uid='${arguments[0]}'] .show-all`).click()",
            uid,
        )
        shown = f"#events > li[data-uid='{uid}'] .panel-original pre"
        page.wait(
            lambda shown=shown, pad=pad: len(page.text(shown)) > pad,
            message=f"the whole original of {uid}",
        )
        whole = json.loads(page.text(shown))
        assert whole["pad"] == "x" * pad
    assert len(page.d.find_elements(By.CSS_SELECTOR, ".cut-note")) == 0
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(f"uid={newest[4]}" in u for u in urls)
    assert not any(f"uid={newest[0]}" in u for u in urls)  # it was whole already
    assert not [e for e in page.console() if e["level"] == "SEVERE"]


# -- live tail --------------------------------------------------------------------------


def _live_on(page: Page) -> None:
    page.el("#live").click()
    page.wait(lambda: "Live" in page.text("#tail-state"), message="live tail connected")
    time.sleep(1.1)  # sidecars look for watchers once a second (docs/api.md)


def test_live_tail_shows_new_events_within_2s_and_pauses(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.select("js.quiet")
    _live_on(page)
    latencies = []
    for n in range(3):
        before = len(page.uids())
        started = time.monotonic()
        daemon.post_token("js.quiet", json.dumps({"event_type": f"live-{n}"}))
        page.wait(
            lambda b=before: len(page.uids()) == b + 1, timeout=2, message="live event in 2 s"
        )
        latencies.append(time.monotonic() - started)
        assert page.events()[0]["summary"] == f"live-{n}"
    print(f"live tail: ingest to row in {max(latencies) * 1000:.0f} ms at most")
    page.shot("09-live-tail")

    # Paused by the button: new events wait, counted, until shown.
    page.el("#tail-pause").click()
    count = len(page.uids())
    for n in range(2):
        daemon.post_token("js.quiet", json.dumps({"event_type": f"held-{n}"}))
    page.wait(lambda: page.text("#tail-new") == "paused, 2 new", message="paused, 2 new")
    assert len(page.uids()) == count
    page.shot("10-live-tail-paused")
    page.el("#tail-show").click()
    page.wait(lambda: len(page.uids()) == count + 2, message="held events shown")
    assert [e["summary"] for e in page.events()[:2]] == ["held-1", "held-0"]

    # Paused by scrolling down: the rows stay put until the reader is back at the top.
    page.el("#tail-pause").click()  # resume
    daemon.post_ndjson(
        [
            {"namespace": "token", "id": "js.quiet", "original": {"event_type": f"fill-{n}"}}
            for n in range(40)
        ]
    )
    page.wait(lambda: len(page.uids()) == count + 42, message="a long list")
    page.js("document.getElementById('events-pane').scrollTop = 600")
    daemon.post_token("js.quiet", json.dumps({"event_type": "while-scrolled"}))
    page.wait(lambda: page.text("#tail-new") == "paused, 1 new", message="paused by scrolling")
    page.js("document.getElementById('events-pane').scrollTop = 0")
    page.wait(lambda: page.events()[0]["summary"] == "while-scrolled", message="shown at the top")


def test_live_tail_reconnects_when_the_sidecar_comes_back(
    start_daemon: Any, start_daemon_process: Any, page: Page
) -> None:
    first = start_daemon()
    seed(first)
    page.open(base_url(first))
    page.login()
    page.select("js.quiet")
    _live_on(page)
    first.stop()
    page.wait(lambda: "Reconnecting" in page.text("#tail-state"), message="reconnecting shown")
    page.shot("11-live-tail-reconnecting")

    port = first.api_port
    second = start_daemon_process(
        {"sidecar": {"api": {"listen": f"127.0.0.1:{port}"}}}, wait_ready=False
    )
    second.api_port = port
    wait_for(lambda: _answers(second), timeout=15)
    # Cached while the page was away: the catch-up after the reconnect brings it.
    second.post_token("js.quiet", json.dumps({"event_type": "during-the-blip"}))
    page.wait(
        lambda: any(e["summary"] == "during-the-blip" for e in page.events()),
        timeout=20,
        message="caught up after reconnecting",
    )
    page.wait(lambda: "Live" in page.text("#tail-state"), message="live again")
    time.sleep(1.1)
    second.post_token("js.quiet", json.dumps({"event_type": "after-the-blip"}))
    page.wait(lambda: page.events()[0]["summary"] == "after-the-blip", timeout=2, message="tail")


def test_live_tail_resumes_from_the_last_event_after_a_restart(
    start_daemon: Any, start_daemon_process: Any, page: Page
) -> None:
    """The page got an entry live; the sidecar goes away while another pod caches one;
    the reconnect sends the last uid (Last-Event-ID) and the sidecar sends what followed
    (the page's own catch-up is not used when it resumes)."""
    first, other = start_daemon(), start_daemon()
    seed(first)
    page.open(base_url(first))
    page.login()
    page.select("js.quiet")
    _live_on(page)
    time.sleep(1.1)  # every pod publishes (the switch is looked at once a second)
    other.post_token("js.quiet", json.dumps({"event_type": "before-the-blip"}))
    page.wait(lambda: page.events()[0]["summary"] == "before-the-blip", message="live entry")
    first.stop()
    page.wait(lambda: "Reconnecting" in page.text("#tail-state"), message="reconnecting shown")
    other.post_token("js.quiet", json.dumps({"event_type": "during-the-blip"}))
    settle(other)
    port = first.api_port
    second = start_daemon_process(
        {"sidecar": {"api": {"listen": f"127.0.0.1:{port}"}}}, wait_ready=False
    )
    second.api_port = port
    wait_for(lambda: _answers(second), timeout=15)
    page.wait(
        lambda: page.events()[0]["summary"] == "during-the-blip",
        timeout=20,
        message="resumed after reconnecting",
    )
    summaries = [e["summary"] for e in page.events()]
    assert summaries.count("during-the-blip") == summaries.count("before-the-blip") == 1
    pages_read = metric_sum(
        second.metrics(),
        "events_cache_http_request_duration_seconds_count",
        'route="/api/v1/events/cache"',
    )
    assert pages_read == 0, "the stream's resume brought it, not a page read"


def _answers(daemon: Any) -> bool:
    try:
        return bool(daemon.api("/readyz", token=None).status == 200)
    except OSError:
        return False


# -- security -----------------------------------------------------------------------------


def test_xss_payloads_stay_inert_text(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    original = {"event_type": XSS[0], "note": XSS[1], "x": XSS[2]}
    for payload in XSS:  # ids
        assert daemon.post_token(payload, json.dumps(original)).status == 202
    daemon.post_token(XSS[0], XSS[1], headers={"X-Events-Cache-Error": XSS[2]})  # malformed
    daemon.post_ndjson(
        [
            {"namespace": "destination", "id": XSS[2], "original": original, "error": XSS[0]},
            {"namespace": "destination", "id": XSS[2], "original": original, "skip": XSS[1]},
        ]
    )
    settle(daemon)
    page.open(base_url(daemon))
    page.login()
    shown = page.wait_ids([i["id"] for i in api_ids(daemon, "token")])
    assert {i["id"] for i in shown} == set(XSS)
    for payload in XSS:
        page.select(payload)
        page.expand_all()
        assert payload in page.js("return document.body.innerText")
    page.shot("12-xss-inert")
    page.namespace("destination")
    page.select(XSS[2])
    page.expand_all()
    text = page.js("return document.body.innerText")
    assert all(p in text for p in XSS)
    page.js("location.reload()")  # the fragment holds the id: read back as text too
    page.wait(lambda: len(page.events()) == 2, message="reloaded on the id")

    injected = page.js(
        "return document.querySelectorAll("
        "'img, svg, iframe, object, embed, script:not([src])').length"
    )
    assert injected == 0
    assert page.js("return document.querySelectorAll('script').length") == 1
    with pytest.raises(NoAlertPresentException):
        page.d.switch_to.alert.text  # noqa: B018
    problems = [
        e
        for e in page.console()
        if "Content Security Policy" in e["message"] or "Uncaught" in e["message"]
    ]
    assert problems == []


# -- reset --------------------------------------------------------------------------------


def test_reset_removes_an_id_after_confirmation(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.select("srv.backend")
    page.el("#reset").click()
    page.wait(lambda: page.visible("#confirm"), message="confirmation")
    assert "srv.backend" in page.text("#confirm-text")
    assert page.js("return document.activeElement.id") == "confirm-cancel"  # safe default
    page.shot("13-reset-confirm")
    page.el("#confirm-cancel").click()
    assert not page.visible("#confirm")
    assert "srv.backend" in [i["id"] for i in api_ids(daemon, "token")]

    page.el("#reset").click()
    page.el("#confirm-ok").click()
    page.wait(lambda: "was reset" in page.text("#ids-state"), message="reset said")
    remaining = [i["id"] for i in api_ids(daemon, "token")]
    assert "srv.backend" not in remaining
    page.wait_ids(remaining)
    assert daemon.query(namespace="token", ids="srv.backend")["total_events"] == 0
    page.shot("14-reset-done")


# -- states -------------------------------------------------------------------------------


def test_empty_cache_shows_how_to_send_a_first_event(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    page.open(base_url(daemon))
    page.login()
    page.wait(lambda: "No events" in page.text("#ids-state"), message="empty state")
    assert "curl --unix-socket" in page.text("#ids-state .command")
    page.shot("15-empty-cache")
    daemon.post_token("my-api-key", '{"event_type":"pageview"}')
    page.wait_ids(["my-api-key"], timeout=10)  # the empty page looks again by itself


def test_redis_down_is_shown_as_such(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon(url=f"redis://127.0.0.1:{free_port()}/0")
    page.open(base_url(daemon))
    page.login()
    page.wait(lambda: "Redis is unavailable (503)" in page.text("#ids-state"), message="503")
    assert page.visible("#ids-state button")  # retry
    page.shot("16-redis-down")


def test_loading_state_is_visible_on_a_slow_network(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.wait(lambda: len(page.ids()) == 3, message="ids")
    page.d.execute_cdp_cmd("Network.enable", {})
    page.d.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.namespace("destination")
    page.wait(lambda: "Loading ids" in page.text("#ids-state"), message="loading shown")
    page.shot("17-loading")
    page.d.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.wait(lambda: len(page.ids()) == 2, message="then the ids")


# -- screens ------------------------------------------------------------------------------


def _contrast(page: Page) -> float:
    """The lowest contrast ratio of status badge text on its background (WCAG)."""
    return float(
        page.js("""
        const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => {
            v = v / 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
          return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        let lowest = 21;
        for (const b of document.querySelectorAll('.badge, .ev-summary, .id-error')) {
          const s = getComputedStyle(b);
          let bg = s.backgroundColor, el = b;
          while (/rgba\\(.*, 0\\)|transparent/.test(bg) && el.parentElement) {
            el = el.parentElement; bg = getComputedStyle(el).backgroundColor; }
          const [l1, l2] = [lum(s.color), lum(bg)].sort((x, y) => y - x);
          lowest = Math.min(lowest, (l1 + 0.05) / (l2 + 0.05));
        }
        return lowest;""")
    )


def test_light_dark_and_narrow_screens_are_readable(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.namespace("destination")
    page.select("pg_main")
    page.js("document.querySelector('#events > li[data-status=success] .event-btn').click()")
    ratios = {"light": _contrast(page)}
    page.emulate(dark=True)
    page.wait(lambda: page.js("return matchMedia('(prefers-color-scheme: dark)').matches"))
    ratios["dark"] = _contrast(page)
    page.shot("18-dark")
    print(f"lowest status text contrast: {ratios}")
    assert min(ratios.values()) >= 4.5, ratios  # WCAG AA for normal text

    for dark in (False, True):
        page.emulate(dark=dark, size=PHONE)
        page.wait(lambda: page.visible("#events-view"))
        assert not page.visible("#ids-pane")  # one pane at a time
        overflow = page.js("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, overflow
        page.shot(f"19-narrow-events-{'dark' if dark else 'light'}")
    page.el("#back").click()
    page.wait(lambda: page.visible("#ids-pane") and not page.visible("#events-view"))
    assert page.js("return document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.shot("20-narrow-ids")


def test_keyboard_reaches_ids_and_events(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.wait(lambda: len(page.ids()) == 3)
    page.d.switch_to.active_element.send_keys("/")
    assert page.js("return document.activeElement.id") == "id-search"

    def tab_to(css: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.d.switch_to.active_element.send_keys(Keys.TAB)
            if page.js("return document.activeElement.matches(arguments[0])", css):
                return
        raise AssertionError(f"Tab never reached {css}")

    tab_to(".id-btn")
    page.d.switch_to.active_element.send_keys(Keys.ENTER)
    page.wait(lambda: page.visible("#events-view"))
    page.wait_loaded()
    tab_to(".event-btn")
    page.d.switch_to.active_element.send_keys(Keys.ENTER)
    assert page.js("return document.activeElement.getAttribute('aria-expanded')") == "true"
    outline = page.js("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.shot("21-keyboard-focus")


# -- behind a reverse proxy, under a path prefix ------------------------------------------

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
{user}
events {{ worker_connections 64; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
{extra}
    # As ingress-nginx does: HTTP/1.1 upstream, response buffering on (the stream
    # turns it off itself with X-Accel-Buffering: no).
    location /some/prefix/ {{
      proxy_pass http://127.0.0.1:{upstream}/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 60s;
    }}
  }}
}}
"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Any]:
    """nginx(upstream_port, extra="") -> the proxy's base URL under /some/prefix/; `extra`:
    more of its server block (locations answered by nginx itself)."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    processes: list[subprocess.Popen[bytes]] = []

    def start(upstream: int, extra: str = "") -> str:
        directory = tmp_path / "nginx"
        directory.mkdir()
        port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(
            dir=directory, port=port, upstream=upstream, user=user, extra=extra
        )
        (directory / "nginx.conf").write_text(conf)
        process = subprocess.Popen(
            [
                binary,
                "-p",
                str(directory),
                "-c",
                str(directory / "nginx.conf"),
                "-e",
                str(directory / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)

        def up() -> bool:
            assert process.poll() is None, (directory / "error.log").read_text()
            import socket

            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(up, timeout=10)
        return f"http://127.0.0.1:{port}/some/prefix/"

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def test_the_page_works_under_a_path_prefix_behind_nginx(
    start_daemon: Any, page: Page, nginx: Any
) -> None:
    daemon = start_daemon()
    seed(daemon)
    base = nginx(daemon.api_port)
    page.d.get(base[:-1] + "/ui")  # the redirect stays under the prefix
    page.wait(lambda: page.d.current_url == base + "ui/", message=page.d.current_url)
    page.login()
    page.wait_ids([i["id"] for i in api_ids(daemon, "token")])
    page.select("js.quiet")
    page.wait_uids(api_uids(daemon, namespace="token", ids="js.quiet"))
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    api_calls = [u for u in urls if "/api/v1/" in u]
    assert api_calls and all(u.startswith(base + "api/v1/") for u in api_calls)

    _live_on(page)
    started = time.monotonic()
    daemon.post_token("js.quiet", json.dumps({"event_type": "through-nginx"}))
    page.wait(lambda: page.events()[0]["summary"] == "through-nginx", timeout=2, message="tail")
    print(f"live tail through nginx: {(time.monotonic() - started) * 1000:.0f} ms")
    page.shot("22-behind-nginx-prefix")

    page.el("#reset").click()
    page.el("#confirm-ok").click()
    page.wait(lambda: "was reset" in page.text("#ids-state"), message="reset through the proxy")
    assert "js.quiet" not in [i["id"] for i in api_ids(daemon, "token")]
    assert urllib.parse.urlsplit(page.d.current_url).path == "/some/prefix/ui/"


# -- the README's screenshots -------------------------------------------------------------


def realistic(now: datetime) -> list[dict[str, Any]]:
    """An hour of a small shop's traffic: keys of a site, an app and a server, and three
    destinations, one of them failing; the site's events (each with its event id) go to
    all three, so each has a journey."""
    import random

    rng = random.Random(10)
    kinds = ["pageview", "click", "signup", "add_to_cart", "purchase", "identify"]
    lines: list[dict[str, Any]] = []
    sent: list[tuple[str, str, dict[str, Any]]] = []  # the site's events, to the destinations
    for key in ("js.8f2c1d9a", "js.shop-frontend", "srv.billing-api", "js.landing"):
        for n in range(rng.randint(12, 30)):
            when = iso(now - timedelta(seconds=rng.randint(5, 3600)))
            event_id = f"{rng.getrandbits(128):032x}"
            original: dict[str, Any] = {
                "event_type": rng.choice(kinds),
                "eventn_ctx": {
                    "event_id": event_id,
                    "url": f"https://shop.example/p/{n}",
                    "referer": "https://search.example/",
                },
                "user": {"anonymous_id": f"a{rng.randint(0, 99999):05d}", "id": f"u{n}"},
                "revenue": "42.50",
                "utc_time": when,
            }
            skip = {"skip": "bot filtered (user agent)"} if rng.random() < 0.08 else {}
            lines.append(_token(key, original, when, **skip))
            if key == "js.8f2c1d9a" and not skip:
                sent.append((when, event_id, original))
        if key in ("js.shop-frontend", "srv.billing-api"):
            lines.append(
                {
                    "namespace": "token",
                    "id": key,
                    "malformed": '{"event_type":"purchase","order":{"total":42.5,"items":[',
                    "error": "invalid JSON: unexpected end of input at line 1 column 55",
                    "timestamp": iso(now - timedelta(seconds=rng.randint(5, 900))),
                }
            )
    columns = ["revenue", "price", "discount"]
    for when, event_id, original in sent:
        for dest in ("pg_main", "clickhouse_events", "webhook_crm"):
            roll = rng.random()
            if dest == "webhook_crm" and roll < 0.4:
                port = rng.choice([8443, 9443])
                outcome: dict[str, Any] = {
                    "error": f"POST https://crm.example:{port}/hook: 502 Bad Gateway"
                }
            elif dest == "pg_main" and roll < 0.3:
                column = rng.choice(columns)
                outcome = {"error": f'pq: column "{column}" is of type numeric, not text'}
            elif roll < 0.08:
                outcome = {"skip": "filtered by destination rule"}
            elif dest == "webhook_crm":
                outcome = {
                    "success": {
                        "destination_id": dest,
                        "url": "https://crm.example/hook",
                        "method": "POST",
                        "headers": {"Content-Type": "application/json"},
                        "body": json.dumps(original),
                    }
                }
            else:
                flat = {"event_type": original["event_type"], "revenue": original["revenue"]}
                flat["eventn_ctx_event_id"] = event_id
                record = [{"field": k, "type": "text", "value": v} for k, v in flat.items()]
                outcome = {"success": {"destination_id": dest, "table": "events", "record": record}}
            lines.append(
                {
                    "namespace": "destination",
                    "id": dest,
                    "original": original,
                    "token_id": "js.8f2c1d9a",
                    "timestamp": when,
                    **outcome,
                }
            )
    return sorted(lines, key=lambda line: str(line["timestamp"]))


def test_screenshots_for_the_docs(start_daemon: Any, page: Page) -> None:
    """docs/viewer.png, viewer-dark.png, viewer-overview.png and viewer-journey.png (copied
    from $EVENTS_CACHE_ARTIFACTS by hand when the page changes)."""
    daemon = start_daemon()
    lines = realistic(datetime.now(UTC))
    assert daemon.post_ndjson(lines).json["accepted"] == len(lines)
    settle(daemon)
    sent = sum(1 for line in lines if line["namespace"] == "destination")

    def counted() -> bool:  # each pod adds its counts once a second
        errors = daemon.api("/api/v1/errors", {"namespace": "destination"}).json
        activity = daemon.api("/api/v1/events/activity", {"namespace": "destination"}).json
        received = sum(sum(i["received"]) for i in activity["ids"])
        return bool(errors["signatures"]) and received == sent

    wait_for(counted, timeout=10)
    page.open(base_url(daemon))
    page.login()
    page.d.set_window_size(1366, 900)
    page.namespace("destination")
    page.wait(
        lambda: len(page.js("return [...document.querySelectorAll('#ov-events > li')]")) >= 30
    )
    page.wait(lambda: page.visible("#ov-signatures .sig") and page.visible("#ov-charts .spark"))
    page.el("#ov-signatures .sig-btn").click()
    time.sleep(2)  # the rows' arrival highlight fades
    page.shot("docs-viewer-overview")

    page.select("pg_main")
    assert {"success", "error"} <= {e["status"] for e in page.events()}
    page.set_filter("f-status", "error")
    page.wait(lambda: {e["status"] for e in page.events()} == {"error"}, message="errors only")
    page.el("#live").click()
    page.wait(lambda: "Live" in page.text("#tail-state"), message="live")
    page.js("document.querySelector('#events > li[data-status=error] .event-btn').click()")
    page.wait(lambda: len(page.d.find_elements(By.CSS_SELECTOR, ".j-step")) == 4)
    page.shot("docs-viewer")
    page.set_filter("f-status", "")

    # A purchase of the site that one destination took, one refused: opened by a link
    # to its entry (as a journey's step or the stream's row links).
    failed = {
        line["original"]["eventn_ctx"]["event_id"]
        for line in lines
        if line["namespace"] == "destination" and "error" in line
    }
    event_id = next(
        line["original"]["eventn_ctx"]["event_id"]
        for line in lines
        if line["id"] == "js.8f2c1d9a" and line["original"]["eventn_ctx"]["event_id"] in failed
    )
    entry = daemon.query(namespace="token", ids="js.8f2c1d9a", q=event_id)["events"][0]
    page.open(base_url(daemon), f"#token/js.8f2c1d9a?uid={entry['uid']}")
    page.wait(lambda: len(page.d.find_elements(By.CSS_SELECTOR, ".j-step")) == 4)
    assert "error" in {
        s.get_attribute("data-status") for s in page.d.find_elements(By.CSS_SELECTOR, ".j-step")
    }
    page.shot("docs-viewer-journey")

    page.emulate(dark=True, size=(1366, 900))
    page.select("js.shop-frontend")
    page.js("document.querySelector('#events > li[data-status=malformed] .event-btn').click()")
    page.js("document.querySelector('#events > li[data-status=success] .event-btn').click()")
    page.js("document.getElementById('events-pane').scrollTop = 0; window.scrollTo(0, 0)")
    assert {"success", "malformed"} <= {e["status"] for e in page.events()}
    page.shot("docs-viewer-dark")


def store_before_the_rule(redis_url: str, *ids: str) -> None:
    """Ids the id rule now refuses, as an older sidecar wrote them: a list and an index
    entry each (the ingest would answer 400 to them today)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for n, id_ in enumerate(ids):
            entry = {"original": json.dumps({"who": id_}), "uid": f"u{n}", "token_id": id_}
            client.lpush(f"events_cache:token#{id_}", json.dumps(entry))
            client.zadd("events_cache:index:token", {id_: time.time() - n})
    finally:
        client.close()


def test_invisible_characters_in_ids_are_shown_as_code_points(
    start_daemon: Any, redis_url: str, page: Page
) -> None:
    """An id with a bidi override (U+202E shows what follows reversed) or a zero-width
    character, stored before the id rule refused them, cannot pass for another: the
    list, the title and the event's details show their code points; the id itself
    (taken whole, id=) still selects its events."""
    daemon = start_daemon()
    tricky, joined = "invoice\u202egpj.exe", "ad\u200bmin"
    store_before_the_rule(redis_url, tricky, joined)
    page.open(base_url(daemon))
    page.login()
    rows = page.wait_ids([tricky, joined])
    shown = {row["id"]: row["shown"] for row in rows}
    assert "invoice<U+202E>gpj.exe" in shown[tricky] and "\u202e" not in shown[tricky]
    assert "ad<U+200B>min" in shown[joined]
    page.select(tricky)
    assert page.text("#events-title").endswith("invoice<U+202E>gpj.exe")
    page.expand_all()
    page.wait(lambda: page.visible(".details .meta"), message="the event's details")
    assert "invoice<U+202E>gpj.exe" in page.text(".details .meta")


def test_reset_of_an_id_with_a_comma_resets_that_id_only(
    start_daemon: Any, redis_url: str, page: Page
) -> None:
    """`alice,bob`, stored before the id rule: its reset resets that id only, alice and
    bob stay (the viewer sends it whole, id=)."""
    daemon = start_daemon()
    store_before_the_rule(redis_url, "alice,bob", "alice", "bob")
    page.open(base_url(daemon))
    page.login()
    page.wait_ids(["alice,bob", "alice", "bob"])
    page.select("alice,bob")
    page.el("#reset").click()
    page.el("#confirm-ok").click()
    page.wait(lambda: "was reset" in page.text("#ids-state"), message="reset said")
    assert sorted(i["id"] for i in api_ids(daemon, "token")) == ["alice", "bob"]


# The nine classes of markup an event may carry, each with its own alert number. None may
# be an id's leading or trailing space, a comma or a control/format character (the id
# rule), so each is also an id. Bidi and invisible characters, which the id rule
# refuses, are test_invisible_characters_in_ids_are_shown_as_code_points's.
XSS_CLASSES = {
    "script element": "<script>alert(1)</script>",
    "event handler": "<img src=x onerror=alert(2)>",
    "double-quoted attribute breakout": '"><svg onload=alert(3)>',
    "single-quoted attribute breakout": "'><input autofocus onfocus=alert(4)>",
    "javascript: URL": "javascript:alert(5)//",
    "closing-tag breakout": "</pre></textarea></title></style><script>alert(6)</script>",
    "template expression": "${alert(7)}{{constructor.constructor('alert(7)')()}}",
    "HTML entities": "&lt;img src=x onerror=alert(8)&gt;&#x3c;script&#x3e;alert(8)",
    "frame and object": (
        '<iframe srcdoc="<script>alert(9)</script>"></iframe>'
        '<object data="javascript:alert(9)"></object><embed src="javascript:alert(9)">'
    ),
}

# What an injection would leave in the page: an element the viewer never makes (its own
# SVG elements are the overview's charts, class "spark"), an inline handler attribute, or
# a javascript: link or source.
_INJECTED = """return [...document.querySelectorAll(
    'img, svg:not(.spark), iframe, object, embed, frame, script:not([src]), input[autofocus],'
    + '[href^="javascript:" i], [src^="javascript:" i], [srcdoc]')].length
  + [...document.querySelectorAll('*')].filter(
      e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length"""


def _shown(text: str, payload: str) -> bool:
    """The payload as typed: plain, or inside JSON text (quotes escaped)."""
    return payload in text or json.dumps(payload)[1:-1] in text


def test_nine_xss_classes_stay_inert_wherever_an_event_is_shown(
    start_daemon: Any, page: Page
) -> None:
    """Every class as an id (token and destination), in an original, a malformed body
    and its error, a destination's error, skip and result, and an entry's token id:
    shown as the characters typed (the entities undecoded), no element or handler
    injected, no dialog, no policy report. The control at the end: the same markup
    inserted as HTML is what the check finds (the classes that are text until used
    as a URL or evaluated, 5 and 7, excepted; 8 decoded once first)."""
    daemon = start_daemon()
    payloads = list(XSS_CLASSES.values())
    original = {f"field{n}": p for n, p in enumerate(payloads)}
    lines: list[dict[str, Any]] = []
    for payload in payloads:
        # NDJSON lines (the raw token path's malformed body and error header are
        # test_xss_payloads_stay_inert_text's).
        token = {"namespace": "token", "id": payload}
        common = {"namespace": "destination", "id": payload, "original": original}
        lines += [
            {**token, "original": original},
            {**token, "malformed": payload, "error": payload},
            {**common, "token_id": payload, "success": {"table": payload, "row": original}},
            {**common, "token_id": payload, "error": payload},
            {**common, "token_id": payload, "skip": payload},
        ]
    answer = daemon.post_ndjson(lines).json
    assert answer["accepted"] == len(lines), answer["errors"]
    settle(daemon)
    page.open(base_url(daemon))
    page.login()
    shown = page.wait_ids([i["id"] for i in api_ids(daemon, "token")])
    assert {i["id"] for i in shown} == set(payloads)
    assert page.js(_INJECTED) == 0
    for namespace in ("token", "destination"):
        if namespace == "destination":
            page.namespace("destination")
            page.wait_ids([i["id"] for i in api_ids(daemon, "destination")])
        for name, payload in XSS_CLASSES.items():
            page.select(payload)
            page.expand_all()
            page.wait(lambda: page.visible(".details"), message="the details")
            text = page.js("return document.body.innerText")
            assert _shown(text, payload), (namespace, name)
            assert page.text("#events-title").endswith(payload), (namespace, name)
            assert page.js(_INJECTED) == 0, (namespace, name)
    page.shot("12b-xss-nine-classes")
    page.js("location.reload()")  # the fragment holds the last id: read back as text too
    page.wait(lambda: len(page.events()) == 3, message="reloaded on the id")
    assert page.js(_INJECTED) == 0
    assert page.js("return document.querySelectorAll('script').length") == 1
    with pytest.raises(NoAlertPresentException):
        page.d.switch_to.alert.text  # noqa: B018
    problems = [
        e
        for e in page.console()
        if "Content Security Policy" in e["message"] or "Uncaught" in e["message"]
    ]
    assert problems == []
    for name, payload in XSS_CLASSES.items():
        if name in ("javascript: URL", "template expression"):
            continue
        page.js("document.body.innerHTML = arguments[0]", payload)
        if name == "HTML entities":  # their danger: decoded once, then used as markup
            page.js("document.body.innerHTML = document.body.textContent")
        assert page.js(_INJECTED) >= 1, name
