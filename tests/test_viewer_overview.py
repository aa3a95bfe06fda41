"""The viewer's overview and what it leads to, in the real headless browser against live
daemons: the live stream of every id (backfill, pause and "N new", a row opening its
entry), the ids list refreshing while a tail runs, an event's journey in its details
(each step a link to that entry), JSON folding and highlighting, and the NDJSON download
of what the filters select. (The browser, the page helper and the seed data are
test_viewer_browser's.)"""

# The browser's fixtures are imported from test_viewer_browser, so a test's `page`
# parameter names the imported fixture: F811 is what that looks like to ruff.
# ruff: noqa: F811

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import redis
from selenium.webdriver.common.by import By

from tests.support.scrape import settle
from tests.support.servers import wait_for
from tests.test_viewer_browser import (  # noqa: F401 (fixtures)
    _INJECTED,
    XSS,
    Page,
    api_ids,
    artifacts,
    base_url,
    driver,
    nginx,
    page,
    seed,
)

pytestmark = pytest.mark.e2e


def stream_rows(page: Page) -> list[dict[str, str]]:
    return list(
        page.js("""return [...document.querySelectorAll('#ov-events > li')].map(li => ({
            uid: li.dataset.uid, id: li.dataset.id, status: li.dataset.status,
            summary: li.querySelector('.ev-summary').textContent}))""")
    )


def every_uid(daemon: Any, namespace: str) -> set[str]:
    return {e["uid"] for e in daemon.query(namespace=namespace, limit=100)["events"]}


def wait_rows(page: Page, count: int) -> None:
    """An id's first page drawn (wait_loaded alone may look before the load begins)."""
    page.wait_loaded()
    page.wait(lambda: len(page.uids()) == count, message=f"{count} rows, {page.uids()}")


def _watching(page: Page) -> None:
    page.wait(lambda: "Live" in page.text("#ov-state"), message="the overview's stream live")
    time.sleep(1.1)  # sidecars look for watchers once a second (docs/api.md)


# -- the live stream of every id ---------------------------------------------------------


def test_the_overview_streams_every_id_backfilled_pausable(start_daemon: Any, page: Page) -> None:
    """The landing page starts with the newest cached events of every id (last=), then
    follows; paused, new ones are counted ("paused, N new") until Show; a row opens its
    id's list at that entry."""
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.wait(lambda: page.visible("#overview"), message="the overview is the landing page")
    cached = every_uid(daemon, "token")
    assert len(cached) == 14
    page.wait(
        lambda: {r["uid"] for r in stream_rows(page)} == cached, message="backfill of every id"
    )
    assert {r["id"] for r in stream_rows(page)} == {"js.mixed", "js.quiet", "srv.backend"}
    _watching(page)

    daemon.post_token("js.quiet", json.dumps({"event_type": "live-one"}))
    daemon.post_token("srv.backend", json.dumps({"event_type": "live-two"}))
    page.wait(
        lambda: [r["summary"] for r in stream_rows(page)[:2]] == ["live-two", "live-one"],
        message="live entries of two ids at the top",
    )
    page.shot("30-overview-stream")

    page.el("#ov-pause").click()
    count = len(stream_rows(page))
    for n in range(3):
        daemon.post_token("js.mixed", json.dumps({"event_type": f"held-{n}"}))
    page.wait(lambda: page.text("#ov-new") == "paused, 3 new", message="paused, 3 new")
    assert len(stream_rows(page)) == count
    page.shot("31-overview-paused")
    page.el("#ov-show").click()
    page.wait(lambda: len(stream_rows(page)) == count + 3, message="held entries shown")
    assert [r["summary"] for r in stream_rows(page)[:3]] == ["held-2", "held-1", "held-0"]
    page.el("#ov-pause").click()  # resume
    page.wait(lambda: page.visible("#ov-new") is False, message="no marker once resumed")

    # A row is a link to its id's list at that entry: opened, marked, older ones below.
    target = next(r for r in stream_rows(page) if r["summary"] == "live-one")
    page.js(
        "document.querySelector(`#ov-events > li[data-uid='${arguments[0]}'] a`).click()",
        target["uid"],
    )
    page.wait(lambda: page.visible("#events-view"), message="the id's events")
    page.wait(lambda: bool(page.uids()) and page.uids()[0] == target["uid"], message="at")
    assert page.text("#events-title").endswith("js.quiet")
    assert page.uids()[0] == target["uid"]
    assert (
        page.js("return document.querySelector('#events > li.at')?.dataset.uid") == (target["uid"])
    )
    assert page.visible("#events > li.at .details")
    assert not page.visible("#overview")
    assert "uid=" in page.d.current_url
    page.el("#at-note a").click()  # back to the newest events
    page.wait(
        lambda: (
            page.uids()
            == [e["uid"] for e in daemon.query(namespace="token", ids="js.quiet")["events"]]
        ),
        message="the newest events again",
    )


