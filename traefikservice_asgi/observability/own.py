"""This project's own metrics, under the ``traefikservice_asgi_`` prefix, so nothing
collides with a real Traefik scraped by the same Prometheus.

All are read at scrape time from plain integers the runtime keeps anyway or increments
once per request (a balancer's pick count per child, a sticky cookie's hits): nothing
here runs on the request path. Balancers are found among the current runtime's built
nodes (``Runtime.nodes``), each once: a service a reload kept keeps its counts, a
changed one is a new balancer whose counts start again (a counter reset, which
Prometheus' ``rate()`` absorbs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["Counted", "balancers", "own_metrics"]

PREFIX = "traefikservice_asgi"
PROVIDER = "kubernetescrd"


class _Sticky(Protocol):
    hits: int
    rewrites: int


@runtime_checkable
class Counted(Protocol):
    """A balancer as the metrics read it (wrr, p2c, hrw, leasttime, failover)."""

    name: str

    @property
    def sticky(self) -> _Sticky | None: ...

    def picks(self) -> list[tuple[str, int, float]]: ...


def balancers(runtime: Runtime) -> list[Counted]:
    """Every balancer of ``runtime``, once each, in build order (a Service's balancer
    behind its middlewares included)."""
    found: dict[int, Counted] = {}
    for nodes in runtime.nodes.values():
        for node in nodes:
            handler = getattr(node.handler, "balancer", node.handler)
            if isinstance(handler, Counted) and id(handler) not in found:
                found[id(handler)] = handler
    return list(found.values())


def balancer_metrics(runtime: Runtime) -> Iterator[Any]:
    """Picks per child and weights of every balancer; sticky cookie hits and rewrites."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    picks = CounterMetricFamily(
        f"{PREFIX}_balancer_picks",
        "Requests a balancer handed to each of its children.",
        labels=["service", "child"],
    )
    weights = GaugeMetricFamily(
        f"{PREFIX}_balancer_weight",
        "The weight of each child of a balancer in the current configuration.",
        labels=["service", "child"],
    )
    hits = CounterMetricFamily(
        f"{PREFIX}_sticky_cookie_hits",
        "Requests a sticky cookie sent to the child it pins.",
        labels=["service"],
    )
    rewrites = CounterMetricFamily(
        f"{PREFIX}_sticky_cookie_rewrites",
        "Sticky cookies of an earlier Traefik release's format, rewritten.",
        labels=["service"],
    )
    for balancer in balancers(runtime):
        service = f"{balancer.name}@{PROVIDER}"
        for child, count, weight in balancer.picks():
            picks.add_metric([service, child], count)
            weights.add_metric([service, child], weight)
        sticky = balancer.sticky
        if sticky is not None:
            hits.add_metric([service], sticky.hits)
            rewrites.add_metric([service], sticky.rewrites)
    yield from (picks, weights, hits, rewrites)


def own_metrics(runtime: Runtime) -> Iterator[Any]:
    """Mirror copies sent and dropped (by reason), from the current runtime's pool; the
    balancers' picks, weights and sticky cookie counts."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    pool = runtime.mirror_pool
    sent = CounterMetricFamily(
        f"{PREFIX}_mirror_copies_sent", "Mirror copies sent to a mirror service."
    )
    sent.add_metric([], pool.sent)
    yield sent
    dropped = CounterMetricFamily(
        f"{PREFIX}_mirror_copies_dropped",
        "Mirror copies dropped past a limit, by reason.",
        labels=["reason"],
    )
    for reason, count in sorted(pool.dropped.items()):
        dropped.add_metric([reason], count)
    yield dropped
    in_flight = GaugeMetricFamily(
        f"{PREFIX}_mirror_copies_in_flight", "Mirror copies in flight now."
    )
    in_flight.add_metric([], pool.in_flight)
    yield in_flight
    yield from balancer_metrics(runtime)
