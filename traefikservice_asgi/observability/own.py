"""This project's own metrics, under the ``traefikservice_asgi_`` prefix, so nothing
collides with a real Traefik scraped by the same Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["own_metrics"]

PREFIX = "traefikservice_asgi"


def own_metrics(runtime: Runtime) -> Iterator[Any]:
    """Mirror copies sent and dropped (by reason), from the current runtime's pool."""
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
