"""Traefik 3.7's Prometheus metrics, counted in plain Python, exported at scrape time.

Traefik's names, types, label sets and default buckets
(``pkg/observability/metrics/prometheus.go``): entry point families
(``traefik_entrypoint_*``, labels ``code``, ``method``, ``protocol``, ``entrypoint``),
router families (off by default: ``add_routers_labels``), service families recorded
around each server of a servers load balancer only (weighted, mirroring, failover and
HRW services record nothing, as in Traefik; a mirror copy counts under the mirror's own
leaf service), ``traefik_open_connections``, ``traefik_config_reloads_total``,
``traefik_config_last_reload_success`` and ``traefik_service_server_up`` for
health-checked servers.

The hot path touches no metrics library: one :class:`Row` per label set (a count, a
sum, a short list of bucket counts and two byte counters), found with one dict lookup
on a tuple key. :class:`MetricsCollector` turns the rows into metric families when
Prometheus scrapes. The event loop is single-threaded, so no lock is needed; a scrape
reads the rows on the loop too.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..entrypoint.forwarding import request_protocol
from .options import ObservabilityOptions
from .outdated import Outdated

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = [
    "METHODS",
    "Metrics",
    "MetricsCollector",
    "Row",
    "ServiceStats",
    "method_label",
    "protocol_label",
]

PREFIX = "traefikservice_asgi"

METHODS = frozenset(
    {"HEAD", "GET", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI"}
)
"""The verbs Traefik keeps as ``method`` label; any other is ``EXTENSION_METHOD``."""


def method_label(method: str) -> str:
    """Traefik's ``getMethod``: a known verb, else ``EXTENSION_METHOD`` (an ASGI method is
    already text, so ``NON_UTF8_HTTP_METHOD`` cannot occur)."""
    return method if method in METHODS else "EXTENSION_METHOD"


def protocol_label(scope: Mapping[str, Any]) -> str:
    """:func:`~..entrypoint.forwarding.request_protocol` of a scope whose
    :class:`~..entrypoint.forwarding.Forward` (which has it) is not made yet."""
    first = dict(reversed(scope["headers"])).get  # the first value of each name wins
    return request_protocol(
        scope["type"] == "websocket",
        first(b"connection"),
        first(b"upgrade"),
        first(b"accept"),
        first(b"content-type"),
    )


class Row:
    """The counters of one label set: requests, histogram and bytes. The requests are
    counted in :attr:`count` and in :attr:`over`'s bucket when they are over the first
    bound (rarely): one addition to an attribute per request, not to a list's item."""

    __slots__ = ("count", "over", "request_bytes", "response_bytes", "sum")

    def __init__(self, size: int) -> None:
        self.count = 0
        self.sum = 0.0
        self.over = [0] * (size - 1)  # the buckets after the first; the last one is +Inf
        self.request_bytes = 0
        self.response_bytes = 0

    @property
    def buckets(self) -> list[int]:
        """The requests per bucket (not cumulative), the last one +Inf."""
        return [self.count - sum(self.over), *self.over]

    def add(self, seconds: float, bounds: tuple[float, ...]) -> None:
        """Count a request of ``seconds`` (the hot paths inline this)."""
        self.count += 1
        self.sum += seconds
        if seconds > bounds[0]:
            self.over[bisect_left(bounds, seconds) - 1] += 1


Key = tuple[int, str, str]  # (status, method label, protocol)


class ServiceStats:
    """One leaf (servers load balancer) service's rows, held by its servers."""

    __slots__ = ("name", "rows")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[Key, Row] = {}


