"""What a configuration becomes, as one object: :class:`Runtime`.

The routes with their service trees, the client holders they send through, the health
checks that follow their servers and the pool their mirror copies run in are made
together by :func:`~traefikservice_asgi.builder.build_runtime` and live and die together:
a reload will build a new runtime, swap the middleware's one reference, and close the
old one. Nothing in here is shared between two runtimes but a client the user passed in,
which no runtime closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp

from .healthcheck import HealthChecks
from .loadbalancer.mirror_pool import MirrorPool
from .rules import Rule
from .transport import ClientHolder

__all__ = ["Route", "Runtime"]


@dataclass(frozen=True, slots=True)
class Route:
    """A router: its name, compiled rule and the service tree it sends to."""

    name: str
    rule: Rule
    handler: ASGIApp
    #: (router, top-level service), provider-qualified: the labels Traefik records.
    observed: tuple[str, str] = ("", "")


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
