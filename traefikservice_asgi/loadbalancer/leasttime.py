"""Traefik's ``leasttime`` servers strategy: the fastest, least busy server.

Port of ``pkg/server/service/loadbalancer/leasttime/leasttime.go`` (Traefik 3.7), the
balancer a Kubernetes Service reference with ``strategy: leasttime`` gets for its
servers. Each server keeps the time to first byte (TTFB) of its last 100 responses, in
whole milliseconds (Go's ``Duration.Milliseconds`` truncates: a 0.9 ms answer counts
0), and a count of requests in flight. For each request, among the healthy servers
that are not fenced (none: ``503 no available server``; one: that one):

    score = average TTFB (ms, 0 before the first sample) * (1 + in flight) / weight

The lowest score wins. Servers tied at the lowest score are separated by an earliest
deadline first schedule, Go's ``selectWRR``: the first candidate (in the order servers
were added, shuffled as Traefik shuffles them) with the strictly smallest deadline wins
and its deadline grows by ``1 / weight``. Deadlines start staggered: each server added
gets the previous one's deadline plus ``1 / weight`` (1, 2, 3... for weights 1), so
with two equally fast servers the picks go A A B A B A B... A pick that is not a tie
leaves the deadlines alone.

Fenced servers (terminating endpoints still serving, named by ``fenced``: the builder
passes those of an EndpointSlice with ``terminating: true``) are never picked, only
reached through a sticky cookie.

TTFB is the time from handing the request to the server to the start of its response
(``http.response.start``; for a WebSocket the ``websocket.accept`` or the refusal),
Go's ``httptrace.GotFirstResponseByte`` on the proxy's round trip. A ``502``/``504``
the gateway writes itself (the server never answered) is no sample, as Go's trace never
fires for it.

With a sticky cookie (``sticky.cookie`` on the Service reference), a request whose
cookie pins a healthy server goes straight to it, neither counted in flight nor timed,
as in Go (its sticky table holds the bare handlers); every other pick gets a
``Set-Cookie`` for the picked server, written before the server runs. A server with
weight <= 0 is never added, not even to the sticky table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Sequence
from typing import ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.models import CookieOptions
from ..entrypoint.context import is_no_backend_answer
from ..responses import send_go_error
from ._child import Child
from ._status import ChildStatus, StatusUpdater, StatusUpdaters
from .sticky import StickyCookie, with_set_cookie

__all__ = ["BALANCER", "SAMPLE_SIZE", "LeastTime"]

SAMPLE_SIZE = 100
"""Response times kept per server (Go's ``sampleSize``)."""

# The messages that start a response: the server's first byte reached the gateway.
_FIRST_BYTE = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)


class _Server:
    """A server with its weight, deadline, in-flight count and TTFB ring buffer (Go's
    ``namedHandler``)."""

    __slots__ = (
        "count",
        "deadline",
        "handler",
        "inflight",
        "name",
        "picks",
        "samples",
        "slot",
        "total",
        "weight",
    )

    def __init__(self, child: Child, deadline: float) -> None:
        self.name = child.name
        self.handler: ASGIApp = child.handler
        self.weight = float(child.weight)
        self.deadline = deadline
        self.inflight = 0
        self.picks = 0  # requests handed to this server (metrics, own.py)
        self.samples = [0.0] * SAMPLE_SIZE
        self.slot = 0
        self.total = 0.0
        self.count = 0

    def record(self, ms: int) -> None:
        """Add one TTFB sample, replacing the oldest once the buffer is full."""
        value = float(ms)
        if self.count < SAMPLE_SIZE:
            self.count += 1
        else:
            self.total -= self.samples[self.slot]
        self.samples[self.slot] = value
        self.total += value
        self.slot = (self.slot + 1) % SAMPLE_SIZE

    def average(self) -> float:
        """The average TTFB in milliseconds; 0 before the first sample."""
        return self.total / self.count if self.count else 0.0


