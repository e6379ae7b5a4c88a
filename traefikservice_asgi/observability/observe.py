"""Recording requests where Traefik records them: the entry point and each server.

:class:`Observer` wraps the whole request at the entry point (Traefik's
``pkg/server/middleware/observability.go``): it counts the entry point families and
writes the access log line. :class:`ObservedServer` wraps each server of a servers load
balancer (Traefik's metrics middleware in ``getLoadBalancerServiceHandler``): it counts
the leaf service's families and tells the request's :class:`Exchange` which service,
URL and status answered, for the access log. Mirror copies are counted under their
own leaf service and leave the exchange alone.

A WebSocket is counted as Traefik counts it (``protocol="websocket"``): Go's reverse
proxy hijacks the connection after the backend's ``101`` without calling
``WriteHeader``, so Traefik's capture sees status ``0`` and no bytes, and the duration
is the whole conversation; a refused upgrade is counted as the response it is (its
status and body bytes). The messages exchanged once accepted are never counted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..entrypoint.context import is_copy
from .metrics import Metrics, ServiceStats, method_label, protocol_label

if TYPE_CHECKING:
    from .accesslog import AccessLog

__all__ = ["EXCHANGE", "Exchange", "ObservedServer", "Observer", "websocket_answer"]

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
    """What is known of one request, filled in as it goes through the tree."""

    __slots__ = (
        "body",
        "method",
        "origin_duration",
        "origin_size",
        "origin_status",
        "protocol",
        "request_bytes",
        "response_bytes",
        "router",
        "service",
        "start",
        "start_wall",
        "status",
        "url",
    )

    def __init__(self, scope: Scope, wall: bool = True) -> None:
        self.start = _perf()
        self.start_wall = time.time_ns() if wall else 0  # the access log's StartUTC
        self.method = method_label(scope.get("method", "GET"))
        self.protocol = protocol_label(scope)
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


class _Counted:
    """A ``send`` noting the status and counting the body bytes of an HTTP answer.

    A plain callable returning the next ``send``'s awaitable, not a coroutine function:
    a wrapper ``async def`` costs a coroutine object and a frame per message and per
    layer, which was most of what recording cost a request (bench/README.md)."""

    __slots__ = ("send", "size", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
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

    async def __call__(
        self,
        handler: Callable[..., Awaitable[None]],
        scope: Scope,
        receive: Receive,
        send: Send,
        *args: Any,
    ) -> None:
        exchange = Exchange(scope, self.wall)
        scope[EXCHANGE] = exchange
        counted = _Counted(send)
        forward = args[0] if args else None
        counted_receive: _CountedReceive | None = None
        if forward is not None and not forward.has_body:
            exchange.body = False  # nothing to count: no wrapper on receive
        else:
            receive = counted_receive = _CountedReceive(receive)
        try:
            await handler(scope, receive, counted, *args)
        finally:
            seconds = _perf() - exchange.start
            # 499: the client went away before any answer.
            exchange.status = counted.status or 499
            exchange.response_bytes = counted.size
            if counted_receive is not None:
                exchange.request_bytes = counted_receive.size
            self._record(scope, exchange, seconds)

    async def websocket(
        self,
        handler: Callable[..., Awaitable[None]],
        scope: Scope,
        receive: Receive,
        send: Send,
        *args: Any,
    ) -> None:
        """:meth:`__call__` for a ``websocket`` scope (see the module's docstring)."""
        exchange = Exchange(scope)
        exchange.body = False
        exchange.status = _NO_ANSWER
        scope[EXCHANGE] = exchange

        async def counted_send(message: Message) -> None:
            exchange.status, size = websocket_answer(message, exchange.status)
            exchange.response_bytes += size
            await send(message)

        try:
            await handler(scope, receive, counted_send, *args)
        finally:
            seconds = _perf() - exchange.start
            if exchange.status == _NO_ANSWER:
                exchange.status = 499  # the client went away before any answer
            self._record(scope, exchange, seconds)

    def _record(self, scope: Scope, exchange: Exchange, seconds: float) -> None:
        if self.rows is not None and self.metrics is not None:
            key = (exchange.status, exchange.method, exchange.protocol)
            self.metrics.observe(
                self.rows, key, seconds, exchange.request_bytes, exchange.response_bytes
            )
            if exchange.router is not None and self.metrics.options.add_routers_labels:
                group = self.metrics.router_rows.setdefault(exchange.router, {})
                self.metrics.observe(
                    group, key, seconds, exchange.request_bytes, exchange.response_bytes
                )
        if self.access_log is not None:
            self.access_log.log(scope, exchange, seconds)


class ObservedServer:
    """A server of a servers load balancer, counted under its leaf service."""

    __slots__ = ("addr", "metrics", "rows", "server", "stats", "url")

    def __init__(self, server: ASGIApp, url: str, stats: ServiceStats, metrics: Metrics) -> None:
        self.server = server
        self.url = url
        self.addr = urlsplit(url).netloc
        self.stats = stats
        self.rows = stats.rows
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        exchange: Exchange | None = scope.get(EXCHANGE)
        start = _perf()
        counted = _Counted(send)
        counted_receive: _CountedReceive | None = None
        if exchange is None or exchange.body:
            receive = counted_receive = _CountedReceive(receive)
        try:
            await self.server(scope, receive, counted)
        finally:
            seconds = _perf() - start
            status = counted.status or 499
            request_bytes = counted_receive.size if counted_receive is not None else 0
            if exchange is not None:
                key = (status, exchange.method, exchange.protocol)
            else:
                key = (status, method_label(scope.get("method", "GET")), protocol_label(scope))
            self.metrics.observe(self.rows, key, seconds, request_bytes, counted.size)
            if exchange is not None and not is_copy(scope):
                exchange.service = self.stats.name
                exchange.url = self.url
                exchange.origin_status = status
                exchange.origin_duration = seconds
                exchange.origin_size = counted.size

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """:meth:`__call__` for a ``websocket`` scope (never mirrored, no request body)."""
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
            await self.server(scope, receive, counted_send)
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
