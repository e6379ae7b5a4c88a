"""Traefik's ``failover`` service: a main service, and a fallback for when it fails.

Port of ``pkg/server/service/loadbalancer/failover/`` (Traefik 3.7), which decides in
two ways, checked in this order:

* **Health.** The main and the fallback each have a status, both UP from the start.
  Only a status updater changes them (:meth:`Failover.set_handler_status`,
  :meth:`Failover.set_fallback_status`: Traefik's ``SetHandlerStatus`` /
  ``SetFallbackHandlerStatus``). Main UP: the main serves; else fallback UP: the
  fallback serves; else ``503 Service Unavailable`` (Go's ``http.Error``). The builder
  registers :meth:`Failover.set_handler_status` on the main service when the main
  accepts it, i.e. a Service reference with a ``healthCheck``, as Traefik does; the
  CRD has no ``healthCheck`` on the failover itself, so the fallback is always UP. The
  failover reports ``main UP or fallback UP`` to its own parents, only when it changes
  and only if it was built with a health check (:meth:`register_status_updater`).
* **Status codes** (``errors.status``, new in 3.7). While the main is UP, the request
  body is first read whole, up to ``maxRequestBodyBytes`` (-1, the default: no limit;
  more: ``413 Request body too large``, before the main sees anything), because the
  request may have to be sent twice. If the main answers a status in one of the ranges,
  its response is dropped whole (status, headers and body: the client never sees any of
  it) and the same request, body included, goes to the fallback, whatever the fallback
  answers. Any other status is the client's answer, streamed as it comes.

A WebSocket handshake takes the same path: a refusal by the main (``502``, ``503``,
the backend's own status) in the ranges hands the handshake to the fallback; an accepted
upgrade is the main's, as in Go, where a ``101`` is written on the hijacked connection
and never through the failover's ``WriteHeader``. A refusal the ASGI server can only
express as a ``websocket.close`` (no ``websocket.http.response`` extension) carries no
status and is passed on as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import DEFAULT_MAX_REQUEST_BODY_BYTES
from ..entrypoint.context import forward_of
from ..responses import send_go_error
from ._status import StatusUpdater, StatusUpdaters
from .body import read_body, replay_live

__all__ = ["Failover", "StatusRanges", "in_ranges"]

StatusRanges = tuple[tuple[int, int], ...]
"""Inclusive ``(low, high)`` status ranges, Traefik's ``types.HTTPCodeRanges``."""

# Messages that start a response and carry its status.
_STATUS_STARTS = frozenset({"http.response.start", "websocket.http.response.start"})
# Messages that settle a WebSocket handshake without a status to look at.
_HANDSHAKE_ENDS = frozenset({"websocket.accept", "websocket.close"})


def in_ranges(ranges: StatusRanges, status: int) -> bool:
    """Whether ``status`` is in one of ``ranges`` (``HTTPCodeRanges.Contains``)."""
    return any(low <= status <= high for low, high in ranges)


class _Intercept:
    """The main service's ``send``: holds back a response whose status is in the ranges
    (Traefik's failover ``responseWriter``) and passes any other one through."""

    __slots__ = ("_ranges", "_send", "decided", "need_fallback")

    def __init__(self, send: Send, ranges: StatusRanges) -> None:
        self._send = send
        self._ranges = ranges
        self.decided = False
        self.need_fallback = False

    async def __call__(self, message: Message) -> None:
        if not self.decided:
            kind = message["type"]
            if kind in _STATUS_STARTS:
                self.decided = True
                if in_ranges(self._ranges, int(message["status"])):
                    self.need_fallback = True
                    return
            elif kind in _HANDSHAKE_ENDS:
                self.decided = True
        elif self.need_fallback:
            return  # the body (or trailers) of the dropped response
        await self._send(message)