def test_the_ids_list_refreshes_while_a_tail_runs(start_daemon: Any, page: Page) -> None:
    """Events of a new key, and more of a listed one, show in the list without a click,
    both while the overview's stream runs and while an id's live tail runs."""
    daemon = start_daemon()
    seed(daemon)
    page.open(base_url(daemon))
    page.login()
    page.wait_ids([i["id"] for i in api_ids(daemon, "token")])
    _watching(page)
    daemon.post_token("js.brand-new", json.dumps({"event_type": "first"}))
    page.wait(
        lambda: "js.brand-new" in [i["id"] for i in page.ids()],
        timeout=15,
        message="a new key listed without a reload",
    )
    assert [i["id"] for i in page.ids()] == [i["id"] for i in api_ids(daemon, "token")]

    page.select("js.quiet")
    page.el("#live").click()
    page.wait(lambda: "Live" in page.text("#tail-state"), message="live tail")
    time.sleep(1.1)
    for n in range(4):
        daemon.post_token("js.quiet", json.dumps({"event_type": f"more-{n}"}))
    settle(daemon)
    total = next(i["total_events"] for i in api_ids(daemon, "token") if i["id"] == "js.quiet")
    assert total == 3 + 4
    page.wait(
        lambda: next(i["total"] for i in page.ids() if i["id"] == "js.quiet") == total,
        timeout=15,
        message="the key's count refreshed",
    )
    assert page.js("return document.querySelector('#ids [aria-current=true]')?.dataset.id") == (
        "js.quiet"
    )
    ids_reads = page.js(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/v1/events/ids')).length"
    )
    # The token's check, the first page, and at most one refresh per 5 s since: the 14
    # backfilled and 5 live entries, each a trigger, would make 21 unthrottled.
    assert ids_reads <= 8, ids_reads


# -- the journey -------------------------------------------------------------------------

NO_REFILL = {"server": {"cache": {"events": {"time_window_sec": 3600}}}}


def journey_seed(daemon: Any) -> dict[str, Any]:
    """A purchase with an event id, received by js.shop and sent to two destinations,
    one took it, one failed; and an event with no id."""
    event = {"event_type": "purchase", "eventn_ctx": {"event_id": "ev-42"}, "revenue": 9}
    lines = [
        {"namespace": "token", "id": "js.shop", "original": event},
        {"namespace": "token", "id": "js.shop", "original": {"event_type": "no-id"}},
        {
            "namespace": "destination",
            "id": "pg_main",
            "original": event,
            "token_id": "js.shop",
            "success": {"table": "events", "record": [{"field": "revenue", "value": 9}]},
        },
        {
            "namespace": "destination",
            "id": "bq",
            "original": event,
            "token_id": "js.shop",
            "error": 'pq: column "revenue" is of type numeric',
        },
    ]
    assert daemon.post_ndjson(lines).json["accepted"] == len(lines)
    settle(daemon)
    return event


