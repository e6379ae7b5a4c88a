"""The one place a configuration becomes runtime objects: ``Config -> Runtime``.

Like Traefik's ``service.Manager``: every service node is built once, memoised by its
Traefik name (``default-wrr``, ``default-app-v1-80``: resolution gives each name one
node), so all parents referencing one TraefikService or one Kubernetes Service share one
schedule, one sticky table, one health state and one mirror counter. Every node is an ASGI app; the leaves are :class:`~.proxy.http.Server`.

Each kind of service node has one builder method (:data:`_Builder.KINDS`), and a Service
reference's servers get the balancer its ``strategy`` names in :data:`SERVERS_STRATEGIES`:
adding a strategy is one module in ``loadbalancer/`` and one line there (see the guide
"How to add a strategy"). Every balancer class says whether it reads its children's
answers (``reads_answers``); a mirror whose whole tree never does gets *detached* copies
(see ``loadbalancer/mirror.py``).

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
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

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
from .config.models import CookieOptions
from .config.models import Route as ConfigRoute
from .exceptions import HealthCheckNotEnabled
from .healthcheck import HealthChecks, ServerHealthChecker
from .loadbalancer._status import StatusUpdater, StatusUpdaterSource
from .loadbalancer.failover import Failover
from .loadbalancer.hrw import HighestRandomWeight
from .loadbalancer.leasttime import LeastTime
from .loadbalancer.mirror import Mirror, Mirroring
from .loadbalancer.mirror_pool import MirrorPool
from .loadbalancer.p2c import PowerOfTwoChoices
from .loadbalancer.wrr import Child, WeightedRoundRobin
from .middlewares import wrap
from .options import GatewayOptions
from .proxy import Server
from .responses import send_go_error
from .runtime import Route, Runtime
from .transport import ClientHolder

__all__ = ["SERVERS_STRATEGIES", "ServersBalancer", "build_runtime"]


class ServersBalancer(Protocol):
    """What balances a Kubernetes Service's servers: an ASGI app over named children
    that a health checker drives (``set_status``) and a parent may follow
    (``register_status_updater``), saying whether it reads its children's answers."""

    reads_answers: ClassVar[bool]

    def __init__(
        self,
        children: Sequence[Child],
        *,
        sticky: CookieOptions | None,
        rng: random.Random | None,
        health_check: bool,
        name: str,
    ) -> None: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    def set_status(self, child: str, up: bool) -> None: ...

    def register_status_updater(self, updater: StatusUpdater) -> None: ...


SERVERS_STRATEGIES: dict[str, type[ServersBalancer]] = {
    "wrr": WeightedRoundRobin,
    "p2c": PowerOfTwoChoices,
    "hrw": HighestRandomWeight,
    "leasttime": LeastTime,
}
"""A Service reference's ``strategy`` (as the config layer normalises it) to the class
that balances its servers: Traefik's switch in ``getLoadBalancerServiceHandler``."""


async def _no_server(scope: Scope, receive: Receive, send: Send) -> None:
    """A servers load balancer with no server (every endpoint gone): Traefik's 503."""
    await send_go_error(send, 503, "no available server")


def _reads_answers(handler: object) -> bool:
    """Whether this node itself reads its children's answers (leaves do not)."""
    return bool(getattr(type(handler), "reads_answers", False))


