"""Recording requests where Traefik records them: the entry point and each server.

:class:`Observer` records the whole request at the entry point (Traefik's
``pkg/server/middleware/observability.go``): it counts the entry point families and
writes the access log line. Each server of a servers load balancer holds a
:class:`ServerRecorder` (Traefik's metrics middleware in ``getLoadBalancerServiceHandler``):
it counts the leaf service's families and tells the request's :class:`Exchange` which
service, URL and status answered, for the access log. Mirror copies are counted under their
own leaf service and leave the exchange alone.

A WebSocket is counted as Traefik counts it (``protocol="websocket"``): Go's reverse
proxy hijacks the connection after the backend's ``101`` without calling
``WriteHeader``, so Traefik's capture sees status ``0`` and no bytes, and the duration
is the whole conversation; a refused upgrade is counted as the response it is (its
status and body bytes). The messages exchanged once accepted are never counted.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..entrypoint.context import COPY_KEY
from ..entrypoint.forwarding import Forward
from .metrics import METHODS, Metrics, Row, ServiceStats, method_label, protocol_label

if TYPE_CHECKING:
    from .accesslog import AccessLog

__all__ = ["EXCHANGE", "Exchange", "Observer", "ServerRecorder", "websocket_answer"]

EXCHANGE = "traefikservice_asgi.exchange"
"""The scope key of the request's :class:`Exchange`."""

_perf = time.perf_counter

_NO_ANSWER = -1
_WS_START = frozenset({"http.response.start", "websocket.http.response.start"})
_WS_BODY = frozenset({"http.response.body", "websocket.http.response.body"})


def websocket_answer(message: Message, status: int) -> tuple[int, int]:
    """(status, body bytes) of a WebSocket scope's outgoing ``message``, ``status`` being
    what was known before it (:data:`_NO_ANSWER` until an answer starts): ``0`` for an
    accepted upgrade (Traefik's hijacked connection), the refusal's own status, ``403``
    for a handshake closed before acceptance (what the ASGI server then answers)."""
    kind = message["type"]
    if kind in _WS_BODY:
        return status, len(message.get("body", b""))
    if status == _NO_ANSWER:
        if kind in _WS_START:
            return message["status"], 0
        if kind == "websocket.accept":
            return 0, 0
        if kind == "websocket.close":
            return 403, 0
    return status, 0


