"""Traefik's weighted round robin: earliest deadline first on a Go heap.

Port of ``pkg/server/service/loadbalancer/wrr/wrr.go`` (Traefik 3.7). Each child gets
``deadline = current + 1/weight`` when added; a pick pops the smallest deadline, makes it
current, adds ``1/weight`` and pushes the child back. Deadlines are float64 and the heap
sifts exactly like Go's, so the pick sequence equals Traefik's for any weights, float
drift included (3:5:7 diverges from the ideal cycle at request 44, in Traefik too).

Children are added in a random order, as Traefik shuffles them on every build: only
exact ties at the start depend on it (1:1 starts with either child). Pass ``rng`` to make
that order reproducible. A child with weight <= 0 is never added: it cannot be picked,
not even through a sticky cookie (Traefik issue #8157).

The same class is the servers load balancer of a Kubernetes Service (one child per
endpoint, weight 1, pinned by a cookie whose value hashes the server URL), as in v3.
There the health checker (:mod:`traefikservice_asgi.healthcheck`) marks servers down
and up with :meth:`WeightedRoundRobin.set_status`; a balancer built with
``health_check=True`` tells its parents when it has no server UP left, and when one
comes back (:mod:`._status`).

``fenced`` names the servers of terminating endpoints still serving (Traefik's
``Server.Fenced``): as in Go, they keep their place in the schedule and are skipped
like unhealthy ones, a sticky cookie naming one still reaches it (if UP), and they count
as UP for the parents. With no UP server left that is not fenced the answer is ``503 no
available server``: Go answers so when every server is fenced, and when only the
unfenced ones are down its pick loop never ends (a case the configuration cannot make:
Traefik health-checks only ExternalName Services, which have no endpoints to fence).
Nothing is fenced: the picks read the health set itself, so fencing costs nothing then.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Collection, Sequence
from typing import ClassVar

from starlette.types import Receive, Scope, Send

from ..config.models import CookieOptions
from ..responses import send_go_error
from . import _goheap
from ._child import Child, direct_call
from ._status import ChildStatus, StatusUpdater, StatusUpdaters
from .sticky import StickyCookie, with_set_cookie

__all__ = ["BALANCER", "Child", "WeightedRoundRobin"]


class _Entry:
    __slots__ = ("call", "deadline", "handler", "inverse", "name", "picks", "weight")

    def __init__(self, child: Child) -> None:
        self.name = child.name
        self.handler = child.handler
        self.call = direct_call(child.handler)  # what a pick calls
        self.weight = float(child.weight)
        self.inverse = 1.0 / self.weight
        self.deadline = 0.0
        self.picks = 0  # requests handed to this child (metrics, own.py)


class WeightedRoundRobin:
    """An ASGI app that hands each request to one child, in Traefik's order."""

    __slots__ = ("_current", "_heap", "_pickable", "_status", "_sticky", "_up", "name")

    reads_answers: ClassVar[bool] = False
    """False: picks a child without looking at the answer, so a mirror copy through it
    may be detached (see :mod:`traefikservice_asgi.builder`)."""

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
        self._heap: list[_Entry] = []
        self._current = 0.0
        order = list(children)
        (rng or random.Random()).shuffle(order)
        entries: dict[str, _Entry] = {}
        for child in order:
            if child.weight <= 0:
                continue
            entry = _Entry(child)
            entry.deadline = self._current + entry.inverse
            _goheap.push(self._heap, entry)
            entries[child.name] = entry
        self._status = ChildStatus(
            entries, StatusUpdaters(enabled=health_check, kind="weighted"), fenced
        )
        self._up = self._status.up  # the same set, read by the sticky path
        self._pickable = self._status.pickable  # the same set, read on every pick
        self._sticky = StickyCookie(sticky, entries) if sticky is not None else None

    def set_status(self, child: str, up: bool) -> None:
        """Mark a child healthy or not; an unhealthy child keeps its place in the
        schedule and is skipped when its turn comes, as in Traefik. Parents hear of it
        only when the balancer as a whole goes down or comes back."""
        self._status.set(child, up)

    def register_status_updater(self, updater: StatusUpdater) -> None:
        """Call ``updater(up)`` when the balancer goes from some child UP to none, or
        back. As in Traefik, only a balancer built with a health check reports it."""
        self._status.updaters.register(updater)

    @property
    def sticky(self) -> StickyCookie[_Entry] | None:
        """The sticky cookie, with its hit and rewrite counts (None: not sticky)."""
        return self._sticky

    def picks(self) -> list[tuple[str, int, float]]:
        """(child, requests handed to it, weight) for each child that can be picked."""
        return [(e.name, e.picks, e.weight) for e in self._heap]

    def next_child(self) -> str | None:
        """Advance the schedule; the name of the next healthy child, or None."""
        entry = self._next()
        return entry.name if entry is not None else None

    def _next(self) -> _Entry | None:
        heap, pickable = self._heap, self._pickable
        if not heap or not pickable:
            return None
        while True:
            entry = _goheap.pop_in_place(heap)
            self._current = entry.deadline
            entry.deadline += entry.inverse
            _goheap.push_in_place(heap)
            if entry.name in pickable:
                return entry

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain call returning the picked child's awaitable (no coroutine of its own,
        # which every resumption of the request would pass through), the child called
        # through its bound __call__ (bench/README.md, session 8).
        sticky = self._sticky
        if sticky is not None:
            pinned, pinned_send = sticky.pinned(scope, self._up, send)
            if pinned is not None:
                pinned.picks += 1
                return pinned.call(scope, receive, pinned_send)
        entry = self._next()
        if entry is None:
            return send_go_error(send, 503, "no available server")
        entry.picks += 1
        if sticky is not None:
            send = with_set_cookie(send, sticky.header_for(entry.name))
        return entry.call(scope, receive, send)


BALANCER = WeightedRoundRobin
"""The class serving ``strategy: wrr`` (config.models.STRATEGIES)."""