class LeastTime:
    """An ASGI app sending each request to the server with the lowest TTFB score."""

    __slots__ = (
        "_by_name",
        "_clock",
        "_fenced",
        "_servers",
        "_status",
        "_sticky",
        "_up",
        "name",
    )

    reads_answers: ClassVar[bool] = True
    """True: times the first byte of each answer, so a mirror copy through it keeps its
    whole exchange (see :mod:`traefikservice_asgi.builder`)."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        sticky: CookieOptions | None = None,
        rng: random.Random | None = None,
        health_check: bool = False,
        fenced: Collection[str] = (),
        clock: Callable[[], int] = time.monotonic_ns,
        name: str = "",
    ) -> None:
        """``clock`` returns nanoseconds (``time.monotonic_ns``); tests pass their own."""
        self.name = name
        self._clock = clock
        order = list(children)
        (rng or random.Random()).shuffle(order)
        self._servers: list[_Server] = []
        current = 0.0
        for child in order:
            if child.weight <= 0:
                continue
            current += 1.0 / float(child.weight)  # staggered start, as Go's Add
            self._servers.append(_Server(child, current))
        self._fenced = frozenset(fenced)
        self._status = ChildStatus(
            (s.name for s in self._servers), StatusUpdaters(enabled=health_check, kind="LeastTime")
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

    def average_response_time(self, child: str) -> float:
        """``child``'s average TTFB in milliseconds over its last samples."""
        return self._by_name[child].average()

    @property
    def sticky(self) -> StickyCookie[_Server] | None:
        """The sticky cookie, with its hit and rewrite counts (None: not sticky)."""
        return self._sticky

    def picks(self) -> list[tuple[str, int, float]]:
        """(server, requests handed to it, weight) for each server that can be picked."""
        return [(s.name, s.picks, s.weight) for s in self._servers]

    def next_child(self) -> str | None:
        """Advance the schedule without serving; the picked server's name, or None."""
        server = self._next()
        return server.name if server is not None else None

    def _next(self) -> _Server | None:
        up, fenced = self._up, self._fenced
        healthy = [s for s in self._servers if s.name in up and s.name not in fenced]
        if not healthy:
            return None
        if len(healthy) == 1:
            return healthy[0]
        best = float("inf")
        candidates: list[_Server] = []
        for server in healthy:
            score = server.average() * (1 + server.inflight) / server.weight
            if score < best:
                best, candidates = score, [server]
            elif score == best:
                candidates.append(server)
        if len(candidates) == 1:
            return candidates[0]
        return _earliest_deadline(candidates)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sticky = self._sticky
        if sticky is not None:
            pinned, pinned_send = sticky.pinned(scope, self._up, send)
            if pinned is not None:
                pinned.picks += 1
                await pinned.handler(scope, receive, pinned_send)
                return
        server = self._next()
        if server is None:
            await send_go_error(send, 503, "no available server")
            return
        if sticky is not None:
            send = with_set_cookie(send, sticky.header_for(server.name))
        server.picks += 1
        server.inflight += 1
        try:
            await server.handler(scope, receive, self._timed(server, send))
        finally:
            server.inflight -= 1

    def _timed(self, server: _Server, send: Send) -> Send:
        """``send``, recording the server's TTFB when its response starts."""
        clock = self._clock
        started = clock()
        timed = False

        async def sender(message: Message) -> None:
            nonlocal timed
            if not timed and message["type"] in _FIRST_BYTE:
                timed = True
                if not is_no_backend_answer(message):
                    server.record((clock() - started) // 1_000_000)
            await send(message)

        return sender


def _earliest_deadline(candidates: list[_Server]) -> _Server:
    """Go's ``selectWRR``: the first candidate with the strictly smallest deadline; its
    deadline then grows by ``1 / weight``."""
    selected = candidates[0]
    smallest = float("inf")  # Go starts from math.MaxFloat64; deadlines are finite
    for server in candidates:
        if server.deadline < smallest:
            smallest, selected = server.deadline, server
    selected.deadline = smallest + 1.0 / selected.weight
    return selected


BALANCER = LeastTime
"""The class serving ``strategy: leasttime`` (config.models.STRATEGIES)."""
