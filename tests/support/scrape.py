"""Reading a daemon's outcome: /metrics samples, metric sums, the accounting identity
(received = cached{all} + rate_limited{all} + dropped + queue_depth), and Jitsu Classic's
list keys in Redis.

Samples are a flat dict keyed like the exposition format with labels sorted:
`'events_cache_cached_total{cache_namespace="token",collection="all"}' -> 3.0`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import wait_for

Samples = dict[str, float]


class Scrapeable(Protocol):
    """Anything with a /metrics scrape: the daemon harnesses."""

    def metrics(self) -> Samples: ...


def sample_key(name: str, labels: Mapping[str, str]) -> str:
    """`name{k="v",...}` with the labels sorted; the bare name without labels."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[sample_key(s.name, s.labels)] = s.value
    return out


def has_label(key: str, label: str) -> bool:
    """Whether a sample key carries `label` (`name="value"`) as a whole label: the text
    `namespace="token"` is not found in `cache_namespace="token"`."""
    return "{" + label in key or "," + label in key


def metric_sum(samples: Mapping[str, float], name: str, *must: str) -> float:
    """Sum of a metric's samples that carry every `must` label (`name="value"`)."""
    return sum(
        v
        for k, v in samples.items()
        if (k == name or k.startswith(name + "{")) and all(has_label(k, m) for m in must)
    )


def delta(after: Mapping[str, float], before: Mapping[str, float], name: str) -> float:
    """How much a metric (all its samples) grew between two scrapes."""
    return metric_sum(after, name) - metric_sum(before, name)


def accounted(m: Mapping[str, float], namespace: str | None = None) -> tuple[float, float]:
    """(received, cached{all} + rate_limited{all} + dropped + queued), for one namespace
    or all; dropped has no namespace label, so it is added whole."""
    ns = f'cache_namespace="{namespace}"' if namespace else ""
    received = metric_sum(m, "events_cache_received_total", ns)
    done = (
        metric_sum(m, "events_cache_cached_total", 'collection="all"', ns)
        + metric_sum(m, "events_cache_rate_limited_total", 'collection="all"', ns)
        + metric_sum(m, "events_cache_dropped_total")
        + m.get("events_cache_queue_depth", 0)
    )
    return received, done


def settled(daemon: Scrapeable) -> bool:
    """Nothing queued and every received event accounted for (written, limited or dropped):
    no batch is still on its way to Redis."""
    m = daemon.metrics()
    received, done = accounted(m)
    return m.get("events_cache_queue_depth", -1) == 0 and received == done


def settle(daemon: Scrapeable, timeout: float = 10) -> None:
    """Wait until `settled`."""
    wait_for(lambda: settled(daemon), timeout=timeout, what="every event accounted for")


def counters(m: Mapping[str, float]) -> dict[str, float]:
    """The contract's counters from a scrape, summed over labels."""
    return {
        "received": metric_sum(m, "events_cache_received_total"),
        "cached_all": metric_sum(m, "events_cache_cached_total", 'collection="all"'),
        "limited_all": metric_sum(m, "events_cache_rate_limited_total", 'collection="all"'),
        "dropped": metric_sum(m, "events_cache_dropped_total"),
        "dropped_queue_full": m.get('events_cache_dropped_total{reason="queue_full"}', 0.0),
        "dropped_redis_error": m.get('events_cache_dropped_total{reason="redis_error"}', 0.0),
        "dropped_shutdown": m.get('events_cache_dropped_total{reason="shutdown"}', 0.0),
        "queue_depth": m.get("events_cache_queue_depth", 0.0),
        "redis_up": m.get("events_cache_redis_up", 0.0),
    }


def check_accounting(c: Mapping[str, float]) -> None:
    """received = cached{all} + rate_limited{all} + dropped + queue_depth, exactly."""
    assert c["received"] == c["cached_all"] + c["limited_all"] + c["dropped"] + c["queue_depth"], c


def list_key(namespace: str, id_: str, error: bool = False) -> str:
    """Jitsu Classic's key of an id's all-events (or errors-only) list."""
    return f"events_cache:{namespace}#{id_}" + (":error" if error else "")


def redis_total(client: Any, prefix: str = "load", namespace: str = "token") -> int:
    """Entries in the all-events lists of the ids `<prefix>-*` (standalone or cluster client)."""
    total = 0
    for key in client.scan_iter(match=list_key(namespace, f"{prefix}-*"), count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        if not name.endswith(":error"):
            total += int(client.llen(name))
    return total