def journey_steps(page: Page) -> list[dict[str, Any]]:
    return list(
        page.js("""return [...document.querySelectorAll('.panel-journey .j-step')].map(s => ({
            status: s.dataset.status, id: s.dataset.id, uid: s.dataset.uid,
            href: s.querySelector('a').getAttribute('href'),
            what: s.querySelector('.j-what').textContent,
            here: !!s.querySelector('.j-here')}))""")
    )


def test_an_events_details_show_its_journey_each_step_a_link(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon(NO_REFILL)
    journey_seed(daemon)
    answer = daemon.api("/api/v1/events/journey", {"event_id": "ev-42"}).json
    page.open(base_url(daemon), "#token/js.shop")
    page.login()
    wait_rows(page, 2)
    purchase = next(e for e in page.events() if e["summary"] == "purchase")
    page.js(
        "document.querySelector(`#events > li[data-uid='${arguments[0]}'] .event-btn`).click()",
        purchase["uid"],
    )
    page.wait(lambda: len(journey_steps(page)) == 3, message="the journey's three steps")
    steps = journey_steps(page)
    assert [(s["status"], s["id"]) for s in steps] == [
        ("received", "js.shop"),
        ("error", "bq"),
        ("success", "pg_main"),
    ]
    uids = [answer["received"][0]["uid"], *(d["event"]["uid"] for d in answer["destinations"])]
    assert [s["uid"] for s in steps] == uids
    assert steps[0]["here"] and not steps[1]["here"]  # the entry these details are of
    assert steps[1]["what"] == 'pq: column "revenue" is of type numeric'
    assert steps[2]["what"] == "delivered: events"
    assert steps[1]["href"] == f"#destination/bq?uid={urllib.parse.quote(uids[1])}"
    assert "ev-42" in page.text(".panel-journey .j-id")
    page.shot("32-journey")

    # The other event has no id: said so, no lookup.
    page.js(
        "document.querySelector('#events > li:not(.at) .event-btn[aria-expanded=false]').click()"
    )
    page.wait(lambda: "no event id" in page.text("#events"), message="no event id said")

    # A step's link opens that destination's list at that entry, with its own journey.
    page.js("document.querySelector('.panel-journey .j-step[data-id=bq] a').click()")
    page.wait(lambda: page.text("#events-title").endswith("bq"), message="bq opened")
    wait_rows(page, 1)
    assert page.js("return document.querySelector('.ns button[aria-pressed=true]').dataset.ns") == (
        "destination"
    )
    assert page.js("return document.querySelector('#events > li.at')?.dataset.uid") == uids[1]
    page.wait(lambda: len(journey_steps(page)) == 3, message="the journey again, from bq")
    assert [s["here"] for s in journey_steps(page)] == [False, True, False]
    page.d.back()  # the browser's Back returns to the API key
    page.wait(lambda: page.text("#events-title").endswith("js.shop"), message="back")


def test_a_journey_not_in_the_index_says_so(start_daemon: Any, redis_url: str, page: Page) -> None:
    """An entry carrying an event id the journey's index never saw (written by Jitsu
    Classic itself): the 404's message, plainly."""
    daemon = start_daemon()
    client = redis.Redis.from_url(redis_url)
    try:
        entry = {"original": json.dumps({"event_id": "ghost-1"}), "uid": "u1", "token_id": "old"}
        client.lpush("events_cache:token#old", json.dumps(entry))
        client.zadd("events_cache:index:token", {"old": time.time()})
    finally:
        client.close()
    page.open(base_url(daemon), "#token/old")
    page.login()
    wait_rows(page, 1)
    page.expand_all()
    page.wait(lambda: "No journey" in page.text(".panel-journey"), message="the 404 said")
    assert "ghost-1" in page.text(".panel-journey")


# -- JSON folding and highlighting -------------------------------------------------------


def test_originals_and_results_fold_and_are_highlighted(start_daemon: Any, page: Page) -> None:
    daemon = start_daemon()
    original = {
        "event_type": "checkout",
        "n": 3,
        "ok": True,
        "none": None,
        "user": {"id": "u1", "tags": ["a", "b"]},
        "xss": XSS[1],
    }
    big = {"event_type": "big", "rows": [{"i": i} for i in range(1200)]}
    lines = [
        {
            "namespace": "destination",
            "id": "pg",
            "original": original,
            "success": {"table": "t", "row": original},
        },
        {"namespace": "destination", "id": "pg", "original": big, "skip": "too big"},
    ]
    assert daemon.post_ndjson(lines).json["accepted"] == 2
    settle(daemon)
    page.open(base_url(daemon), "#destination/pg")
    page.login()
    wait_rows(page, 2)
    page.js("document.querySelector('#events > li[data-status=success] .event-btn').click()")
    pre = "#events > li[data-status=success] .panel-original pre"
    page.wait(lambda: page.visible(pre + " .j-node"), message="the tree")
    assert json.loads(page.text(pre)) == original  # the tree's text is the JSON
    assert page.text(pre) == json.dumps(original, indent=2, ensure_ascii=False)
    colours = page.js(
        """const pre = document.querySelector(arguments[0]);
        return Object.fromEntries(['j-key', 'j-str', 'j-num', 'j-bool', 'j-null'].map(
            c => [c, getComputedStyle(pre.querySelector('.' + c)).color]))""",
        pre,
    )
    assert len(set(colours.values())) >= 4, colours  # keys, strings, numbers, literals

    # Fold "user": its members hidden, a summary said; unfold: back.
    user = f"{pre} > code > .j-node > .j-body > .j-node"
    page.js(f"document.querySelector('{user} > .j-toggle').click()")
    assert page.js(f"return document.querySelector('{user}').classList.contains('folded')")
    assert not page.visible(f"{user} > .j-body")
    assert "2 keys" in page.js(
        f"return getComputedStyle(document.querySelector('{user} > .j-open'), '::after').content"
    )
    assert '"tags"' not in page.d.find_element(By.CSS_SELECTOR, pre).text
    assert (
        page.js(
            f"return document.querySelector('{user} > .j-toggle').getAttribute('aria-expanded')"
        )
        == "false"
    )
    page.shot("33-json-folded")
    page.js(f"document.querySelector('{user} > .j-toggle').click()")
    assert '"tags"' in page.d.find_element(By.CSS_SELECTOR, pre).text
    assert page.js(_INJECTED) == 0  # the payload in the tree is text

    # A big document opens its first level only, draws folded parts when unfolded, and a
    # long array its first 1000 members.
    page.js("document.querySelector('#events > li[data-status=skip] .event-btn').click()")
    big_pre = "#events > li[data-status=skip] .panel-original pre"
    page.wait(lambda: page.visible(big_pre + " .j-node"), message="the big tree")
    drawn = page.js(f"return document.querySelectorAll('{big_pre} .j-node').length")
    assert drawn == 2, drawn  # the document open, "rows" folded and its rows not drawn
    rows = f"{big_pre} > code > .j-node > .j-body > .j-node"
    assert page.js(f"return document.querySelector('{rows}').classList.contains('folded')")
    page.js(f"document.querySelector('{rows} > .j-toggle').click()")
    members = f"return document.querySelectorAll('{rows} > .j-body > .j-node').length"
    assert page.js(members) == 1000  # then a button for the other 200
    first_row = f"{rows} > .j-body > .j-node"
    assert page.js(f"return document.querySelector('{first_row}').classList.contains('folded')")
    page.js(f"document.querySelector('{first_row} > .j-toggle').click()")
    assert page.js(f"return document.querySelector('{first_row} > .j-body').textContent") == (
        '\n      "i": 0\n    '
    )
    page.js(f"document.querySelector('{rows} > .j-body > .j-more').click()")
    assert page.js(members) == 1200
    assert not [e for e in page.console() if e["level"] == "SEVERE" and "Uncaught" in e["message"]]


# -- the download ------------------------------------------------------------------------


def _downloads(page: Page, where: Path) -> None:
    page.d.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(where)}
    )


