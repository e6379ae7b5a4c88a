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
import importlib
import random
import weakref
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, ClassVar, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from .config import (
    Config,
    FailoverService,
    HRWService,
    MirroringService,
    ServersService,
    Service,
    WeightedService,
)
from .config._pacing import checkpoint
from .config.models import STRATEGIES, CookieOptions
from .config.models import Route as ConfigRoute
from .exceptions import HealthCheckNotEnabled
from .healthcheck import HealthChecks, ServerHealthChecker
from .loadbalancer._status import StatusUpdater, StatusUpdaterSource
from .loadbalancer.failover import Failover
from .loadbalancer.hrw import HighestRandomWeight
from .loadbalancer.mirror import Mirror, Mirroring
from .loadbalancer.mirror_pool import MirrorPool
from .loadbalancer.wrr import Child, WeightedRoundRobin
from .middlewares import ServiceBuilder, wrap
from .observability.hooks import observe_servers, record_server_up
from .observability.metrics import Metrics
from .options import GatewayOptions
from .proxy import Server
from .responses import send_go_error
from .reuse import BuiltNode, KeyMaker, route_key
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
        fenced: Collection[str],
        name: str,
    ) -> None: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    def set_status(self, child: str, up: bool) -> None: ...

    def register_status_updater(self, updater: StatusUpdater) -> None: ...


def _servers_strategies() -> dict[str, type[ServersBalancer]]:
    """Each strategy of the configuration's registry (``config.models.STRATEGIES``) to
    the ``BALANCER`` of its module, ``loadbalancer/<name>.py``: Traefik's switch in
    ``getLoadBalancerServiceHandler``, without a line here per strategy."""
    found: dict[str, type[ServersBalancer]] = {}
    for name in STRATEGIES:
        module = importlib.import_module(f"{__package__}.loadbalancer.{name.replace('-', '_')}")
        found[name] = module.BALANCER
    return found


SERVERS_STRATEGIES: dict[str, type[ServersBalancer]] = _servers_strategies()
"""A Service reference's ``strategy`` (as the config layer normalises it) to the class
that balances its servers."""


async def _no_server(scope: Scope, receive: Receive, send: Send) -> None:
    """A servers load balancer with no server (every endpoint gone): Traefik's 503."""
    await send_go_error(send, 503, "no available server")


def _reads_answers(handler: object) -> bool:
    """Whether this node itself reads its children's answers (leaves do not)."""
    return bool(getattr(type(handler), "reads_answers", False))


