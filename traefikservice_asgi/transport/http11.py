"""One HTTP/1.1 connection to a server: an :class:`asyncio.Protocol` with ``httptools``
(llhttp, the parser uvicorn uses) parsing responses.

Ports what a backend can see of Go's ``net/http`` client connection
(``net/http/transport.go``, ``persistConn``):

* one request at a time; the connection's lifecycle is an explicit
  :class:`ConnectionState` (``IDLE``, ``ACTIVE``, ``CLOSED``, as httpcore's
  ``HTTPConnectionState``), and everything one request/response pair needs lives in
  one :class:`_Exchange` (as uvicorn's ``RequestResponseCycle``), made fresh for each;
* a connection goes back to its pool only after its response was read to the end from
  the wire, the whole request body was sent, and neither side asked to close;
* a reused connection that the server closed before answering reports itself stale, so
  the pool retries the request once on a fresh connection (Go's ``isReplayable``);
* both bodies stream: a slow client pauses reading from the server (high-water mark);
* a mirror copy can be *detached*: the request is written and the connection itself
  reads the answer, discards it and reports the end of the exchange to the copy's owner
  (:class:`CopyOwner`), so a copy in flight costs a connection, not a task;
* a response ends where its framing says: bytes after it (a second response, a late
  ``100 Continue``, junk) are never parsed into it and make the connection unusable, as
  Go's ``persistConn.readLoop`` closes a connection whose peer sent unsolicited bytes;
  trailers are dropped, never taken for headers;
* errors are httpx's: ``RemoteProtocolError`` (unparsable or cut-short response),
  ``ReadError``/``WriteError`` (connection reset), ``ReadTimeout``/``WriteTimeout``. A
  response head Go's ``ReadResponse`` would refuse raises :class:`InvalidResponse`, which
  Traefik answers ``500`` (not ``502``: see the proxy's status mapping).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterable, AsyncIterator, Coroutine
from typing import Any, NamedTuple, Protocol, cast

import httptools
import httpx

from .request import Origin, RequestHead, UpstreamRequest

__all__ = [
    "ConnectionPool",
    "ConnectionState",
    "CopyOwner",
    "DetachedRequest",
    "HTTP11Connection",
    "InvalidResponse",
    "RawResponse",
]

# Response bytes buffered per connection before reading from the socket pauses: a slow
# client then slows the backend instead of the gateway buffering the whole body.
_HIGH_WATER = 256 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})
_OWS = b" \t"  # a header value's optional whitespace (bytes: `in` tests an int)


class ConnectionState(enum.Enum):
    """Where a connection is in its life."""

    IDLE = "idle"  # no exchange: in a pool, or just dialled
    ACTIVE = "active"  # an exchange is under way
    CLOSED = "closed"  # closed by either side: never used again


_IDLE = ConnectionState.IDLE
_ACTIVE = ConnectionState.ACTIVE
_CLOSED = ConnectionState.CLOSED


class RawResponse(NamedTuple):
    """A response head and its streaming body, as the gateway's transport returns it:
    no httpx objects. Iterate ``stream`` for the body; ``aclose`` it always."""

    status: int
    headers: list[tuple[bytes, bytes]]
    stream: ResponseStream
    http_version: bytes
    reason: bytes


_tuple_new = tuple.__new__


class CopyOwner(Protocol):
    """Who a detached exchange reports to (a mirror copy's job): the exchange is a part
    of it from :meth:`attach` until :meth:`detach`; a retry runs with :meth:`run`."""

    def attach(self, part: Any) -> bool: ...

    def detach(self, part: Any) -> None: ...

    def run(self, coro: Coroutine[Any, Any, None]) -> None: ...


class DetachedRequest(NamedTuple):
    """A detached copy's request, whole: what its connection writes, and what a retry
    on a fresh connection needs. One small object per copy in flight (a closure holding
    the same would be a dozen for the garbage collector to walk)."""

    payload: tuple[bytes, ...]
    close: bool
    request: UpstreamRequest


class ConnectionPool(Protocol):
    """What a connection needs of the pool it belongs to."""

    @property
    def closed(self) -> bool: ...

    def release(self, connection: HTTP11Connection) -> None: ...

    def forget(self, connection: HTTP11Connection) -> None: ...

    def redial(self, request: DetachedRequest, owner: CopyOwner) -> Coroutine[Any, Any, None]: ...

    def retry(
        self, request: UpstreamRequest, serialised: RequestHead
    ) -> Coroutine[Any, Any, RawResponse]: ...


class InvalidResponse(httpx.RemoteProtocolError):
    """The server sent something that is not a valid response head (unparsable, cut
    short after its first byte, an unsupported ``Transfer-Encoding``, a ``101`` nobody
    asked for). Go's transport returns such errors from ``RoundTrip`` as they are (not
    ``io.EOF``, not a ``net.OpError``), and Traefik's ``ComputeStatusCode`` maps them to
    ``500 Internal Server Error``, where a refused or reset connection is ``502``."""


class _Exchange:
    """One request/response pair on a connection: filled by the parser callbacks, read
    by the task handling the request (or, detached, by nobody)."""

    __slots__ = (
        "body",
        "buffered",
        "complete",
        "error",
        "framing_seen",
        "head_done",
        "head_request",
        "head_started",
        "head_timer",
        "headers",
        "owner",
        "reading_paused",
        "reason",
        "received_any",
        "request_close",
        "retry",
        "reusable",
        "sending",
        "status",
        "switched",
    )

    def __init__(self, head_request: bool, request_close: bool) -> None:
        self.head_request = head_request
        self.request_close = request_close
        self.sending = False
        self.received_any = False
        self.head_started = False  # a response's first byte was parsed
        self.head_done = False
        self.complete = False
        self.reusable = True
        self.error: httpx.TransportError | None = None
        self.status = 0
        self.reason = bytearray()
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.buffered = 0
        self.reading_paused = False
        # A header of Transfer-Encoding's length arrived: the head's framing needs the
        # look _framing_ok takes (most answers have none: no loop over their headers).
        self.framing_seen = False
        # A detached exchange (mirror copy): who to tell when it ends, the timer of the
        # server transport's responseHeaderTimeout, and the request to send again on a
        # fresh connection if this reused one turns out stale (None: no retry).
        self.owner: CopyOwner | None = None
        self.head_timer: asyncio.TimerHandle | None = None
        self.retry: DetachedRequest | None = None
        # After a 101: the bytes that followed its head in the same read (None: no 101).
        self.switched: bytes | None = None

    def ends_at_close(self) -> bool:
        """Whether the response body is delimited by the connection closing."""
        if self.status in _NO_BODY_STATUSES:
            return False
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length":
                return False
            if lower == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True


class HTTP11Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: writes one request at a time and parses its response.

    Parser callbacks fill the current :class:`_Exchange`; the task handling the request
    waits on ``_waiter`` for "head arrived", "body data", "complete" or an error. A
    handle on an exchange that has ended (a response stream closed twice) is ignored.
    """

    __slots__ = (
        "_drain_waiter",
        "_parser",
        "_parser_dirty",
        "_pool",
        "_transport",
        "_waiter",
        "_write_paused",
        "exchange",
        "for_copy",
        "idle_since",
        "loop",
        "origin",
        "state",
    )

    def __init__(self, pool: ConnectionPool, origin: Origin, *, for_copy: bool = False) -> None:
        self._pool = pool
        self.origin = origin
        self.for_copy = for_copy  # a mirror copy's connection: goes back to the copy pool
        self.loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = _parser(self)
        self._parser_dirty = False
        self.state = _IDLE
        self.idle_since = 0.0
        self.exchange: _Exchange | None = None  # the exchange under way, if any
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        return self.state is _CLOSED

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete:
            # Unsolicited bytes on an idle connection (or after a HEAD response that
            # carried a body anyway): the stream is out of sync, never reuse it.
            if exchange is not None:
                exchange.reusable = False
            self.close()
            return
        exchange.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # 101 Switching Protocols: the response ends at its head; the connection
            # now belongs to another protocol that this transport does not speak. It is
            # not read further: its bytes wait for whoever takes it over (hijack).
            exchange.reusable = False
            exchange.switched = data[upgrade.args[0] :]
            if self._transport is not None:
                self._transport.pause_reading()
            if not exchange.head_done:
                self.on_headers_complete()
            self.on_message_complete()
        except httptools.HttpParserError as exc:
            if exchange.complete:
                # Junk after a whole response: the response stands, the connection not.
                exchange.reusable = False
            elif exchange.head_done:
                self._fail(exchange, httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))
            else:
                self._fail(exchange, InvalidResponse(f"invalid HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return False  # let the transport close; connection_lost decides what it meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _CLOSED
        self._pool.forget(self)
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            if exc is None:
                if exchange.head_done and exchange.ends_at_close():
                    exchange.reusable = False
                    self.on_message_complete()
                    return
                if not exchange.head_done and exchange.head_started:
                    # Go's ReadResponse: io.ErrUnexpectedEOF, not io.EOF (Traefik: 500).
                    self._fail(exchange, InvalidResponse("server closed the connection mid-head"))
                elif not exchange.head_done:
                    self._fail(
                        exchange,
                        httpx.RemoteProtocolError("server disconnected without sending a response"),
                    )
                else:
                    self._fail(
                        exchange,
                        httpx.RemoteProtocolError(
                            "server closed the connection before the response body was complete"
                        ),
                    )
            elif exchange.sending and not exchange.head_done:
                self._fail(exchange, httpx.WriteError(f"connection broken while sending: {exc!r}"))
            else:
                self._fail(exchange, httpx.ReadError(f"connection broken while reading: {exc!r}"))
        self._wake()
        if exchange is not None and exchange.owner is not None:
            retry, exchange.retry = exchange.retry, None
            if retry is not None and not exchange.received_any and not self._pool.closed:
                # Before detach: the copy is not over yet.
                exchange.owner.run(self._pool.redial(retry, exchange.owner))
            self._end_detached()
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks (only while an exchange is under way) ------------------------
    #
    # llhttp parses every message in the bytes it is fed, not only the first: each
    # callback checks that it belongs to the exchange's own response (one flag test), so
    # a second message, a late interim response or a trailer never writes into it.

    def on_message_begin(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        if exchange.head_done:  # a second message: the connection is out of sync
            exchange.reusable = False
        exchange.head_started = True

    def on_status(self, status: bytes) -> None:
        exchange = self.exchange
        if exchange is not None and not exchange.head_done:
            exchange.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.exchange
        if exchange is not None and not exchange.head_done:  # else: a trailer, dropped
            if value and value[-1] in _OWS:
                # Go's textproto trims trailing spaces and tabs (llhttp only leading ones)
                value = value.rstrip(b" \t")
            if len(name) == 17:  # (len(b"transfer-encoding"))
                exchange.framing_seen = True
            exchange.headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None or exchange.head_done:  # the head of a second message
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim response (100 Continue, 103 Early Hints): not the answer.
            exchange.reason = bytearray()
            exchange.headers = []
            return
        if exchange.framing_seen and not _framing_ok(
            exchange.headers, self._parser.get_http_version()
        ):
            self._fail(exchange, InvalidResponse("unsupported Transfer-Encoding in response"))
            self.close()
            return
        exchange.status = status
        exchange.head_done = True
        if exchange.head_request:
            # llhttp cannot be told that a HEAD response has no body: end the exchange
            # here and start a fresh parser for the next request on this connection.
            self._parser_dirty = True
            self.on_message_complete()
            return
        waiter = self._waiter  # (_wake, inline here and below: one call less each)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete:  # a body after a HEAD response
            if exchange is not None:
                exchange.reusable = False
            return
        if exchange.owner is not None:  # a detached copy: nobody reads the answer
            return
        exchange.body.append(body)
        exchange.buffered += len(body)
        if exchange.buffered > _HIGH_WATER and not exchange.reading_paused and self._transport:
            exchange.reading_paused = True
            self._transport.pause_reading()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is None or not exchange.head_done:  # the end of an interim response
            return
        if exchange.complete:  # the end of a second message (or a HEAD's body)
            exchange.reusable = False
            return
        exchange.complete = True
        if not self._parser.should_keep_alive():
            exchange.reusable = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if exchange.owner is not None:
            self._end_detached()

    # -- used by the pool -----------------------------------------------------------------

    def _fail(self, exchange: _Exchange, error: httpx.TransportError) -> None:
        if exchange.error is None:
            exchange.error = error
        exchange.reusable = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(
        self, exchange: _Exchange, timeout: float | None, error: type[httpx.TimeoutException]
    ) -> None:
        waiter = self.loop.create_future()
        self._waiter = waiter
        if timeout is None:
            try:
                await waiter
            finally:
                self._waiter = None
            return
        handle = self.loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except _Expired:
            exchange.reusable = False
            self.close()
            raise error(f"no data from the server within {timeout} s") from None
        finally:
            handle.cancel()
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None and self.state is not _CLOSED:
            self.state = _CLOSED
            self._transport.close()
            self._pool.forget(self)

    def abort(self) -> None:
        """Drop the connection at once (no graceful close): used after errors."""
        if self._transport is not None:
            self._transport.abort()
        self.state = _CLOSED
        self._pool.forget(self)

    def _begin(self, head_request: bool, request_close: bool) -> _Exchange:
        if self._parser_dirty:
            self._parser = _parser(self)
            self._parser_dirty = False
        exchange = self.exchange = _Exchange(head_request, request_close)
        if self.state is _IDLE:
            self.state = _ACTIVE
        return exchange

    def cancel(self) -> None:
        """Stop a detached exchange (the copy's deadline or shutdown): the connection
        is dropped, and the owner hears of it from ``connection_lost``."""
        exchange = self.exchange
        if exchange is not None:
            exchange.retry = None
        self.abort()

    def send_detached(self, request: DetachedRequest, owner: CopyOwner, retry: bool) -> None:
        """Write a whole request and leave its answer to the protocol callbacks: they
        discard it and end the exchange (back to the pool, or closed) without a task.
        ``retry``: send it again on a fresh connection if this one turns out stale."""
        exchange = self._begin(request.request.method == b"HEAD", request.close)
        exchange.owner = owner
        exchange.retry = request if retry else None
        header_timeout = request.request.header_timeout
        if header_timeout is not None:
            exchange.head_timer = self.loop.call_later(header_timeout, self._head_timeout)
        assert self._transport is not None
        self._transport.writelines(request.payload)

    def _head_timeout(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        exchange.head_timer = None
        if exchange.owner is not None and not exchange.head_done:
            exchange.retry = None  # a timeout is not a stale connection
            self.abort()  # Go's responseHeaderTimeout, for a copy too

    def _end_detached(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        owner, exchange.owner = exchange.owner, None
        if owner is None:
            return
        exchange.retry = None
        timer, exchange.head_timer = exchange.head_timer, None
        if timer is not None:
            timer.cancel()
        if self._transport is not None and self._transport.get_write_buffer_size():
            # The server answered before our request had left: the connection's
            # stream is not at a request boundary any more.
            exchange.reusable = False
        self.finish(exchange)
        owner.detach(self)

    async def _write(self, exchange: _Exchange, data: bytes, timeout: float | None) -> None:
        if self.state is _CLOSED or self._transport is None:
            raise exchange.error or httpx.WriteError("connection closed while sending the request")
        self._transport.write(data)
        if self._write_paused:
            await self._drain(exchange, timeout)

    async def _drain(self, exchange: _Exchange, timeout: float | None) -> None:
        waiter = self.loop.create_future()
        self._drain_waiter = waiter
        handle = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except _Expired:
            self.abort()
            raise httpx.WriteTimeout(f"could not send to the server within {timeout} s") from None
        finally:
            if handle is not None:
                handle.cancel()
            self._drain_waiter = None
        if self.state is _CLOSED and exchange.error is not None and not exchange.head_done:
            raise exchange.error

    async def exchange_on(
        self, request: UpstreamRequest, serialised: RequestHead, reused: bool
    ) -> RawResponse:
        """Send the request and wait for its response head. ``reused``: the connection
        came from the pool and the request may be replayed: a failure before any answer
        sends it again through the pool (:meth:`ConnectionPool.retry`, once). On any
        error the exchange is over (the connection closed). The pool hands this
        coroutine out as its own: no coroutine around it (bench/README.md, session 8)."""
        try:
            head, content_length, chunked, framed, request_close = serialised
            if self._parser_dirty:  # (_begin, inline)
                self._parser = _parser(self)
                self._parser_dirty = False
            exchange = self.exchange = _Exchange(request.method == b"HEAD", request_close)
            if self.state is _IDLE:
                self.state = _ACTIVE
            exchange.sending = True
            timeouts = request.timeouts
            write_timeout = timeouts.get("write")
            if framed:
                await self._write(exchange, head, write_timeout)
                await self._send_body(
                    exchange, request.body, content_length, chunked, write_timeout
                )
            elif not request.has_body:
                # Known empty (most requests): the head alone, without iterating the
                # stream, an async generator whose creation the loop's asyncgen hook also
                # registers; (_write, inline: no coroutine for a write that does not wait)
                transport = self._transport
                if self.state is _CLOSED or transport is None:
                    raise exchange.error or httpx.WriteError(
                        "connection closed while sending the request"
                    )
                transport.write(head)
                if self._write_paused:
                    await self._drain(exchange, write_timeout)
            else:
                await self._send_unframed(exchange, request.body, head, write_timeout)
            exchange.sending = False
            read_timeout = timeouts.get("read")
            while not exchange.head_done and exchange.error is None:
                if read_timeout is None:  # (_wait without its coroutine: the usual case)
                    waiter = self._waiter = self.loop.create_future()
                    await waiter
                    self._waiter = None
                else:
                    await self._wait(exchange, read_timeout, httpx.ReadTimeout)
            if not exchange.head_done:
                assert exchange.error is not None
                if not reused or exchange.received_any:
                    raise exchange.error
        except BaseException:
            self.finish(self.exchange)
            raise
        if not exchange.head_done:  # a stale connection: the request again, elsewhere
            self.finish(exchange)
            return await self._pool.retry(request, serialised)
        version = b"HTTP/1.0" if self._parser.get_http_version() == "1.0" else b"HTTP/1.1"
        # (tuple.__new__: a NamedTuple's own __new__ is a Python function)
        response: RawResponse = _tuple_new(
            RawResponse,
            (
                exchange.status,
                exchange.headers,
                _stream(self, exchange, read_timeout),
                version,
                bytes(exchange.reason).strip(),
            ),
        )
        return response

    async def _send_body(
        self,
        exchange: _Exchange,
        stream: AsyncIterable[bytes],
        content_length: int | None,
        chunked: bool,
        timeout: float | None,
    ) -> None:
        sent = 0
        async for chunk in stream:
            if not chunk:
                continue
            if exchange.head_done or self.state is _CLOSED:
                # The server answered (or gave up) before reading the whole body, as
                # Go's transport allows: stop sending, and never reuse the connection.
                exchange.reusable = False
                return
            if chunked:
                await self._write(exchange, b"%x\r\n%b\r\n" % (len(chunk), chunk), timeout)
            else:
                sent += len(chunk)
                if content_length is not None and sent > content_length:
                    self.abort()
                    raise httpx.LocalProtocolError(
                        f"request body longer than its Content-Length {content_length}"
                    )
                await self._write(exchange, chunk, timeout)
        if chunked:
            await self._write(exchange, b"0\r\n\r\n", timeout)
        elif content_length is not None and sent < content_length and not exchange.head_done:
            self.abort()
            raise httpx.LocalProtocolError(
                f"request body shorter ({sent}) than its Content-Length {content_length}"
            )

    async def _send_unframed(
        self, exchange: _Exchange, stream: AsyncIterable[bytes], head: bytes, timeout: float | None
    ) -> None:
        """A request whose headers announce no body: send it without one if its stream is
        empty, chunked (the header added) if not. The first chunk is awaited before the
        head goes out, which costs nothing for the empty streams such requests have."""
        iterator = stream.__aiter__()
        first = b""
        while not first:
            try:
                first = await iterator.__anext__()
            except StopAsyncIteration:
                break
        if not first:
            await self._write(exchange, head, timeout)
            return
        chunked_head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
        await self._write(exchange, chunked_head + b"%x\r\n%b\r\n" % (len(first), first), timeout)
        await self._send_body(exchange, iterator, None, True, timeout)

    def _take(self, exchange: _Exchange) -> bytes:
        """The body bytes buffered (some are), reading resumed if it was paused."""
        body = exchange.body
        chunk = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        exchange.buffered = 0
        if exchange.reading_paused and self._transport is not None:
            exchange.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def next_piece(self, exchange: _Exchange, timeout: float | None) -> tuple[bytes, bool]:
        """The body bytes received so far (waiting for some), and whether the body ends
        with them; ``(b"", True)`` at the end, where the exchange is over (its connection
        back to the pool). One coroutine per piece, its wait inline."""
        try:
            if exchange is not self.exchange:
                return b"", True
            while not exchange.body:
                if exchange.error is not None:
                    raise exchange.error
                if exchange.complete:
                    self.finish(exchange)
                    return b"", True
                if timeout is None:
                    waiter = self._waiter = self.loop.create_future()
                    await waiter
                    self._waiter = None
                else:
                    await self._wait(exchange, timeout, httpx.ReadTimeout)
            chunk = self._take(exchange)
        except BaseException:
            self.finish(exchange)  # not reusable after an error: closes it
            raise
        if not chunk:
            return b"", True
        if exchange.complete and not exchange.body and exchange.error is None:
            self.finish(exchange)
            return chunk, True
        return chunk, False

    def hijack(self, exchange: _Exchange) -> tuple[asyncio.Transport, bytes]:
        """Take the connection away after its ``101`` (Go's ReverseProxy takes the
        response body as the raw connection): the transport, paused, and the bytes the
        server sent after the head. The connection is never used or pooled again."""
        transport = self._transport
        if (
            exchange is not self.exchange
            or exchange.switched is None
            or transport is None
            or self.state is _CLOSED
            or transport.is_closing()
        ):
            raise httpx.ReadError("the connection closed after its 101 answer")
        self.exchange = None
        self.state = _CLOSED
        self._transport = None
        self._pool.forget(self)
        return transport, exchange.switched

    def finish(self, exchange: _Exchange | None) -> None:
        """End the exchange: back to the pool if the response was read to its end from
        the wire and both sides keep the connection, closed otherwise."""
        if exchange is None or exchange is not self.exchange:
            return
        self.exchange = None
        if (
            exchange.complete
            and exchange.reusable
            and exchange.error is None
            and not exchange.sending
            and not exchange.request_close
            and self.state is not _CLOSED
        ):
            self.state = _IDLE
            self._pool.release(self)
        else:
            self.abort()


def _framing_ok(headers: list[tuple[bytes, bytes]], version: str) -> bool:
    """Whether a response's ``Transfer-Encoding`` is one Go's transport accepts
    (``net/http/transfer.go``, ``parseTransferEncoding``): on HTTP/1.1, at most one
    header, and its value exactly ``chunked``; anything else (``chunked, identity``,
    ``identity``, ``gzip``, two headers) is ``unsupported transfer encoding``, which
    Traefik answers 500. llhttp would read such a body as raw bytes until the close.
    A chunked response's ``Content-Length`` is dropped, as Go's ``fixLength`` does.
    Runs once per response head; costs a loop over the headers."""
    found = 0
    chunked = True
    for name, value in headers:
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            found += 1
            chunked = value.strip().lower() == b"chunked"
    if not found or version == "1.0":
        return True
    if found > 1 or not chunked:
        return False
    headers[:] = [h for h in headers if h[0].lower() != b"content-length"]
    return True


def _parser(connection: HTTP11Connection) -> httptools.HttpResponseParser:
    """A response parser for ``connection``, with four of llhttp's leniencies, each
    what Go's transport accepts (checked against Traefik 3.7.15 in
    tests/conformance/test_garbled_answers.py): a response with both
    ``Transfer-Encoding: chunked`` and ``Content-Length`` is read chunked (Go's
    ``fixLength`` drops the length); any one-digit ``HTTP/x.y`` version (Go's
    ``ParseHTTPVersion``: ``HTTP/1.2``); spaces after a chunk size (Go trims them); a
    line of the head or a chunk size ended by a bare LF (Go's textproto reads lines up
    to LF). The other places llhttp is stricter than Go are listed in
    docs/differences.md."""
    parser = httptools.HttpResponseParser(connection)
    parser.set_dangerous_leniencies(
        lenient_chunked_length=True,
        lenient_version=True,
        lenient_spaces_after_chunk_size=True,
        lenient_optional_cr_before_lf=True,
    )
    return parser


class _Expired(Exception):
    """A timer fired before the awaited event."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


def _stream(
    connection: HTTP11Connection, exchange: _Exchange, timeout: float | None
) -> ResponseStream:
    """``ResponseStream(connection, exchange, timeout)`` without its ``__init__`` frame."""
    stream: ResponseStream = _new(ResponseStream)
    stream._connection = connection
    stream._exchange = exchange
    stream._timeout = timeout
    return stream


_new = object.__new__


class ResponseStream(httpx.AsyncByteStream):
    """The response body as it arrives: each iteration step yields what is buffered.
    :meth:`read_piece` also says which piece is the last, so that the relay sends it as
    the answer's last message instead of an empty one after it."""

    __slots__ = ("_connection", "_exchange", "_timeout")

    def __init__(
        self, connection: HTTP11Connection, exchange: _Exchange, timeout: float | None
    ) -> None:
        self._connection = connection
        self._exchange = exchange
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection, exchange, timeout = self._connection, self._exchange, self._timeout
        try:
            while True:
                chunk, final = await connection.next_piece(exchange, timeout)
                if chunk:
                    yield chunk
                if final:
                    return
        except BaseException:
            connection.finish(exchange)  # not reusable after an error: closes it
            raise

    def read_piece(self) -> Coroutine[Any, Any, tuple[bytes, bool]]:
        """The body bytes received so far (waiting for some), and whether the body ends
        with them; ``(b"", True)`` at the end. At the end the exchange is over (its
        connection back to the pool), as at the end of an iteration. (The connection's
        coroutine itself, not one around it.)"""
        return self._connection.next_piece(self._exchange, self._timeout)

    async def aclose(self) -> None:
        self._connection.finish(self._exchange)

    def finish(self) -> None:
        """:meth:`aclose` without a coroutine: the exchange is over (the connection back
        to the pool if the answer was read whole, closed otherwise)."""
        self._connection.finish(self._exchange)

    def hijack(self) -> tuple[asyncio.Transport, bytes]:
        """After a ``101``: the raw connection (see :meth:`HTTP11Connection.hijack`)."""
        return self._connection.hijack(self._exchange)