def _downloaded(page: Page, where: Path) -> list[dict[str, Any]]:
    def done() -> list[Path]:
        return [p for p in where.glob("*.ndjson") if p.stat().st_size > 0]

    page.wait(lambda: len(done()) == 1, message="the file downloaded")
    path = done()[0]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    return lines


def test_download_saves_what_the_filters_select_as_ndjson(
    start_daemon: Any, page: Page, tmp_path: Path
) -> None:
    """Paged with before= under a small byte bound (three pages), the filters applied
    (the server's status=error, the page's own skip), an event too long for an answer
    fetched whole; the page says how many."""
    daemon = start_daemon({"sidecar": {"api": {"max_response_bytes": 131072}}, **NO_REFILL})
    lines: list[dict[str, Any]] = [
        {
            "namespace": "token",
            "id": "js.bulk",
            "original": {"event_type": f"e{n}", "pad": "x" * 5000},
        }
        for n in range(60)
    ]
    lines.append(
        {
            "namespace": "token",
            "id": "js.bulk",
            "original": {"event_type": "huge", "pad": "y" * 200_000},
        }
    )
    lines.append(
        {"namespace": "token", "id": "js.bulk", "original": {"event_type": "bot"}, "skip": "bot"}
    )
    assert daemon.post_ndjson(lines).json["accepted"] == len(lines)
    seed(daemon)
    where = tmp_path / "downloads"
    where.mkdir()
    page.open(base_url(daemon), "#token/js.bulk")
    page.login()
    page.wait(lambda: len(page.uids()) > 0, message="the first page")
    _downloads(page, where)
    page.el("#download").click()
    page.wait(lambda: "saved as" in page.text("#download-state"), message="download said")
    got = _downloaded(page, where)
    stored = [json.loads(raw) for raw in _list(daemon, "js.bulk")]
    assert [e["uid"] for e in got] == [e["uid"] for e in stored] and len(got) == 62
    huge = next(e for e in got if e["original"]["event_type"] == "huge")
    assert huge["original"]["pad"] == "y" * 200_000 and "cut" not in huge
    assert page.text("#download-state").startswith("62 events saved as events-cache-token-js.bulk-")
    assert page.js("return document.getElementById('download-state').dataset.count") == "62"
    pages = page.js(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('limit=1000')).length"
    )
    assert pages >= 3, pages  # the byte bound cut the answers: paged with before=

    page.set_filter("f-status", "skip")
    page.wait(lambda: len(page.uids()) == 1, message="the skip only")
    page.el("#download").click()
    got = _downloaded(page, where)
    assert [e["original"]["event_type"] for e in got] == ["bot"]
    page.wait(lambda: page.text("#download-state").startswith("1 event saved"), message="1")

    page.set_filter("f-status", "")  # the filters stay from id to id
    page.open(base_url(daemon), "#token/js.mixed")  # a new fragment: no reload
    wait_rows(page, 7)
    page.set_filter("f-status", "error")
    page.wait(lambda: len(page.uids()) == 1, message="the malformed one")
    _downloads(page, where)
    page.el("#download").click()
    got = _downloaded(page, where)
    expected = daemon.query(namespace="token", ids="js.mixed", status="error")["events"]
    assert got == expected and len(got) == 1
    page.shot("34-download")


