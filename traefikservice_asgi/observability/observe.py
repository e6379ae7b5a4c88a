"""Recording requests where Traefik records them: the entry point and each server.

:class:`Observer` records the whole request at the entry point (Traefik's
``pkg/server/middleware/observability.go``): it counts the entry point families and
writes the access log line. Each server of a servers load balancer holds a
:class:`ServerRecorder` (Traefik's metrics middleware in ``getLoadBalancerServiceHandler``):
it counts the leaf service's families and, with an access log, tells the request's
:class:`LoggedExchange` which service, URL and status answered. Mirror copies are counted
under their own leaf service and leave the exchange alone. Neither wraps a ``send`` for a
routed request: the entry point counts in ``serve_watched``'s wrappers, a server as it
relays (bench/README.md).

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
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..entrypoint.context import COPY_KEY
from ..entrypoint.forwarding import Forward
from ..entrypoint.lifecycle import CountingWatch
from .metrics import Key, Metrics, Row, ServiceStats, method_label, protocol_label

if TYPE_CHECKING:
    from .accesslog import AccessLog

__all__ = [
    "EXCHANGE",
    "Exchange",
    "LoggedExchange",
    "Observer",
    "ServerRecorder",
    "websocket_answer",
]

EXCHANGE = "traefikservice_asgi.exchange"
"""The scope key of the request's :class:`LoggedExchange` (set with an access log only)."""

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


class Exchange(CountingWatch):
    """What the entry point knows of one request: the client's state and its watch, which
    :func:`~..entrypoint.lifecycle.serve_watched` starts and counts the exchange into
    (status, body bytes each way), and the labels and start it is recorded with. Made by
    :meth:`Observer.begin` without an ``__init__`` frame (this runs per request)."""

    __slots__ = ("method", "protocol", "router", "start")

    # Made by a bare ``Exchange()``: object's own ``__init__``, run in C, rather than the
    # client state's (a Python frame), or ``object.__new__(Exchange)`` (an argument tuple
    # and checks): Observer.begin sets every field.
    __init__ = object.__init__

    start: float  # perf_counter
    method: str  # the request's method (its label, or EXTENSION_METHOD, is its row's)
    protocol: str  # Traefik's label: http, websocket, sse, grpc-web or grpc
    router: tuple[str, str] | None  # (router, its top-level service), once routed

    def counting(
        self, receive: Receive, send: Send, websocket: bool = False
    ) -> tuple[Receive, Send]:
        """``receive`` and ``send`` counting into this exchange, for an answer that
        does not go through ``serve_watched``'s counting wrappers: an unrouted request,
        one refused before routing, a WebSocket (counted as Traefik counts one:
        :func:`websocket_answer`; never a request body)."""
        counted = _Counting(self, receive, send)
        if websocket:
            return receive, counted.websocket_send
        return counted.receive, counted.send