class Metrics:
    """Every counter of one gateway, across reloads (a runtime is rebuilt, this is
    not). Records are made by :mod:`.observe`; :class:`MetricsCollector` exports."""

    def __init__(self, options: ObservabilityOptions) -> None:
        self.options = options
        self.bounds = options.buckets
        self.size = len(options.buckets) + 1
        self.entry_rows: dict[Key, Row] = {}
        self.router_rows: dict[tuple[str, str], dict[Key, Row]] = {}
        self.services: dict[str, ServiceStats] = {}
        self.server_up: dict[tuple[str, str], float] = {}
        # Traefik counts one reload per provider configuration at startup: its
        # internal provider's and the configuration's (here: kubernetescrd's).
        self.reloads = 2
        self.last_reload_success = time.time()
        self.open_connections: Callable[[], Mapping[str, int]] = dict
        self.extra: list[Callable[[], Iterator[Metric]]] = []
        #: The current configuration's names; what a reload removed is dropped after
        #: the next scrape (outdated.py).
        self.outdated = Outdated()

    def service(self, name: str) -> ServiceStats:
        """The stats of the leaf service ``name`` (provider-qualified), made once."""
        stats = self.services.get(name)
        if stats is None:
            stats = self.services[name] = ServiceStats(name)
        return stats

    def record_reload(self, success: bool) -> None:
        """A configuration reload happened (a live reload calls this)."""
        self.reloads += 1
        if success:
            self.last_reload_success = time.time()

    def observe(
        self,
        rows: dict[Key, Row],
        key: Key,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        """Count one request in ``rows`` (hot path: one lookup, a few additions)."""
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(self.size)
        row.add(seconds, self.bounds)
        row.request_bytes += request_bytes
        row.response_bytes += response_bytes


# -- export -----------------------------------------------------------------------------

_HELP = {
    "entrypoint": (
        "How many HTTP requests processed on an entrypoint, partitioned by status code, "
        "protocol, and method.",
        "How long it took to process the request on an entrypoint, partitioned by status "
        "code, protocol, and method.",
        "The total size of requests in bytes handled by an entrypoint, partitioned by "
        "status code, protocol, and method.",
        "The total size of responses in bytes handled by an entrypoint, partitioned by "
        "status code, protocol, and method.",
    ),
    "router": (
        "How many HTTP requests are processed on a router, partitioned by service, status "
        "code, protocol, and method.",
        "How long it took to process the request on a router, partitioned by service, "
        "status code, protocol, and method.",
        "The total size of requests in bytes handled by a router, partitioned by service, "
        "status code, protocol, and method.",
        "The total size of responses in bytes handled by a router, partitioned by service, "
        "status code, protocol, and method.",
    ),
    "service": (
        "How many HTTP requests processed on a service, partitioned by status code, "
        "protocol, and method.",
        "How long it took to process the request on a service, partitioned by status "
        "code, protocol, and method.",
        "The total size of requests in bytes received by a service, partitioned by status "
        "code, protocol, and method.",
        "The total size of responses in bytes returned by a service, partitioned by "
        "status code, protocol, and method.",
    ),
}


class MetricsCollector:
    """A ``prometheus_client`` collector reading :class:`Metrics` at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: families depend on the traffic

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        m = self.metrics
        yield _counter("traefik_config_reloads_total", "Config reloads", [], [((), m.reloads)])
        yield _gauge(
            "traefik_config_last_reload_success",
            "Last config reload success",
            [],
            [((), m.last_reload_success)],
        )
        yield _gauge(
            "traefik_open_connections",
            "How many open connections exist, by entryPoint and protocol",
            ["entrypoint", "protocol"],
            [((ep, "TCP"), n) for ep, n in sorted(m.open_connections().items())],
        )
        opts = m.options
        if opts.add_entry_points_labels:
            rows: list[tuple[tuple[str, ...], Row]] = [
                ((*_labels(k), opts.entry_point), r) for k, r in m.entry_rows.items()
            ]
            yield from self._families(
                "traefik_entrypoint", "entrypoint", ["entrypoint"], rows, _HELP["entrypoint"]
            )
        if opts.add_routers_labels:
            rows = [
                ((*_labels(k), router, service), r)
                for (router, service), group in m.router_rows.items()
                for k, r in group.items()
            ]
            yield from self._families(
                "traefik_router", "router", ["router", "service"], rows, _HELP["router"]
            )
        if opts.add_services_labels:
            rows = [
                ((*_labels(k), name), r)
                for name, stats in m.services.items()
                for k, r in stats.rows.items()
            ]
            yield from self._families(
                "traefik_service", "service", ["service"], rows, _HELP["service"]
            )
            up = GaugeMetricFamily(
                "traefik_service_server_up",
                "service server is up, described by gauge value of 0 or 1.",
                labels=["service", "url"],
            )
            for (service, url), value in sorted(m.server_up.items()):
                up.add_metric([service, url], value)
            yield up
        for extra in m.extra:
            yield from extra()
        m.outdated.delete(m)  # exported once more above, as Traefik does, then gone

    def _families(
        self,
        prefix: str,
        what: str,
        names: list[str],
        rows: list[tuple[tuple[str, ...], Row]] | list[Any],
        helps: tuple[str, str, str, str],
    ) -> Iterator[Metric]:
        from prometheus_client.core import HistogramMetricFamily

        labels = ["code", "method", "protocol", *names]
        rows.sort(key=lambda item: item[0])
        yield _counter(
            f"{prefix}_requests_total", helps[0], labels, [(v, r.count) for v, r in rows]
        )
        histogram = HistogramMetricFamily(
            f"{prefix}_request_duration_seconds", helps[1], labels=labels
        )
        bounds = [_le(b) for b in self.metrics.bounds] + ["+Inf"]
        for values, row in rows:
            cumulative, buckets = 0, []
            for le, n in zip(bounds, row.buckets, strict=True):
                cumulative += n
                buckets.append((le, cumulative))
            histogram.add_metric(list(values), buckets, row.sum)
        yield histogram
        yield _counter(
            f"{prefix}_requests_bytes_total", helps[2], labels,
            [(v, r.request_bytes) for v, r in rows],
        )  # fmt: skip
        yield _counter(
            f"{prefix}_responses_bytes_total", helps[3], labels,
            [(v, r.response_bytes) for v, r in rows],
        )  # fmt: skip


def _labels(key: Key) -> tuple[str, str, str]:
    return (str(key[0]), key[1], key[2])


def _le(bound: float) -> str:
    """Go's ``strconv.FormatFloat(b, 'g', -1, 64)`` as the Prometheus Go client writes
    bucket bounds: ``0.1``, ``5`` (not ``5.0``)."""
    text = repr(bound)
    return text[:-2] if text.endswith(".0") else text


def _counter(
    name: str, help_text: str, labels: list[str], samples: list[tuple[tuple[Any, ...], float]]
) -> Metric:
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _gauge(
    name: str, help_text: str, labels: list[str], samples: list[tuple[tuple[Any, ...], float]]
) -> Metric:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family