def _list(daemon: Any, key: str) -> list[Any]:
    client = redis.Redis.from_url(daemon.config["meta"]["storage"]["redis"]["host"])
    try:
        return list(client.lrange(f"events_cache:token#{key}", 0, -1))
    finally:
        client.close()


# -- what fails most, and each id's last hour ----------------------------------------------


def _settled_api(daemon: Any, path: str, params: dict[str, Any], done: Any) -> Any:
    """The answer once every pod's counts reached Redis (they are added once a second)."""
    answer: Any = None

    def ready() -> bool:
        nonlocal answer
        reply = daemon.api(path, params)
        assert reply.status == 200, (reply.status, reply.raw)
        answer = reply.json
        return bool(done(answer))

    wait_for(ready, timeout=10)
    return answer


def shown_signatures(page: Page) -> list[tuple[str, str, int]]:
    return [
        (s["namespace"], s["text"], int(s["count"]))
        for s in page.js("""return [...document.querySelectorAll('#ov-signatures .sig')]
            .map(li => ({
            namespace: li.dataset.namespace, text: li.querySelector('.sig-text').textContent,
            count: li.querySelector('.sig-count').dataset.count}))""")
    ]


def test_the_overview_shows_what_fails_most_and_opens_the_errors_behind_it(
    start_daemon: Any, page: Page
) -> None:
    daemon = start_daemon(NO_REFILL)

    def dest(id_: str, error: str) -> dict[str, Any]:
        return {"namespace": "destination", "id": id_, "original": {"n": 1}, "error": error}

    lines = [
        dest("pg_main", f'pq: column "{c}" is of type numeric') for c in ("a", "b", "c", "d", "e")
    ]
    lines += [dest("bq", 'pq: column "x" is of type numeric')]
    lines += [
        dest("webhook", f"POST https://crm.example/hook: {code} Bad Gateway") for code in (502, 503)
    ]
    lines += [
        {"namespace": "destination", "id": "pg_main", "original": {"n": 2}, "success": {"t": 1}}
    ]
    lines += [
        {"namespace": "token", "id": "js.app", "malformed": "{", "error": "invalid JSON at 1"}
    ]
    lines += [dest("ch", m) for m in ("code: 241, memory limit", "auth: expired", "refused")]
    assert daemon.post_ndjson(lines).json["accepted"] == len(lines)
    settle(daemon)
    answers = {
        ns: _settled_api(
            daemon,
            "/api/v1/errors",
            {"namespace": ns},
            lambda a, ns=ns: (
                sum(s["count"] for s in a["signatures"]) == (11 if ns == "destination" else 1)
            ),
        )
        for ns in ("destination", "token")
    }
    expected = sorted(
        ((ns, s["signature"], s["count"]) for ns, a in answers.items() for s in a["signatures"]),
        key=lambda row: -row[2],
    )
    assert expected[0] == ("destination", "pq: column <q> is of type numeric", 6)
    page.open(base_url(daemon))
    page.login()
    assert len(expected) == 6
    page.wait(lambda: shown_signatures(page) == expected[:5], message=f"the top 5 of {expected}")
    assert page.text("#ov-errors-more") == "1 more signature"
    page.el("#ov-errors-more").click()
    assert shown_signatures(page) == expected
    page.el("#ov-errors-more").click()
    assert shown_signatures(page) == expected[:5]
    page.el("#ov-signatures .sig-btn").click()
    links = page.js("""return [...document.querySelectorAll('.sig-details .sig-id')].map(
        a => [a.textContent, a.getAttribute('href')])""")
    assert [text for text, _ in links] == ["pg_main", "bq"]
    assert links[0][1] == "#destination/pg_main?status=error&q=is+of+type+numeric"
    page.shot("35-overview-signatures")

    page.el(".sig-details .sig-id").click()  # pg_main's errors of that kind
    page.wait(lambda: page.text("#events-title").endswith("pg_main"), message="pg_main opened")
    behind = [
        e["uid"]
        for e in daemon.query(
            namespace="destination", ids="pg_main", status="error", q="is of type numeric"
        )["events"]
    ]
    assert len(behind) == 5
    page.wait_uids(behind)
    assert page.js(
        "return [document.getElementById('f-status').value, document.getElementById('f-q').value]"
    ) == [
        "error",
        "is of type numeric",
    ]

    page.d.back()  # the overview again; the example opens its entry
    page.wait(lambda: page.visible("#overview") and bool(shown_signatures(page)), message="back")
    page.el("#ov-signatures .sig-btn").click()
    example = answers["destination"]["signatures"][0]["example"]
    page.el(".sig-details .sig-open").click()
    page.wait(lambda: bool(page.uids()) and page.uids()[0] == example["uid"], message="example")
    assert (
        page.js("return document.querySelector('#events > li.at')?.dataset.uid") == example["uid"]
    )


