#!/usr/bin/env python3
"""Generate the Grafana dashboard of the Helm chart with Grafana's grafana-foundation-sdk.

    scripts/dashboard.py            # write helm/events-cache/dashboards/events-cache.json
                                    # and the panel list of helm/events-cache/README.md
    scripts/dashboard.py --check    # exit 1 if either is out of date

The chart ships the JSON (a ConfigMap behind `dashboards.enabled`), so installing the
chart needs nothing of this; the SDK is pinned in the `test` extra, and a test fails
when the committed file differs from what this script writes. tests/test_dashboard.py
runs every panel's queries against a real Prometheus scraping two daemons.

Every query selects the Kubernetes `namespace` and `pod` labels a PodMonitor,
ServiceMonitor or the usual scrape configs attach (`$namespace`, `$pod`), and the
daemon's own `cache_namespace` (`$cache_namespace`: token, destination) where the
metric has it. `process_*` series are kept to the sidecar's own targets by matching
them with `events_cache_build_info` of the same target: the ingest container of the
pod may expose `process_*` metrics too.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

OUT = (
    Path(__file__).resolve().parent.parent
    / "helm"
    / "events-cache"
    / "dashboards"
    / "events-cache.json"
)
README = OUT.parent.parent / "README.md"
START, END = "<!-- dashboard:start -->", "<!-- dashboard:end -->"
UID = "events-cache"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")

POD = 'namespace=~"$namespace", pod=~"$pod"'
CACHE = f'{POD}, cache_namespace=~"$cache_namespace"'
RATE = "[$__rate_interval]"
# The sidecar's own targets: process_* series of a target that also exposes build_info.
OWN = f"and on (namespace, pod, instance) events_cache_build_info{{{POD}}}"
REQUESTS = "events_cache_http_request_duration_seconds_count"
INGEST = f'{POD}, listener="ingest"'
API = f'{POD}, listener="api", route=~"/api/.*"'
QUERIES = f'{POD}, listener="api", route=~"/api/v1/events/(cache|ids)"'  # not the tail's
FAILED = f'{POD}, status=~"[45].."'
QUEUE_BYTES_FILL = f"events_cache_queue_bytes{{{POD}}} / events_cache_queue_capacity_bytes{{{POD}}}"


def rate(metric: str, selector: str = POD) -> str:
    """`rate(metric{selector}[$__rate_interval])`."""
    return f"rate({metric}{{{selector}}}{RATE})"


@dataclass(frozen=True)
class Panel:
    """One panel: what it shows, the question it answers, its queries (expr, legend)."""

    title: str
    answers: str
    targets: list[tuple[str, str]]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries, stat or state
    width: int = 8
    height: int = 8
    extra: dict[str, object] = field(default_factory=dict)


def quantiles(metric: str, selector: str, by: str = "") -> list[tuple[str, str]]:
    """p50 and p99 of a histogram, summed over the pods (and `by`)."""
    group = f"le{', ' + by if by else ''}"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) ({rate(metric + '_bucket', selector)}))",
            f"p{int(q * 100)}{suffix}",
        )
        for q in (0.5, 0.99)
    ]


ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Overview",
        [
            Panel(
                "Sidecars",
                "How many sidecars report, in the selected pods?",
                [(f"count(events_cache_build_info{{{POD}}})", "sidecars")],
                kind="stat",
                width=4,
                height=4,
            ),
            Panel(
                "Reaching Redis",
                "How many of them reached Redis on their last try?",
                [(f"sum(events_cache_redis_up{{{POD}}})", "up")],
                kind="stat",
                width=4,
                height=4,
            ),
            Panel(
                "Received",
                "How many events per second do the ingest containers hand over?",
                [(f"sum(rate(events_cache_received_total{{{CACHE}}}{RATE}))", "received")],
                unit="ops",
                kind="stat",
                width=4,
                height=4,
            ),
            Panel(
                "Dropped in range",
                "Were events lost in the time range (any reason)?",
                [(f"sum(increase(events_cache_dropped_total{{{POD}}}[$__range]))", "dropped")],
                kind="stat",
                width=4,
                height=4,
            ),
            Panel(
                "Fullest queue",
                "How close is the fullest queue to dropping (share of capacity, in events "
                "or in bytes, whichever is nearer)?",
                [
                    (
                        f"max(events_cache_queue_depth{{{POD}}}"
                        f" / events_cache_queue_capacity{{{POD}}} > {QUEUE_BYTES_FILL}"
                        f" or {QUEUE_BYTES_FILL})",
                        "fill",
                    )
                ],
                unit="percentunit",
                kind="stat",
                width=4,
                height=4,
            ),
            Panel(
                "Versions",
                "Which versions run (during a rollout, more than one)?",
                [(f"count by (version) (events_cache_build_info{{{POD}}})", "{{version}}")],
                kind="stat",
                width=4,
                height=4,
            ),
        ],
    ),
    (
        "Events",
        [
            Panel(
                "Received per cache namespace",
                "How many events per second reach the sidecars, API keys (token) and "
                "destinations apart?",
                [
                    (
                        f"sum by (cache_namespace) ({rate('events_cache_received_total', CACHE)})",
                        "{{cache_namespace}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Cached per cache namespace and collection",
                "How many events per second are written to Redis, to the all-events and "
                "errors-only lists?",
                [
                    (
                        f"sum by (cache_namespace, collection) "
                        f"(rate(events_cache_cached_total{{{CACHE}}}{RATE}))",
                        "{{cache_namespace}} {{collection}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Rate limited per cache namespace and collection",
                "How many events per second are not cached because an id sent more than "
                "`size` per `time_window_sec` (per pod)?",
                [
                    (
                        f"sum by (cache_namespace, collection) "
                        f"(rate(events_cache_rate_limited_total{{{CACHE}}}{RATE}))",
                        "{{cache_namespace}} {{collection}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Captured beyond the limits per cache namespace",
                "How many tagged events (sidecar.capture) per second are cached although "
                "their id's rate limit was reached, within each pod's budget_per_minute?",
                [
                    (
                        f"sum by (cache_namespace) "
                        f"(rate(events_cache_captured_total{{{CACHE}}}{RATE}))",
                        "{{cache_namespace}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Limited at the source per cache namespace",
                "How many events per second did the clients hold back because the sidecar "
                "had said their id was rate limited (counted in received and rate limited "
                "too)?",
                [
                    (
                        f"sum by (cache_namespace) "
                        f"(rate(events_cache_limited_at_source_total{{{CACHE}}}{RATE}))",
                        "{{cache_namespace}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Dropped per reason",
                "Are accepted events lost, and why: queue full (Redis slow or away), Redis "
                "error (a failed batch), shutdown (the flush ran out of time)?",
                [
                    (
                        f"sum by (reason) (rate(events_cache_dropped_total{{{POD}}}{RATE}))",
                        "{{reason}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Malformed and invalid",
                "Does the ingest send bodies that are not JSON (cached as malformed), NDJSON "
                "lines the sidecar rejects (invalid, not cached), or originals that a "
                "redact path matched but could not be written back (stored as a note)?",
                [
                    (f"sum(rate(events_cache_malformed_total{{{POD}}}{RATE}))", "malformed"),
                    (f"sum(rate(events_cache_invalid_total{{{POD}}}{RATE}))", "invalid"),
                    (
                        f"sum(rate(events_cache_unredactable_total{{{POD}}}{RATE}))",
                        "unredactable",
                    ),
                ],
                unit="ops",
            ),
            Panel(
                "Received per pod",
                "Is the ingest load spread evenly over the pods?",
                [
                    (
                        f"sum by (namespace, pod) ({rate('events_cache_received_total', CACHE)})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
                unit="ops",
            ),
        ],
    ),
    (
        "Queue and Redis",
        [
            Panel(
                "Queue depth against capacity",
                "How many events wait for Redis in each pod, and where does dropping start?",
                [
                    (
                        f"max by (namespace, pod) (events_cache_queue_depth{{{POD}}})",
                        "{{namespace}}/{{pod}}",
                    ),
                    (f"max(events_cache_queue_capacity{{{POD}}})", "capacity"),
                ],
            ),
            Panel(
                "Queue bytes against capacity",
                "How many bytes of events wait for Redis in each pod (large events reach "
                "sidecar.ingest.queue_bytes before queue_size)?",
                [
                    (
                        f"max by (namespace, pod) (events_cache_queue_bytes{{{POD}}})",
                        "{{namespace}}/{{pod}}",
                    ),
                    (f"max(events_cache_queue_capacity_bytes{{{POD}}})", "capacity"),
                ],
                unit="bytes",
            ),
            Panel(
                "Redis up per pod",
                "Which pods reach Redis (1) and which do not (0), over time?",
                [
                    (
                        f"max by (namespace, pod) (events_cache_redis_up{{{POD}}})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
                kind="state",
            ),
            Panel(
                "Redis errors per operation",
                "Which Redis operations fail: write, trim, limited (counts), activity "
                "(counts), ping, query, summary, reset, tail?",
                [
                    (
                        f"sum by (operation) ({rate('events_cache_redis_errors_total')})",
                        "{{operation}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Redis write latency",
                "How long does one pipelined batch write take?",
                quantiles("events_cache_redis_write_seconds", POD),
                unit="s",
            ),
            Panel(
                "Trim latency",
                "How long does one trim pass (LTRIM of the lists written since the last) take?",
                quantiles("events_cache_trim_seconds", POD),
                unit="s",
            ),
            Panel(
                "Live-tail streams",
                "How many live-tail streams are open on each pod (limit: sidecar.api.max_streams)?",
                [
                    (
                        f"sum by (namespace, pod) (events_cache_streams{{{POD}}})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
            ),
            Panel(
                "Waits (long polls)",
                "How many waits (GET /api/v1/events/wait) are open on each pod "
                "(limit: sidecar.api.max_waits)?",
                [
                    (
                        f"sum by (namespace, pod) (events_cache_waits{{{POD}}})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
            ),
            Panel(
                "Activity counts lost",
                "Does a pod count more ids a second than it holds for the activity charts "
                "(50,000 id-minutes between two flushes), so that counts are lost?",
                [
                    (
                        f"sum by (namespace, pod) ({rate('events_cache_activity_lost_total')})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
                unit="ops",
            ),
        ],
    ),
    (
        "HTTP",
        [
            Panel(
                "Ingest requests",
                "How many ingest requests per second, per route and status?",
                [
                    (
                        f"sum by (route, status) ({rate(REQUESTS, INGEST)})",
                        "{{route}} {{status}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "Ingest latency",
                "How long does the sidecar take to answer the ingest container?",
                quantiles("events_cache_http_request_duration_seconds", INGEST),
                unit="s",
            ),
            Panel(
                "HTTP errors",
                "Which requests fail, on which listener: 4xx (the caller), 5xx (the sidecar "
                "or Redis: 503)?",
                [
                    (
                        f"sum by (listener, route, status) ({rate(REQUESTS, FAILED)})",
                        "{{listener}} {{route}} {{status}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "Refused at the door",
                "Which ingest-side requests are refused before anything is cached, on which "
                "listener and why (too large, too many events, a body too slow, a bad "
                "encoding or id, nothing to cache)?",
                [
                    (
                        f"sum by (listener, reason) ({rate('events_cache_rejected_total')})",
                        "{{listener}} {{reason}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "Admin token refusals",
                "How many API requests per second come with a missing or wrong admin token "
                "(a client misconfigured, or someone guessing)?",
                [(f"sum({rate('events_cache_auth_failures_total')})", "refused")],
                unit="reqps",
            ),
            Panel(
                "Query API requests",
                "How often are the cache, the summary, the reset and the live tail asked for?",
                [
                    (
                        f"sum by (route, method, status) ({rate(REQUESTS, API)})",
                        "{{method}} {{route}} {{status}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "Query API latency",
                "How long do queries and summaries take (the live tail's time is its "
                "lifetime, left out)?",
                quantiles(
                    "events_cache_http_request_duration_seconds",
                    QUERIES,
                    by="route",
                ),
                unit="s",
            ),
        ],
    ),
    (
        "Resources",
        [
            Panel(
                "Memory per pod (RSS)",
                "How much memory does each sidecar use (it grows with the queue)?",
                [
                    (
                        f"max by (namespace, pod) (process_resident_memory_bytes{{{POD}}} {OWN})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
                unit="bytes",
            ),
            Panel(
                "CPU per pod",
                "How much CPU does each sidecar use (cores)?",
                [
                    (
                        f"max by (namespace, pod) ({rate('process_cpu_seconds_total')} {OWN})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
                unit="short",
            ),
            Panel(
                "Open file descriptors per pod",
                "How many connections and files does each sidecar hold (slow clients, "
                "connection storms)?",
                [
                    (
                        f"max by (namespace, pod) (process_open_fds{{{POD}}} {OWN})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
            ),
        ],
    ),
]


def query(expr: str, legend: str, ref: str, instant: bool) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    q = q.datasource(DATASOURCE)
    return q.instant() if instant else q.range()


def build_panel(panel: Panel, panel_id: int) -> stat.Panel | statetimeline.Panel | timeseries.Panel:
    builder: stat.Panel | statetimeline.Panel | timeseries.Panel
    if panel.kind == "stat":
        builder = (
            stat.Panel()
            .graph_mode(common.BigValueGraphMode.NONE)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    elif panel.kind == "state":
        builder = statetimeline.Panel().mappings(
            [
                model.ValueMap(
                    options={
                        "0": model.ValueMappingResult(text="down", color="red", index=0),
                        "1": model.ValueMappingResult(text="up", color="green", index=1),
                    },
                )
            ]
        )
    else:
        builder = timeseries.Panel().fill_opacity(10).line_width(1).min(0)
    builder = (
        builder.id(panel_id)
        .title(panel.title)
        .description(panel.answers)
        .unit(panel.unit)
        .datasource(DATASOURCE)
        .span(panel.width)
        .height(panel.height)
    )
    for n, (expr, legend) in enumerate(panel.targets):
        builder = builder.with_target(query(expr, legend, chr(ord("A") + n), panel.kind == "stat"))
    return builder


def variables() -> list[dash.QueryVariable | dash.DatasourceVariable]:
    def label_values(name: str, label: str, query_text: str) -> dash.QueryVariable:
        return (
            dash.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query({"query": query_text, "refId": name, "qryType": 1})
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )

    return [
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        label_values("namespace", "Namespace", "label_values(events_cache_build_info, namespace)"),
        label_values(
            "pod", "Pod", 'label_values(events_cache_build_info{namespace=~"$namespace"}, pod)'
        ),
        label_values(
            "cache_namespace",
            "Cache namespace",
            "label_values(events_cache_received_total, cache_namespace)",
        ),
    ]


def build() -> model.Dashboard:
    """The dashboard, rows in order."""
    board = (
        dash.Dashboard("events-cache")
        .uid(UID)
        .description(
            "The events-cache sidecars: events received, cached, limited and dropped; the "
            "write queue; Redis; the ingest and query APIs; memory and CPU per pod."
        )
        .tags(["events-cache", "jitsu", "redis"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
    )
    for variable in variables():
        board = board.with_variable(variable)
    panel_id = 1
    for title, panels in ROWS:
        board = board.with_row(dash.Row(title).id(panel_id))
        panel_id += 1
        for panel in panels:
            board = board.with_panel(build_panel(panel, panel_id))
            panel_id += 1
    return board.build()


def render() -> str:
    """The dashboard as the chart ships it: sorted keys, two-space indent, final newline."""
    doc = json.loads(json.dumps(build(), cls=JSONEncoder))
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def panel_list() -> str:
    """The README's table: each panel, its row and the question it answers."""
    lines = ["| row | panel | answers |", "| --- | --- | --- |"]
    for row, panels in ROWS:
        for panel in panels:
            lines.append(f"| {row} | {panel.title} | {panel.answers} |")
    return "\n".join(lines)


def readme(text: str) -> str:
    """The chart README with its panel list rewritten."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{panel_list()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    outputs = {OUT: render(), README: readme(README.read_text())}
    if args.check:
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"{path} is out of date: run scripts/dashboard.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
