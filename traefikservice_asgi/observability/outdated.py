"""Series of routers and services a reload removed disappear, as in Traefik.

Traefik's Prometheus state (``pkg/observability/metrics/prometheus.go``,
``OnConfigurationUpdate``) keeps the names of the current configuration's routers,
services and each service's server URLs. A reload lists what the previous one had and
the new one lacks; the next scrape still exports those series, then deletes every
series whose ``router`` or ``service`` label (or ``service`` and ``url``) names one of
them, unless a later configuration brought it back. :class:`Outdated` is that state;
:func:`configured` reads the names from a :class:`~traefikservice_asgi.config.Config`
as the metrics label them (provider-qualified).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..config import Config
from ..config.models import (
    FailoverService,
    HRWService,
    MirroringService,
    Route,
    ServersService,
    Service,
    WeightedService,
)

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["Configured", "Outdated", "configured"]

PROVIDER = "kubernetescrd"

Configured = tuple[frozenset[str], dict[str, frozenset[str]]]
"""(router names, service name -> its server URLs), as the metrics label them."""


def _children(service: Service) -> Iterator[Service]:
    if isinstance(service, (WeightedService, HRWService)):
        yield from (child.service for child in service.children)
    elif isinstance(service, MirroringService):
        yield service.main
        yield from (mirror.service for mirror in service.mirrors)
    elif isinstance(service, FailoverService):
        yield service.main
        yield service.fallback


def configured(config: Config) -> Configured:
    """The routers and services (with their server URLs) of ``config``."""
    routers: set[str] = set()
    services: dict[str, frozenset[str]] = {}

    def visit(service: Service) -> None:
        name = f"{service.name}@{PROVIDER}"
        if name in services:
            return
        urls = service.servers if isinstance(service, ServersService) else ()
        services[name] = frozenset(urls)
        for child in _children(service):
            visit(child)

    def route(r: Route) -> None:
        routers.add(f"{r.name}@{PROVIDER}")
        if r.service is not None:
            visit(r.service)
        for child in r.children:
            route(child)

    for r in config.routes:
        route(r)
    return frozenset(routers), services


class Outdated:
    """Traefik's ``prometheusState``: the current names and what a reload removed."""

    def __init__(self) -> None:
        self.routers: frozenset[str] = frozenset()
        self.services: dict[str, frozenset[str]] = {}
        self.deleted_routers: list[str] = []
        self.deleted_services: list[str] = []
        self.deleted_urls: list[tuple[str, str]] = []

    def set_configuration(self, current: Configured) -> None:
        """A configuration was applied: note what the previous one had and it lacks."""
        routers, services = current
        self.deleted_routers += [r for r in self.routers if r not in routers]
        for service, urls in self.services.items():
            now = services.get(service)
            if now is None:
                self.deleted_services.append(service)
            self.deleted_urls += [(service, u) for u in urls if now is None or u not in now]
        self.routers, self.services = routers, dict(services)

    def delete(self, metrics: Metrics) -> None:
        """After a scrape: drop the series of what is still gone from ``metrics``."""
        if not (self.deleted_routers or self.deleted_services or self.deleted_urls):
            return
        routers = {r for r in self.deleted_routers if r not in self.routers}
        services = {s for s in self.deleted_services if s not in self.services}
        urls = {(s, u) for s, u in self.deleted_urls if u not in self.services.get(s, frozenset())}
        for labels in list(metrics.router_rows):
            if labels[0] in routers or labels[1] in services:
                del metrics.router_rows[labels]
        for service in services:
            metrics.services.pop(service, None)
        for key in list(metrics.server_up):
            if key[0] in services or key in urls:
                del metrics.server_up[key]
        self.deleted_routers, self.deleted_services, self.deleted_urls = [], [], []