def test_the_overview_charts_each_ids_last_hour(start_daemon: Any, page: Page) -> None:
    """Received, cached, errors and rate limited per minute, as the activity answer says:
    one chart per id, its totals those of the answer."""
    daemon = start_daemon({"server": {"cache": {"events": {"size": 4, "time_window_sec": 3600}}}})
    lines: list[Any] = [
        {"namespace": "token", "id": "js.busy", "original": {"n": n}} for n in range(6)
    ]
    lines += [{"namespace": "token", "id": "js.calm", "original": {"n": 1}}]
    lines += [{"namespace": "token", "id": "js.calm", "malformed": "{", "error": "bad"}]
    assert daemon.post_ndjson(lines).status == 202  # 2 of js.busy's are rate limited
    settle(daemon)
    answer = _settled_api(
        daemon,
        "/api/v1/events/activity",
        {"namespace": "token", "minutes": 60},
        lambda a: sum(sum(i["received"]) for i in a["ids"]) == 8,
    )
    totals = {
        i["id"]: {
            "received": sum(i["received"]),
            "errors": sum(i["errors"]),
            "limited": sum(i["rate_limited"]),
        }
        for i in answer["ids"]
    }
    assert totals["js.busy"] == {"received": 6, "errors": 0, "limited": 2}
    assert totals["js.calm"]["received"] == 2 and totals["js.calm"]["errors"] == 1
    page.open(base_url(daemon))
    page.login()

    def charts() -> dict[str, dict[str, int]]:
        rows = page.js("""return [...document.querySelectorAll('#ov-charts .chart')].map(li => ({
            id: li.dataset.id, received: li.dataset.received, errors: li.dataset.errors,
            limited: li.dataset.limited}))""")
        return {r["id"]: {k: int(r[k]) for k in ("received", "errors", "limited")} for r in rows}

    page.wait(lambda: charts() == totals, message=f"charts {totals}, shown {charts()}")
    points = page.js("""return [...document.querySelectorAll('#ov-charts .spark .line-received')]
        .map(l => l.getAttribute('points').split(' ').length)""")
    assert points == [len(answer["minutes"])] * len(totals)
    assert "6 received" in page.text("#ov-charts .chart[data-id='js.busy'] .chart-totals")
    assert "js.busy" in page.js(
        "return document.querySelector(\"#ov-charts .chart[data-id='js.busy'] title\").textContent"
    )
    page.shot("36-overview-charts")
    page.emulate(dark=True)
    page.shot("36b-overview-charts-dark")