class Failover:
    """An ASGI app serving requests from ``main``, or from ``fallback`` when the main is
    down or (with ``status`` ranges) answers one of those statuses."""

    __slots__ = (
        "__weakref__",  # a reloaded main holds its new failover weakly (builder.py)
        "_fallback",
        "_fallback_up",
        "_main",
        "_main_up",
        "_max_request_body_bytes",
        "_ranges",
        "_updaters",
        "fallback_picks",
        "main_picks",
        "name",
    )

    reads_answers: ClassVar[bool] = True
    """True: reads the main's status to choose the fallback, so a mirror copy through
    it keeps its whole exchange (see :mod:`traefikservice_asgi.builder`)."""

    def __init__(
        self,
        main: ASGIApp,
        fallback: ASGIApp,
        *,
        status: Sequence[tuple[int, int]] = (),
        max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES,
        health_check: bool = False,
        name: str = "",
    ) -> None:
        for low, high in status:
            if low > high:
                raise ValueError(f"status range {low}-{high} is empty")
        if max_request_body_bytes < -1:
            raise ValueError(
                f"max_request_body_bytes must be -1 (no limit) or more, "
                f"got {max_request_body_bytes}"
            )
        self.name = name
        self._main = main
        self._fallback = fallback
        self._ranges: StatusRanges = tuple((int(lo), int(hi)) for lo, hi in status)
        self._max_request_body_bytes = max_request_body_bytes
        self._main_up = True
        self._fallback_up = True
        self._updaters = StatusUpdaters(enabled=health_check, kind="failover")
        # Requests handed to each (metrics, own.py); with status ranges, a request the
        # main answered with one of them counts for both.
        self.main_picks = 0
        self.fallback_picks = 0

    # ------------------------------------------------------------------ health hooks

    @property
    def up(self) -> bool:
        """What the failover reports to its parents: main UP or fallback UP."""
        return self._main_up or self._fallback_up

    def register_status_updater(self, updater: StatusUpdater) -> None:
        """Call ``updater(up)`` whenever :attr:`up` changes. As in Traefik, only a
        failover built with a health check reports its status."""
        self._updaters.register(updater)

    def set_handler_status(self, up: bool) -> None:
        """The main service's status updater (Traefik's ``SetHandlerStatus``)."""
        if up == self._main_up:
            return
        self._main_up = up
        self._propagate()

    def set_fallback_status(self, up: bool) -> None:
        """The fallback's status updater (Traefik's ``SetFallbackHandlerStatus``)."""
        if up == self._fallback_up:
            return
        self._fallback_up = up
        self._propagate()

    def _propagate(self) -> None:
        self._updaters.notify(self.up)

    @property
    def sticky(self) -> None:
        """Never sticky."""
        return None

    def picks(self) -> list[tuple[str, int, float]]:
        """(``main`` or ``fallback``, requests handed to it, weight 1)."""
        return [("main", self.main_picks, 1.0), ("fallback", self.fallback_picks, 1.0)]

    # ----------------------------------------------------------------------- serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._main_up:
            self.main_picks += 1
            if not self._ranges:
                await self._main(scope, receive, send)
                return
            first = await self._first_message(scope, receive, send)
            if first is None:
                return
            intercept = _Intercept(send, self._ranges)
            main_receive = receive if first is _NO_BODY else replay_live(first, receive)
            await self._main(scope, main_receive, intercept)
            if not intercept.need_fallback:
                return
            receive = receive if first is _NO_BODY else replay_live(first, receive)
        if self._fallback_up:
            self.fallback_picks += 1
            await self._fallback(scope, receive, send)
            return
        await send_go_error(send, 503, "Service Unavailable")

    async def _first_message(self, scope: Scope, receive: Receive, send: Send) -> Message | None:
        """What must be replayed to the fallback: the WebSocket's ``websocket.connect``
        or the whole request body (:data:`_NO_BODY` when there is none to read). None
        when the request ends here: the client left, or the body is over the limit
        (then answered ``413`` as Traefik does)."""
        if scope["type"] == "websocket":
            message = await receive()
            return message if message["type"] == "websocket.connect" else None
        if not forward_of(scope).has_body:
            return _NO_BODY
        buffered = await read_body(receive, self._max_request_body_bytes)
        if buffered.disconnected:
            return None
        if buffered.too_large:
            await send_go_error(send, 413, "Request body too large")
            return None
        return {"type": "http.request", "body": buffered.data, "more_body": False}


# A request without a body: the client's own ``receive`` is handed on untouched, as Go
# hands on ``http.NoBody``.
_NO_BODY: Message = {"type": "http.request", "body": b"", "more_body": False}
