"""The one place a configuration becomes runtime objects.

Like Traefik's ``service.Manager``: every service node is built once (memoised by
identity of the resolved node, which resolution already shares by Traefik name), so all
routes referencing one TraefikService share one schedule, one sticky table and one
mirror counter. Every node is an ASGI app; the leaves are :class:`~.proxy.http.Server`.

Health is wired as Traefik's manager wires it from CRD resources: a Service reference
with a ``healthCheck`` becomes a servers balancer with a
:class:`~.healthcheck.ServerHealthChecker`, and a failover follows its main service's
health when the main reports it (a failover registers on its main whatever its own
config; a weighted or HRW parent only with a ``healthCheck`` of its own, which the CRD
does not have, so those parents keep sending to a child that answers 503).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from ._mirror_pool import MirrorPool
from ._responses import send_go_error
from .config import (
    Config,
    FailoverService,
    HRWService,
    MirroringService,
    ServersService,
    ServersTransport,
    Service,
    WeightedService,
)
from .healthcheck import ServerHealthChecker
from .loadbalancer._status import HealthCheckNotEnabled, StatusUpdaterSource
from .loadbalancer.failover import Failover
from .loadbalancer.hrw import HighestRandomWeight
from .loadbalancer.leasttime import LeastTime
from .loadbalancer.mirror import Mirror, Mirroring
from .loadbalancer.p2c import PowerOfTwoChoices
from .loadbalancer.wrr import Child, WeightedRoundRobin
from .proxy import Server
from .rules import Rule
from .transport import ClientHolder

__all__ = ["Built", "BuiltRoute", "build_routes"]


@dataclass(frozen=True, slots=True)
class BuiltRoute:
    name: str
    rule: Rule
    handler: ASGIApp


ServersBalancer = WeightedRoundRobin | PowerOfTwoChoices | HighestRandomWeight | LeastTime
"""What balances a Kubernetes Service's servers, by ``strategy``."""

_SERVERS_STRATEGIES: dict[str, type[WeightedRoundRobin | PowerOfTwoChoices | LeastTime]] = {
    "wrr": WeightedRoundRobin,
    "p2c": PowerOfTwoChoices,
    "leasttime": LeastTime,
}


async def _no_server(scope: Scope, receive: Receive, send: Send) -> None:
    """A servers load balancer with no server (every endpoint gone): Traefik's 503."""
    await send_go_error(send, 503, "no available server")


class _Builder:
    def __init__(self, holder: ClientHolder, pool: MirrorPool, rng: random.Random) -> None:
        self.holder = holder
        self.holders: dict[ServersTransport, ClientHolder] = {}
        self.pool = pool
        self.rng = rng
        self.built: dict[int, ASGIApp] = {}
        self.health_checkers: list[ServerHealthChecker] = []

    def build(self, service: Service) -> ASGIApp:
        handler = self.built.get(id(service))
        if handler is None:
            handler = self._build(service)
            self.built[id(service)] = handler
        return handler

    def _build(self, service: Service) -> ASGIApp:
        if isinstance(service, ServersService):
            holder = self.holder
            if service.transport is not None:
                # One client (pool, TLS, timeouts) per ServersTransport, as in Traefik.
                holder = self.holders.setdefault(
                    service.transport,
                    ClientHolder(
                        transport=service.transport, copy_idle=self.pool.limits.max_in_flight
                    ),
                )
            servers = [
                Server(url, holder, pass_host_header=service.pass_host_header)
                for url in service.servers
            ]
            if not servers:
                return _no_server
            checked = service.health_check
            if len(servers) == 1 and service.sticky is None and checked is None:
                return servers[0]  # a balancer of one adds nothing observable
            balancer = self._servers_balancer(service, servers)
            if checked is not None:
                self.health_checkers.append(
                    ServerHealthChecker(
                        service.name, checked, balancer, [s.url for s in servers], holder
                    )
                )
            return balancer
        if isinstance(service, WeightedService):
            return WeightedRoundRobin(
                [Child(c.name, self.build(c.service), c.weight) for c in service.children],
                sticky=service.sticky,
                rng=self.rng,
                name=service.name,
            )
        if isinstance(service, MirroringService):
            return Mirroring(
                self.build(service.main),
                [
                    Mirror(
                        m.name,
                        self.build(m.service),
                        m.percent,
                        detached=_answer_blind(m.service),
                    )
                    for m in service.mirrors
                ],
                pool=self.pool,
                mirror_body=service.mirror_body,
                max_body_size=service.max_body_size,
                name=service.name,
            )
        if isinstance(service, FailoverService):
            main = self.build(service.main)
            failover = Failover(
                main,
                self.build(service.fallback),
                status=service.status,
                max_request_body_bytes=service.max_request_body_bytes,
                name=service.name,
            )
            if isinstance(main, StatusUpdaterSource):
                # As Traefik's getFailoverServiceHandler: a main without a health check
                # refuses, which is fine as long as status ranges decide (the parser
                # refuses a failover with neither).
                with contextlib.suppress(HealthCheckNotEnabled):
                    main.register_status_updater(failover.set_handler_status)
            return failover
        if isinstance(service, HRWService):
            return HighestRandomWeight(
                [Child(c.name, self.build(c.service), c.weight) for c in service.children],
                rng=self.rng,
                name=service.name,
            )
        raise TypeError(f"unknown service node {service!r}")  # pragma: no cover

    def _servers_balancer(self, service: ServersService, servers: list[Server]) -> ServersBalancer:
        """The balancer ``strategy`` names for a Service's servers (Traefik's switch in
        ``getLoadBalancerServiceHandler``), each server named by its URL. ``hrw`` has no
        sticky sessions, in Traefik either."""
        children = [Child(s.url, s) for s in servers]
        checked = service.health_check is not None
        if service.strategy == "hrw":
            return HighestRandomWeight(
                children, rng=self.rng, health_check=checked, name=service.name
            )
        strategy = _SERVERS_STRATEGIES[service.strategy]
        return strategy(
            children, sticky=service.sticky, rng=self.rng, health_check=checked, name=service.name
        )


def _answer_blind(service: Service) -> bool:
    """Whether every node of ``service``'s tree picks a child without looking at the
    answer (weighted, HRW, a Service's ``wrr``/``hrw`` servers). A mirror's copies may
    then leave their answers to the transport (see ``loadbalancer/mirror.py``); p2c and
    leasttime count requests until they are answered, failover and mirroring read the
    answer, so their copies keep the whole exchange."""
    if isinstance(service, ServersService):
        return service.strategy in ("wrr", "hrw")
    if isinstance(service, (WeightedService, HRWService)):
        return all(_answer_blind(child.service) for child in service.children)
    return False


@dataclass(frozen=True, slots=True)
class Built:
    """What :func:`build_routes` makes: the routes in matching order (highest priority
    first), and what their owner must start and close: the client holders of the
    ServersTransports and the health checkers."""

    routes: tuple[BuiltRoute, ...]
    holders: tuple[ClientHolder, ...]
    health_checkers: tuple[ServerHealthChecker, ...]


def build_routes(
    config: Config,
    holder: ClientHolder,
    pool: MirrorPool,
    rng: random.Random | None = None,
) -> Built:
    """Turn ``config`` into routes, each service built once."""
    builder = _Builder(holder, pool, rng or random.Random())
    routes = tuple(BuiltRoute(r.name, r.rule, builder.build(r.service)) for r in config.routes)
    return Built(routes, tuple(builder.holders.values()), tuple(builder.health_checkers))