# An older sidecar, as the page meets it: the two endpoints answer 404 (nginx answers for
# them, in front of the real daemon).
OLDER_SIDECAR = """
    location = /some/prefix/api/v1/errors {
      default_type application/json; return 404 '{"message": "no such route"}'; }
    location = /some/prefix/api/v1/events/activity {
      default_type application/json; return 404 '{"message": "no such route"}'; }
"""


def test_the_overview_without_signatures_or_activity_leaves_them_out(
    start_daemon: Any, page: Page, nginx: Any
) -> None:
    daemon = start_daemon()
    seed(daemon)
    base = nginx(daemon.api_port, OLDER_SIDECAR)
    page.open(base)
    page.login()
    page.wait(lambda: len(stream_rows(page)) == 14, message="the stream works")

    def asked(path: str) -> bool:
        urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
        return any(u.startswith(base + path) for u in urls)

    page.wait(
        lambda: page.js("return document.getElementById('overview').dataset.refreshed") == "1",
        message="the signatures' and the activity's answers handled",
    )
    assert asked("api/v1/errors?") and asked("api/v1/events/activity?")
    assert not page.visible("#ov-errors") and not page.visible("#ov-activity")
    assert page.js("return document.querySelectorAll('#overview .banner').length") == 0
    assert page.visible("#ov-stream")
    assert not [e for e in page.console() if "Uncaught" in e["message"]]
