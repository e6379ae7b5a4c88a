"""Traefik's ``p2c`` servers strategy: the power of two random choices.

Port of ``pkg/server/service/loadbalancer/p2c/p2c.go`` (Traefik 3.7), the balancer a
Kubernetes Service reference with ``strategy: p2c`` gets for its servers. For each
request:

1. the candidates are the healthy servers that are not fenced (terminating endpoints
   still serving), in the order they were added (shuffled, as Traefik shuffles them);
   none: ``503 no available server`` (Go's ``http.Error``); one: that one;
2. two indexes are drawn, ``n1 = Intn(len)`` and ``n2 = Intn(len)``; if they are
   equal, ``n2 = (n2 + 1) % len``, so two distinct servers are always compared;
3. the second server wins only with *strictly* fewer requests in flight; on a tie the
   first one does.

(``fenced`` names the terminating servers: the builder passes those of an
EndpointSlice with ``terminating: true``.)

A request is in flight from the moment the server is handed it until its handler
returns (the response body sent), counted per server on the sticky path too, as Go's
``namedHandler`` wraps both. Weights play no part (Go's ``AddServer`` ignores them).

With a sticky cookie (``sticky.cookie`` on the Service reference), a request whose
cookie pins a healthy server goes to it (a fenced one too, as in Go); every other pick
gets a ``Set-Cookie`` for the picked server, written before the server runs.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import ClassVar

from starlette.types import Receive, Scope, Send

from ..config.models import CookieOptions
from ..responses import send_go_error
from ._child import Child
from ._status import ChildStatus, StatusUpdater, StatusUpdaters
from .sticky import StickyCookie, with_set_cookie

__all__ = ["BALANCER", "PowerOfTwoChoices"]


class _Server:
    """A server with its in-flight count (Go's ``namedHandler``)."""

    __slots__ = ("handler", "inflight", "name", "picks", "weight")

    def __init__(self, child: Child) -> None:
        self.name = child.name
        self.handler = child.handler
        self.weight = float(child.weight)
        self.inflight = 0
        self.picks = 0  # requests handed to this server (metrics, own.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.picks += 1
        self.inflight += 1
        try:
            await self.handler(scope, receive, send)
        finally:
            self.inflight -= 1


class PowerOfTwoChoices:
    """An ASGI app sending each request to the less busy of two random servers."""

    __slots__ = ("_by_name", "_fenced", "_rng", "_servers", "_status", "_sticky", "_up", "name")

    reads_answers: ClassVar[bool] = True
    """True: counts a request in flight until it is answered, so a mirror copy through
    it keeps its whole exchange (see :mod:`traefikservice_asgi.builder`)."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        sticky: CookieOptions | None = None,
        rng: random.Random | None = None,
        health_check: bool = False,
        fenced: Collection[str] = (),
        name: str = "",
    ) -> None:
        self.name = name
        self._rng = rng or random.Random()
        order = list(children)
        self._rng.shuffle(order)
        self._servers = [_Server(child) for child in order]
        self._fenced = frozenset(fenced)
        self._status = ChildStatus(
            (s.name for s in self._servers), StatusUpdaters(enabled=health_check, kind="P2C")
        )
        self._up = self._status.up  # the same set, read on every request
        self._by_name = {s.name: s for s in self._servers}
        self._sticky = StickyCookie(sticky, self._by_name) if sticky is not None else None

    def set_status(self, child: str, up: bool) -> None:
        """Mark a server healthy or not (Traefik's ``SetStatus``); parents hear of it
        only when the balancer as a whole goes down or comes back."""
        self._status.set(child, up)

    def register_status_updater(self, updater: StatusUpdater) -> None:
        """Call ``updater(up)`` when the balancer goes from some server UP to none, or
        back. As in Traefik, only a balancer built with a health check reports it."""
        self._status.updaters.register(updater)

    def inflight(self, child: str) -> int:
        """The number of requests ``child`` is serving now."""
        return self._by_name[child].inflight

    @property
    def sticky(self) -> StickyCookie[_Server] | None:
        """The sticky cookie, with its hit and rewrite counts (None: not sticky)."""
        return self._sticky

    def picks(self) -> list[tuple[str, int, float]]:
        """(server, requests handed to it, weight) for each server."""
        return [(s.name, s.picks, s.weight) for s in self._servers]

    def next_child(self) -> str | None:
        """Draw the next pick without serving it; the server's name, or None."""
        server = self._next()
        return server.name if server is not None else None

    def _next(self) -> _Server | None:
        up, fenced = self._up, self._fenced
        healthy = [s for s in self._servers if s.name in up and s.name not in fenced]
        if not healthy:
            return None
        if len(healthy) == 1:
            return healthy[0]
        n = len(healthy)
        n1, n2 = self._rng.randrange(n), self._rng.randrange(n)
        if n2 == n1:
            n2 = (n2 + 1) % n
        h1, h2 = healthy[n1], healthy[n2]
        return h2 if h2.inflight < h1.inflight else h1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sticky = self._sticky
        if sticky is not None:
            pinned, pinned_send = sticky.pinned(scope, self._up, send)
            if pinned is not None:
                await pinned(scope, receive, pinned_send)
                return
        server = self._next()
        if server is None:
            await send_go_error(send, 503, "no available server")
            return
        if sticky is not None:
            send = with_set_cookie(send, sticky.header_for(server.name))
        await server(scope, receive, send)


BALANCER = PowerOfTwoChoices
"""The class serving ``strategy: p2c`` (config.models.STRATEGIES)."""