class _Builder:
    KINDS: ClassVar[dict[type[Any], Callable[[_Builder, Any], ASGIApp]]]
    """The builder method of each kind of service node."""

    def __init__(self, holder: ClientHolder, pool: MirrorPool, rng: random.Random) -> None:
        self.holder = holder
        self.holders: dict[ServersTransport, ClientHolder] = {}
        self.pool = pool
        self.rng = rng
        self.built: dict[str, ASGIApp] = {}
        # Whether some node of a service's tree reads answers, by service name.
        self.reads: dict[str, bool] = {}
        self.health_checkers: list[ServerHealthChecker] = []

    def build(self, service: Service) -> ASGIApp:
        handler = self.built.get(service.name)
        if handler is None:
            handler = self.KINDS[type(service)](self, service)
            if isinstance(service, ServersService) and service.middlewares:
                handler = _ServiceWithMiddlewares(handler, service)
            self.built[service.name] = handler
        return handler

    def reads_answers(self, service: Service) -> bool:
        """Whether a node of ``service``'s (built) tree reads answers. A mirror's copies
        may leave their answers to the transport only when none does."""
        return self.reads[service.name]

    def _node(self, service: Service, handler: ASGIApp, children: Sequence[Service]) -> ASGIApp:
        self.reads[service.name] = _reads_answers(handler) or any(
            self.reads_answers(child) for child in children
        )
        return handler

    def servers(self, service: ServersService) -> ASGIApp:
        holder = self.holder
        if service.transport is not None:
            # One client (pool, TLS, timeouts) per ServersTransport, as in Traefik.
            holder = self.holders.setdefault(
                service.transport,
                ClientHolder(transport=service.transport, copy_idle=self.pool.limits.max_in_flight),
            )
        servers = [
            Server(url, holder, pass_host_header=service.pass_host_header)
            for url in service.servers
        ]
        # Whether the strategy reads answers, even where its balancer is left out below.
        self.reads[service.name] = SERVERS_STRATEGIES[service.strategy].reads_answers
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

    def _servers_balancer(self, service: ServersService, servers: list[Server]) -> ServersBalancer:
        """The balancer ``strategy`` names for a Service's servers, each server named by
        its URL. ``hrw`` has no sticky sessions, in Traefik either (the config layer
        drops them)."""
        strategy = SERVERS_STRATEGIES[service.strategy]
        return strategy(
            [Child(s.url, s) for s in servers],
            sticky=service.sticky,
            rng=self.rng,
            health_check=service.health_check is not None,
            name=service.name,
        )

    def weighted(self, service: WeightedService) -> ASGIApp:
        children = [c.service for c in service.children]
        return self._node(
            service,
            WeightedRoundRobin(
                [Child(c.name, self.build(c.service), c.weight) for c in service.children],
                sticky=service.sticky,
                rng=self.rng,
                name=service.name,
            ),
            children,
        )

    def hrw(self, service: HRWService) -> ASGIApp:
        children = [c.service for c in service.children]
        return self._node(
            service,
            HighestRandomWeight(
                [Child(c.name, self.build(c.service), c.weight) for c in service.children],
                rng=self.rng,
                name=service.name,
            ),
            children,
        )

    def mirroring(self, service: MirroringService) -> ASGIApp:
        main = self.build(service.main)
        mirrors = [
            Mirror(
                m.name,
                self.build(m.service),
                m.percent,
                detached=not self.reads_answers(m.service),
            )
            for m in service.mirrors
        ]
        return self._node(
            service,
            Mirroring(
                main,
                mirrors,
                pool=self.pool,
                mirror_body=service.mirror_body,
                max_body_size=service.max_body_size,
                name=service.name,
            ),
            [service.main, *(m.service for m in service.mirrors)],
        )

    def failover(self, service: FailoverService) -> ASGIApp:
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
        return self._node(service, failover, [service.main, service.fallback])


_Builder.KINDS = {
    ServersService: _Builder.servers,
    WeightedService: _Builder.weighted,
    HRWService: _Builder.hrw,
    MirroringService: _Builder.mirroring,
    FailoverService: _Builder.failover,
}


async def _no_matching_child(scope: Scope, receive: Receive, send: Send) -> None:
    """A parent router whose children all fail to match: Traefik's child muxer answers
    with its default handler, Go's ``http.NotFound``; no other router is tried."""
    await send_go_error(send, 404, "404 page not found")


class _ServiceWithMiddlewares:
    """A Service reference's balancer behind its ``middlewares`` (Traefik 3.7), still
    reporting the balancer's health to a parent (Traefik's ``statusUpdaterHandler``)."""

    def __init__(self, balancer: ASGIApp, service: ServersService) -> None:
        self.balancer = balancer
        self.app = wrap(balancer, service.middlewares)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def register_status_updater(self, updater: StatusUpdater) -> None:
        if not isinstance(self.balancer, StatusUpdaterSource):
            raise HealthCheckNotEnabled("the service has no health check")
        self.balancer.register_status_updater(updater)


def _route(route: ConfigRoute, builder: _Builder) -> Route:
    """A router, or a parent router and its children (multi-layer routing). A router's
    middlewares are built for it alone (one instance per router, as in Traefik)."""
    if route.children or route.service is None:
        children = tuple(_route(child, builder) for child in route.children)
        return Route(route.name, route.rule, _no_matching_child, children)
    handler = builder.build(route.service)
    if route.middlewares:  # else no wrapper at all: the plain route's path is unchanged
        handler = wrap(handler, route.middlewares)
    return Route(route.name, route.rule, handler)


def build_runtime(config: Config, options: GatewayOptions | None = None) -> Runtime:
    """Turn ``config`` into a :class:`~.runtime.Runtime`, each service built once, with
    the mirror pool, the clients and the balancer order ``options`` ask for."""
    options = options or GatewayOptions()
    pool = MirrorPool(options.mirror_limits)
    holder = ClientHolder(options.client, copy_idle=pool.limits.max_in_flight)
    builder = _Builder(holder, pool, options.rng or random.Random())
    routes = tuple(_route(r, builder) for r in config.routes)
    return Runtime(
        routes=routes,
        holders=(holder, *builder.holders.values()),
        health_checks=HealthChecks(builder.health_checkers),
        mirror_pool=pool,
    )