class Exchange:
    """What is known of one request, filled in as it goes through the tree. It is also
    the request's counted ``send`` at the entry point (see :class:`_Counted` for why a
    plain callable)."""

    UNANSWERED: ClassVar[int] = 0
    """The status until an answer starts (the client left first if it still is)."""

    __slots__ = (
        "body",
        "counted_receive",
        "logged",
        "method",
        "origin_duration",
        "origin_size",
        "origin_status",
        "protocol",
        "receive",
        "request_bytes",
        "response_bytes",
        "router",
        "send",
        "service",
        "start",
        "start_wall",
        "status",
        "url",
    )

    def __init__(
        self,
        scope: Scope,
        send: Send,
        receive: Receive,
        logged: bool = True,
        forward: Forward | None = None,
    ) -> None:
        self.start = _perf()
        #: Whether an access log line is written (which needs the fields below it).
        self.logged = logged
        self.start_wall = time.time_ns() if logged else 0  # the access log's StartUTC
        method = scope.get("method", "GET")
        self.method = method if method in METHODS else "EXTENSION_METHOD"
        # The entry point's Forward has the protocol; an embedded middleware makes its
        # Forward after routing.
        self.protocol = forward.protocol if forward is not None else protocol_label(scope)
        self.send = send
        self.receive = receive
        self.counted_receive: _CountedReceive | None = None
        self.status = 0
        self.body = True  # False once the request is known to have no body
        self.request_bytes = 0
        self.response_bytes = 0
        self.router: tuple[str, str] | None = None  # (router, its top-level service)
        self.service: str | None = None
        self.url: str | None = None
        self.origin_status = 0
        self.origin_duration = 0.0
        self.origin_size = 0

    def __call__(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.body":
            self.response_bytes += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.status = message["status"]
        return self.send(message)


class _WebSocketExchange(Exchange):
    """An :class:`Exchange` of a ``websocket`` scope: its ``send`` counts as Traefik
    counts a WebSocket (:func:`websocket_answer`); never a request body."""

    __slots__ = ()

    UNANSWERED = _NO_ANSWER  # 0 is an accepted upgrade

    def __call__(self, message: Message) -> Awaitable[None]:
        self.status, size = websocket_answer(message, self.status)
        self.response_bytes += size
        return self.send(message)


class _Counted:
    """A ``send`` noting the status and counting the body bytes of an HTTP answer, and
    when it began: a server's tally (:meth:`ServerRecorder.begin`).

    A plain callable returning the next ``send``'s awaitable, not a coroutine function:
    a wrapper ``async def`` costs a coroutine object and a frame per message and per
    layer, which was most of what recording cost a request (bench/README.md)."""

    __slots__ = ("receive", "send", "size", "start", "status")

    def __init__(self, send: Send, receive: _CountedReceive | None) -> None:
        self.start = _perf()
        self.send = send
        self.receive = receive
        self.status = 0
        self.size = 0

    def __call__(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.body":
            self.size += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.status = message["status"]
        return self.send(message)


class _CountedReceive:
    """A ``receive`` counting the request body's bytes (only where there is a body)."""

    __slots__ = ("receive", "size")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.size = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
        return message


class Observer:
    """The entry point's recording around the gateway's routing (``handler``)."""

    def __init__(self, metrics: Metrics | None, access_log: AccessLog | None) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.rows = metrics.entry_rows if metrics is not None else None
        self.wall = access_log is not None

    def begin(
        self, scope: Scope, receive: Receive, send: Send, forward: Forward | None
    ) -> Exchange:
        """Start recording the request ``scope``: route it with the exchange's
        ``receive`` and the exchange itself as ``send``, then call :meth:`end`. Two
        calls around the routing rather than a wrapping coroutine, which cost more
        than the counting (bench/README.md)."""
        if scope["type"] == "websocket":
            exchange: Exchange = _WebSocketExchange(scope, send, receive, self.wall, forward)
            exchange.body = False
            exchange.status = _NO_ANSWER
        else:
            exchange = Exchange(scope, send, receive, self.wall, forward)
            if forward is not None and not forward.has_body:
                exchange.body = False  # nothing to count: no wrapper on receive
            else:
                exchange.receive = exchange.counted_receive = _CountedReceive(receive)
        scope[EXCHANGE] = exchange
        return exchange

    def end(self, scope: Scope, exchange: Exchange) -> None:
        """Record the request :meth:`begin` started, however it ended."""
        seconds = _perf() - exchange.start
        if exchange.status == exchange.UNANSWERED:
            exchange.status = 499  # the client went away before any answer
        if exchange.counted_receive is not None:
            exchange.request_bytes = exchange.counted_receive.size
        self._record(scope, exchange, seconds)

    def _record(self, scope: Scope, exchange: Exchange, seconds: float) -> None:
        rows = self.rows
        if rows is not None and self.metrics is not None:
            key = (exchange.status, exchange.method, exchange.protocol)
            # Metrics.observe, inlined: this runs for every request.
            row = rows.get(key)
            if row is None:
                row = rows[key] = Row(self.metrics.size)
            row.count += 1
            row.sum += seconds
            row.buckets[bisect_left(self.metrics.bounds, seconds)] += 1
            row.request_bytes += exchange.request_bytes
            row.response_bytes += exchange.response_bytes
            if exchange.router is not None and self.metrics.options.add_routers_labels:
                group = self.metrics.router_rows.setdefault(exchange.router, {})
                self.metrics.observe(
                    group, key, seconds, exchange.request_bytes, exchange.response_bytes
                )
        if self.access_log is not None:
            self.access_log.log(scope, exchange, seconds)


class ServerRecorder:
    """Counts the exchanges of one server of a servers load balancer under its leaf
    service (Traefik's metrics middleware in ``getLoadBalancerServiceHandler``).

    The server calls :meth:`begin` and :meth:`end` around its own exchange rather than
    being wrapped in one more ASGI layer: that layer's coroutine was the largest part of
    what recording cost a request (bench/README.md)."""

    __slots__ = ("addr", "metrics", "rows", "stats", "url")

    def __init__(self, url: str, stats: ServiceStats, metrics: Metrics) -> None:
        self.url = url
        self.addr = urlsplit(url).netloc
        self.stats = stats
        self.rows = stats.rows
        self.metrics = metrics

    def begin(self, scope: Scope, receive: Receive, send: Send) -> _Counted:
        """Start counting: the server goes on with the tally as its ``send`` (and the
        tally's ``receive`` when not None)."""
        exchange: Exchange | None = scope.get(EXCHANGE)
        if exchange is None or exchange.body:
            return _Counted(send, _CountedReceive(receive))
        return _Counted(send, None)

    def end(self, scope: Scope, tally: _Counted) -> None:
        """Count the exchange that ``tally`` followed (whatever way it ended)."""
        seconds = _perf() - tally.start
        status = tally.status or 499
        exchange: Exchange | None = scope.get(EXCHANGE)
        if exchange is not None:
            key = (status, exchange.method, exchange.protocol)
        else:
            key = (status, method_label(scope.get("method", "GET")), protocol_label(scope))
        # Metrics.observe, inlined: this runs for every request a server answers.
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row(self.metrics.size)
        row.count += 1
        row.sum += seconds
        row.buckets[bisect_left(self.metrics.bounds, seconds)] += 1
        if tally.receive is not None:
            row.request_bytes += tally.receive.size
        row.response_bytes += tally.size
        if exchange is not None and exchange.logged and COPY_KEY not in scope:
            exchange.service = self.stats.name
            exchange.url = self.url
            exchange.origin_status = status
            exchange.origin_duration = seconds
            exchange.origin_size = tally.size

    async def websocket(self, server: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """``server``'s WebSocket exchange, counted (never mirrored, no request body)."""
        exchange: Exchange | None = scope.get(EXCHANGE)
        start = _perf()
        status = _NO_ANSWER
        response_bytes = 0

        async def counted_send(message: Message) -> None:
            nonlocal status, response_bytes
            status, size = websocket_answer(message, status)
            response_bytes += size
            await send(message)

        try:
            await server(scope, receive, counted_send)
        finally:
            seconds = _perf() - start
            if status == _NO_ANSWER:
                status = 499
            method = exchange.method if exchange is not None else "GET"
            self.metrics.observe(
                self.stats.rows, (status, method, "websocket"), seconds, 0, response_bytes
            )
            if exchange is not None:
                exchange.service = self.stats.name
                exchange.url = self.url
                exchange.origin_status = status
                exchange.origin_duration = seconds
                exchange.origin_size = response_bytes
