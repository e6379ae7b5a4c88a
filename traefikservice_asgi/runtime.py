"""What a configuration becomes, as one object: :class:`Runtime`.

The routes with their service trees, the client holders they send through, the health
checks that follow their servers and the pool their mirror copies run in are made
together by :func:`~traefikservice_asgi.builder.build_runtime` and live and die together:
a reload will build a new runtime, swap the middleware's one reference, and close the
old one once its requests are done (``reload.py``). A runtime built from a previous one
shares with it the nodes, ServersTransport clients, health checkers, default client and
mirror pool that did not change (``reuse.py``); closing the old one closes only what the
new one does not hold. A client the user passed in is closed by no runtime.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from starlette.types import ASGIApp

from .healthcheck import HealthChecks
from .loadbalancer._child import direct_call
from .loadbalancer.mirror_pool import MirrorPool
from .reuse import BuiltNode
from .rules import RequestView, Rule, host_key
from .transport import ClientHolder

__all__ = ["InFlight", "Route", "RouteIndex", "Runtime"]


class InFlight:
    """The requests (and WebSocket sessions) a runtime is serving: a reload closes the
    runtime it replaced once this falls to zero (or after a bounded wait)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


@dataclass(frozen=True, slots=True)
class Route:
    """A router: its name, compiled rule and the service tree it sends to.

    A parent router (multi-layer routing) has ``children``, highest priority first:
    once its rule matches, the first matching child's handler serves the request, and
    its own ``handler`` (a 404) only when none does.
    """

    name: str
    rule: Rule
    handler: ASGIApp
    children: tuple[Route, ...] = ()
    #: (router, top-level service), provider-qualified: the labels Traefik records.
    observed: tuple[str, str] = ("", "")
    #: What the router calls to run ``handler`` (its bound ``__call__``: direct_call).
    call: ASGIApp = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "call", direct_call(self.handler))

    def select(self, view: RequestView) -> Route | None:
        """The router that serves the request: this one, or one of its descendants;
        None when this rule does not match."""
        if not self.rule.matches(view):
            return None
        return self.under(view) if self.children else self

    def under(self, view: RequestView) -> Route:
        """Once this router's rule matched: the child that serves the request, or this
        router itself (whose handler answers Go's 404 when it has children)."""
        for child in self.children:
            found = child.select(view)
            if found is not None:
                return found
        return self


class RouteIndex:
    """The routes a request may match, in matching order, looked up by its host: a
    route whose rule requires one of some hosts (``Rule.hosts``) is listed under those
    only, every other route under every host. Each listed route's rule still decides;
    the index only spares a request the rules of routes for other hosts (25 routes
    tried in turn cost ~9 µs in process, see bench/README.md)."""

    __slots__ = ("_any", "_by_host")

    def __init__(self, routes: tuple[Route, ...]) -> None:
        # One pass over the routes (a pass per host was 20 ms with 1,000 hosts): a route
        # goes under each of its hosts, a route without under every host.
        keys = {key: None for route in routes for key in (route.rule.hosts or ())}
        by_host: dict[str, list[Route]] = {key: [] for key in keys}
        for route in routes:
            for key in keys if route.rule.hosts is None else route.rule.hosts:
                by_host[key].append(route)
        self._any = tuple(route for route in routes if route.rule.hosts is None)
        self._by_host = {key: tuple(listed) for key, listed in by_host.items()}

    def candidates(self, view: RequestView) -> tuple[Route, ...]:
        """The routes to try for the request behind ``view``, in matching order."""
        if not self._by_host:
            return self._any
        return self._by_host.get(host_key(view.host), self._any)


@dataclass(frozen=True, slots=True)
class Runtime:
    """The routes in matching order (highest priority first) and what they need.

    ``holders`` starts with the default one (the gateway's shared client), then one per
    ServersTransport. :meth:`start` starts the health checks (at the lifespan's startup,
    or on the first request without one); :meth:`aclose` stops them, then waits (bounded)
    for the mirror copies in flight, then closes the clients.
    """

    routes: tuple[Route, ...]
    holders: tuple[ClientHolder, ...]
    health_checks: HealthChecks
    mirror_pool: MirrorPool
    # Live reload (reuse.py): the built nodes by value, the ServersTransport clients by
    # value, how many nodes came from the previous runtime, the requests in flight.
    nodes: Mapping[Hashable, tuple[BuiltNode, ...]] = field(default_factory=dict)
    transports: Mapping[Hashable, ClientHolder] = field(default_factory=dict)
    reused: int = 0
    in_flight: InFlight = field(default_factory=InFlight, compare=False)
    # Live reload: each route's middleware chain by the route's value, with the service
    # handler it wraps (reuse.py), so an unchanged route keeps its middlewares' state.
    chains: Mapping[Hashable, tuple[ASGIApp, ASGIApp]] = field(default_factory=dict)
    index: RouteIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", RouteIndex(self.routes))

    @property
    def holder(self) -> ClientHolder:
        """The default holder: the client of every server without a ServersTransport."""
        return self.holders[0]

    @property
    def checking(self) -> bool:
        """Whether there are health checks to start."""
        return len(self.health_checks.checkers) > 0

    def start(self) -> None:
        """Start the health checks (idempotent)."""
        self.health_checks.start()

    async def aclose(self) -> None:
        """Stop the health checks, wait (bounded) for mirror copies in flight, then
        close the clients."""
        await self.health_checks.aclose()
        await self.mirror_pool.aclose()
        for holder in self.holders:
            await holder.aclose()