class _Counting:
    """The counting ``receive`` and ``send`` of :meth:`Exchange.counting`. An object of
    its own: the exchange must not hold the server's ``send`` and ``receive``, whose
    owner (uvicorn's per-request cycle) holds the scope, which may hold the exchange;
    that reference cycle made every request garbage for the collector (bench/README.md).
    """

    __slots__ = ("_receive", "_send", "exchange")

    def __init__(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        self.exchange = exchange
        self._receive = receive
        self._send = send

    def send(self, message: Message) -> Awaitable[None]:
        # A plain call returning the next send's awaitable, not a coroutine (one per
        # message) as an ``async def`` would be.
        kind = message["type"]
        if kind == "http.response.body":
            self.exchange.response_bytes += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.exchange.status = message["status"]
        return self._send(message)

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.exchange.request_bytes += len(message.get("body", b""))
        return message

    def websocket_send(self, message: Message) -> Awaitable[None]:
        exchange = self.exchange
        exchange.status, size = websocket_answer(message, exchange.status)
        exchange.response_bytes += size
        return self._send(message)


class LoggedExchange(Exchange):
    """An :class:`Exchange` with what the access log also needs: when it began on the
    wall clock, and the server that answered (told by its :class:`ServerRecorder`)."""

    __slots__ = (
        "origin_duration",
        "origin_size",
        "origin_status",
        "service",
        "start_wall",
        "url",
    )

    start_wall: int  # time.time_ns(): the access log's StartUTC
    service: str | None
    url: str | None
    origin_status: int
    origin_duration: float
    origin_size: int


class _Rows:
    """The rows of one family (a dict keyed by labels), and the last request's labels and
    row: the next request nearly always has the same labels, and comparing them costs
    less than building and hashing the tuple key. The labels compared are the request's
    own (its status, ``-1`` or ``0`` when nothing was answered, and its method, not yet
    their labels), so that a request of the last one's labels skips those too. Rows are
    never removed from their dict (a removed service goes whole), so the row remembered
    stays the one counted."""

    __slots__ = ("method", "none", "protocol", "row", "rows", "size", "status")

    def __init__(self, rows: dict[Key, Row], size: int, none: int) -> None:
        self.rows = rows
        self.size = size
        self.none = none  # the status of no answer: counted as 499
        self.status = -2  # no status: the first request looks its row up
        self.method = self.protocol = ""
        self.row = Row(0)  # (never counted in: no request has status -2)

    def find(self, status: int, method: str, protocol: str) -> Row:
        """The row of a request that sent ``status`` (:attr:`none`: nothing, the client
        went away: 499), of ``method``, over ``protocol``; remembered as the last one."""
        key = (499 if status == self.none else status, method_label(method), protocol)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row(self.size)
        self.status, self.method, self.protocol, self.row = status, method, protocol, row
        return row


class Observer:
    """The entry point's recording around the gateway's routing (``handler``). With
    metrics and nothing else (no access log, no router families), it is a
    :class:`_CountingObserver`, whose :meth:`end` checks for neither."""

    def __new__(cls, metrics: Metrics | None, access_log: AccessLog | None) -> Observer:
        if (
            cls is Observer
            and metrics is not None
            and access_log is None
            and not metrics.options.add_routers_labels
        ):
            cls = _CountingObserver
        return object.__new__(cls)

    def __init__(self, metrics: Metrics | None, access_log: AccessLog | None) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.bounds = metrics.bounds if metrics is not None else (0.0,)
        self.first = self.bounds[0]
        self.rows = (
            _Rows(metrics.entry_rows, len(self.bounds) + 1, _NO_ANSWER)
            if metrics is not None
            else None
        )
        #: The metrics when they have router families (addRoutersLabels), else None.
        self.routers = (
            metrics if metrics is not None and metrics.options.add_routers_labels else None
        )

    def begin(self, scope: Scope, forward: Forward | None) -> Exchange:
        """Start recording the request ``scope``; :meth:`end` records it. Two calls
        around the routing rather than a wrapping coroutine, which cost more than the
        counting (bench/README.md). The routing hands the exchange to ``serve_watched``,
        which counts into it, or counts with :meth:`Exchange.counting`."""
        exchange: Exchange
        if self.access_log is None:
            exchange = Exchange()
        else:
            logged = LoggedExchange()
            logged.start_wall = time.time_ns()  # the access log's StartUTC
            logged.service = logged.url = None
            logged.origin_status = logged.origin_size = 0
            logged.origin_duration = 0.0
            scope[EXCHANGE] = exchange = logged  # for the servers' recorders
        exchange.start = _perf()
        # The client state's fields (CountingWatch's), set here: no __init__ frame.
        exchange.body_done = exchange.response_done = exchange.gone = False
        exchange.status = -1  # (_NO_ANSWER)
        exchange.request_bytes = exchange.response_bytes = 0
        exchange.router = None
        # The entry point's Forward has the labels; an embedded middleware makes its
        # Forward after routing.
        if forward is not None:
            exchange.method = forward.method
            exchange.protocol = forward.protocol
        else:
            exchange.method = scope.get("method", "GET")
            exchange.protocol = protocol_label(scope)
        return exchange

    def end(self, scope: Scope, exchange: Exchange) -> float:
        """Record the request :meth:`begin` started, however it ended (status -1: the
        client went away before any answer, 499); its seconds."""
        counted = self.rows is not None
        seconds = self.count(scope, exchange) if counted else _perf() - exchange.start
        if self.routers is not None and exchange.router is not None:
            status = exchange.status
            self.routers.observe(
                self.routers.router_rows.setdefault(exchange.router, {}),
                (499 if status == _NO_ANSWER else status, method_label(exchange.method),
                 exchange.protocol),
                seconds,
                exchange.request_bytes,
                exchange.response_bytes,
            )  # fmt: skip
        if self.access_log is not None:
            assert isinstance(exchange, LoggedExchange)
            if exchange.status == _NO_ANSWER:
                exchange.status = 499  # the client went away before any answer
            self.access_log.log(scope, exchange, seconds)
            # The exchange, as the client's watch, holds the server's receive and send,
            # whose owner (uvicorn's per-request cycle) holds this scope: out of it, no
            # reference cycle is left for the collector.
            scope.pop(EXCHANGE, None)
        return seconds

    def count(self, scope: Scope, exchange: Exchange) -> float:
        """Count the request :meth:`begin` started in its entry point row (with
        metrics); its seconds. Metrics.observe, inlined: this runs for every request."""
        seconds = _perf() - exchange.start
        rows: _Rows = self.rows  # type: ignore[assignment]
        # The last request's row when this one has its labels (nearly always): three
        # comparisons instead of a tuple and its lookup.
        if (
            exchange.status == rows.status
            and exchange.method == rows.method
            and exchange.protocol == rows.protocol
        ):
            row = rows.row
        else:
            row = rows.find(exchange.status, exchange.method, exchange.protocol)
        row.count += 1
        row.sum += seconds
        if seconds > self.first:  # (rarely: most requests are in the first bucket)
            row.over[bisect_left(self.bounds, seconds) - 1] += 1
        if exchange.request_bytes:  # (most requests have no body: no addition)
            row.request_bytes += exchange.request_bytes
        row.response_bytes += exchange.response_bytes
        return seconds


class _CountingObserver(Observer):
    """An :class:`Observer` with metrics only: its end is the counting alone."""

    end = Observer.count


class ServerRecorder:
    """Counts the exchanges of one server of a servers load balancer under its leaf
    service (Traefik's metrics middleware in ``getLoadBalancerServiceHandler``).

    The server tells :meth:`record` what it sent and read once its exchange is over,
    counted as it went (``proxy.http.Server``): no wrapping layer and no wrapped
    ``send``, whose calls were the largest part of what recording cost a request
    (bench/README.md)."""

    __slots__ = ("addr", "bounds", "first", "logged", "metrics", "rows", "stats", "url")

    def __init__(self, url: str, stats: ServiceStats, metrics: Metrics) -> None:
        self.url = url
        self.addr = urlsplit(url).netloc
        self.stats = stats
        self.rows = _Rows(stats.rows, len(metrics.bounds) + 1, 0)
        self.metrics = metrics
        self.bounds = metrics.bounds
        self.first = metrics.bounds[0]
        #: Whether an access log line is written, which names the server that answered.
        self.logged = metrics.options.access_log

    def record(
        self,
        scope: Scope,
        forward: Forward,
        start: float,
        status: int,
        response_bytes: int,
        request_bytes: int,
    ) -> None:
        """Count an exchange of ``forward`` begun at ``start`` (``perf_counter``) that
        sent ``status`` (0: none, the client went away: 499) and ``response_bytes`` of
        body, and read ``request_bytes`` of the request body."""
        seconds = _perf() - start
        # Metrics.observe, inlined: this runs for every request a server answers (the
        # last row again, as in Observer.end).
        rows = self.rows
        if (
            status == rows.status
            and forward.method == rows.method
            and forward.protocol == rows.protocol
        ):
            row = rows.row
        else:
            row = rows.find(status, forward.method, forward.protocol)
        row.count += 1
        row.sum += seconds
        if seconds > self.first:  # (rarely: most requests are in the first bucket)
            row.over[bisect_left(self.bounds, seconds) - 1] += 1
        if request_bytes:  # (most requests have no body: no addition)
            row.request_bytes += request_bytes
        row.response_bytes += response_bytes
        if self.logged and COPY_KEY not in scope:
            exchange: LoggedExchange | None = scope.get(EXCHANGE)
            if exchange is not None:
                exchange.service = self.stats.name
                exchange.url = self.url
                exchange.origin_status = status or 499
                exchange.origin_duration = seconds
                exchange.origin_size = response_bytes

    async def websocket(self, server: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """``server``'s WebSocket exchange, counted (never mirrored, no request body)."""
        start = _perf()
        status = _NO_ANSWER
        response_bytes = 0

        def counted_send(message: Message) -> Awaitable[None]:
            nonlocal status, response_bytes
            status, size = websocket_answer(message, status)
            response_bytes += size
            return send(message)

        try:
            await server(scope, receive, counted_send)
        finally:
            seconds = _perf() - start
            if status == _NO_ANSWER:
                status = 499
            exchange: Exchange | None = scope.get(EXCHANGE)
            method = scope.get("method", "GET")
            self.metrics.observe(
                self.stats.rows, (status, method_label(method), "websocket"), seconds, 0,
                response_bytes,
            )  # fmt: skip
            if isinstance(exchange, LoggedExchange):
                exchange.service = self.stats.name
                exchange.url = self.url
                exchange.origin_status = status
                exchange.origin_duration = seconds
                exchange.origin_size = response_bytes