class _Builder:
    KINDS: ClassVar[dict[type[Any], Callable[[_Builder, Any], ASGIApp]]]
    """The builder method of each kind of service node."""

    def __init__(
        self,
        holder: ClientHolder,
        pool: MirrorPool,
        rng: random.Random,
        previous: Runtime | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        # One holder per ServersTransport, by value (reuse.node_key): an unchanged one
        # keeps the previous runtime's client and pool.
        self.holders: dict[Hashable, ClientHolder] = {}
        self._previous_holders = dict(previous.transports) if previous is not None else {}
        # Live reload (reuse.py): the previous runtime's nodes, each claimed at most once.
        self._previous: dict[Hashable, list[BuiltNode]] = (
            {key: list(nodes) for key, nodes in previous.nodes.items()}
            if previous is not None
            else {}
        )
        self.keys = KeyMaker()
        # Route middleware chains (reuse.route_key -> (service handler, chain)): one kept
        # when its route's value and the service handler it wraps are both unchanged.
        self._previous_chains = dict(previous.chains) if previous is not None else {}
        self.chains: dict[Hashable, tuple[ASGIApp, ASGIApp]] = {}
        self.nodes: dict[Hashable, list[BuiltNode]] = {}
        self._records: dict[str, tuple[Hashable, BuiltNode]] = {}
        self._reused: set[str] = set()
        self.reused = 0
        self.pool = pool
        self.rng = rng
        self.built: dict[str, ASGIApp] = {}
        # Whether some node of a service's tree reads answers, by service name.
        self.reads: dict[str, bool] = {}
        self.health_checkers: list[ServerHealthChecker] = []

    def build(self, service: Service) -> ASGIApp:
        handler = self.built.get(service.name)
        if handler is None:
            fresh = len(self.health_checkers)
            handler = self.KINDS[type(service)](self, service)
            if isinstance(service, ServersService) and service.middlewares:
                handler = _ServiceWithMiddlewares(handler, service, self.build)
            self._record(service, handler, tuple(self.health_checkers[fresh:]))
            self.built[service.name] = handler
        return handler

    def claim(self, roots: Sequence[Service]) -> None:
        """Before building: give every node of the new configuration whose value the
        previous runtime built its handler (reuse.py). Level by level from the routes,
        so a whole unchanged subtree is claimed before any of its nodes could be taken
        by a changed parent elsewhere: equal nodes that were separate stay separate,
        and one shared stays shared."""
        if not self._previous:
            return
        level = list({r.name: r for r in roots}.values())
        while level:
            below: dict[str, Service] = {}
            for node in level:
                if node.name in self.built:
                    continue
                candidates = self._previous.get(self.keys(node))
                if candidates:
                    self._take(node, candidates.pop())
                else:
                    for child in _children_of(node):
                        below.setdefault(child.name, child)
            level = list(below.values())

    def _take(self, service: Service, node: BuiltNode) -> None:
        """``service`` (and its subtree, child by child) gets ``node``'s handler."""
        key = self.keys(service)
        self.built[service.name] = node.handler
        self.reads[service.name] = node.reads
        self._records[service.name] = (key, node)
        self._reused.add(service.name)
        self.nodes.setdefault(key, []).append(node)
        self.reused += 1
        for child, (child_key, child_node) in zip(
            _children_of(service), node.children, strict=True
        ):
            if child.name in self.built:
                continue  # shared below two parents, taken already
            left = self._previous.get(child_key, [])
            for i, other in enumerate(left):
                if other is child_node:
                    del left[i]
                    break
            self._take(child, child_node)

    def _record(self, service: Service, handler: ASGIApp, checkers: tuple[object, ...]) -> None:
        """Remember a freshly built node for the next reload (reuse.py)."""
        if isinstance(service, ServersService):
            checkers = checkers[-1:] if service.health_check is not None else ()
        else:
            checkers = ()
        children = tuple(self._records[child.name] for child in _children_of(service))
        key = self.keys(service)
        node = BuiltNode(handler, self.reads[service.name], checkers, children)
        self.nodes.setdefault(key, []).append(node)
        self._records[service.name] = (key, node)

    def chain(self, route: ConfigRoute, handler: ASGIApp) -> ASGIApp:
        """``handler`` behind ``route``'s middlewares: the previous runtime's chain (its
        instances and their state: rate-limit buckets, in-flight counts, a breaker's
        window) when the route's value and ``handler`` are unchanged, else new ones."""
        key = route_key(route, self.keys)
        found = self._previous_chains.pop(key, None)
        chain = found[1] if found is not None and found[0] is handler else None
        if chain is None:
            # The router hands the chain its own copy of each request's scope.
            chain = wrap(handler, route.middlewares, self.build, owned=True)
        self.chains[key] = (handler, chain)
        return chain

    def all_checkers(self) -> list[ServerHealthChecker]:
        """Every health checker of the runtime: fresh ones and those of reused nodes."""
        seen: dict[int, ServerHealthChecker] = {}
        for nodes in self.nodes.values():
            for node in nodes:
                for checker in node.checkers:
                    if isinstance(checker, ServerHealthChecker):
                        seen[id(checker)] = checker
        return list(seen.values())

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
            key = self.keys(service.transport)
            found = self.holders.get(key) or self._previous_holders.get(key)
            if found is None:
                found = ClientHolder(
                    transport=service.transport, copy_idle=self.pool.limits.max_in_flight
                )
            holder = self.holders[key] = found
        servers = [
            Server(url, holder, pass_host_header=service.pass_host_header)
            for url in service.servers
        ]
        # Whether the strategy reads answers, even where its balancer is left out below.
        self.reads[service.name] = SERVERS_STRATEGIES[service.strategy].reads_answers
        if not servers:
            return _no_server
        checked = service.health_check
        if self.metrics is not None:  # Traefik's metrics middleware around each server
            observe_servers(self.metrics, service.name, servers)
        if len(servers) == 1 and service.sticky is None and checked is None and not service.fenced:
            return servers[0]  # a balancer of one adds nothing observable
        balancer = self._servers_balancer(service, servers)
        if checked is not None:
            self.health_checkers.append(
                ServerHealthChecker(
                    service.name,
                    checked,
                    balancer
                    if self.metrics is None
                    else record_server_up(self.metrics, service.name, balancer),
                    [s.url for s in servers],
                    holder,
                )
            )
        return balancer

    def _servers_balancer(self, service: ServersService, servers: list[Server]) -> ServersBalancer:
        """The balancer ``strategy`` names for a Service's servers, each server named by
        its URL, the fenced ones (terminating endpoints) named to it. ``hrw`` has no
        sticky sessions, in Traefik either (the config layer drops them)."""
        strategy = SERVERS_STRATEGIES[service.strategy]
        return strategy(
            [Child(s.url, s) for s in servers],
            sticky=service.sticky,
            rng=self.rng,
            health_check=service.health_check is not None,
            fenced=service.fenced,
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
                # A counted copy needs its answer's status: never detached then.
                detached=not self.reads_answers(m.service) and self.metrics is None,
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
            if service.main.name in self._reused:
                # A main kept from the previous runtime: hold the new failover weakly
                # (the old one dies with its runtime) and tell it the main's health now.
                updater = _weak_updater(failover.set_handler_status)
                with contextlib.suppress(HealthCheckNotEnabled):
                    main.register_status_updater(updater)
                    up = _aggregate_up(main)
                    if up is not None and not up:
                        failover.set_handler_status(False)
            else:
                with contextlib.suppress(HealthCheckNotEnabled):
                    main.register_status_updater(failover.set_handler_status)
        return self._node(service, failover, [service.main, service.fallback])


def _children_of(service: Service) -> list[Service]:
    if isinstance(service, (WeightedService, HRWService)):
        return [c.service for c in service.children]
    if isinstance(service, MirroringService):
        return [service.main, *(m.service for m in service.mirrors)]
    if isinstance(service, FailoverService):
        return [service.main, service.fallback]
    return []


def _weak_updater(method: Callable[[bool], None]) -> Callable[[bool], None]:
    """A status updater that does not keep its (bound) method's object alive."""
    ref = weakref.WeakMethod(method)

    def updater(up: bool) -> None:
        target = ref()
        if target is not None:
            target(up)

    return updater


def _aggregate_up(handler: object) -> bool | None:
    """Whether a health-checked balancer has a child UP now (None: unknown)."""
    status = getattr(handler, "_status", None)
    up = getattr(status, "up", None)
    return bool(up) if isinstance(up, set) else None


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

    def __init__(self, balancer: ASGIApp, service: ServersService, build: ServiceBuilder) -> None:
        self.balancer = balancer
        self.app = wrap(balancer, service.middlewares, build)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def register_status_updater(self, updater: StatusUpdater) -> None:
        if not isinstance(self.balancer, StatusUpdaterSource):
            raise HealthCheckNotEnabled("the service has no health check")
        self.balancer.register_status_updater(updater)


def _route(route: ConfigRoute, builder: _Builder) -> Route:
    """A router, or a parent router and its children (multi-layer routing). A router's
    middlewares are built for it alone (one instance per router, as in Traefik)."""
    checkpoint()
    if route.children or route.service is None:
        children = tuple(_route(child, builder) for child in route.children)
        return Route(route.name, route.rule, _no_matching_child, children)
    handler = builder.build(route.service)
    if route.middlewares:  # else no wrapper at all: the plain route's path is unchanged
        handler = builder.chain(route, handler)
    # (router, top-level service), provider-qualified: the labels Traefik records.
    observed = (f"{route.name}@kubernetescrd", f"{route.service.name}@kubernetescrd")
    return Route(route.name, route.rule, handler, observed=observed)


def _services(routes: Sequence[ConfigRoute]) -> list[Service]:
    """Every route's service, children routers included (what reuse claims from)."""
    found: list[Service] = []
    for route in routes:
        if route.service is not None:
            found.append(route.service)
        found.extend(_services(route.children))
    return found


def build_runtime(
    config: Config,
    options: GatewayOptions | None = None,
    metrics: Metrics | None = None,
    *,
    previous: Runtime | None = None,
) -> Runtime:
    """Turn ``config`` into a :class:`~.runtime.Runtime`, each service built once, with
    the mirror pool, the clients and the balancer order ``options`` ask for.

    With ``previous`` (a live reload, the same ``options``), every service node whose
    resolved value did not change keeps ``previous``' handler, state included, and so
    does every unchanged ServersTransport's client; the mirror pool and the default
    client are ``previous``' own (see ``reuse.py``). Builds no task and needs no event
    loop, so a reload may run it in a thread. Each server is counted in ``metrics`` if
    given (the same object across reloads, so counters carry on).
    """
    options = options or GatewayOptions()
    if previous is not None:
        pool, holder = previous.mirror_pool, previous.holder
    else:
        pool = MirrorPool(options.mirror_limits)
        holder = ClientHolder(options.client, copy_idle=pool.limits.max_in_flight)
    builder = _Builder(holder, pool, options.rng or random.Random(), previous, metrics)
    builder.claim(_services(config.routes))
    routes = tuple(_route(r, builder) for r in config.routes)
    return Runtime(
        routes=routes,
        holders=(holder, *builder.holders.values()),
        health_checks=HealthChecks(builder.all_checkers()),
        mirror_pool=pool,
        nodes={key: tuple(nodes) for key, nodes in builder.nodes.items()},
        transports=dict(builder.holders),
        reused=builder.reused,
        chains=builder.chains,
    )
