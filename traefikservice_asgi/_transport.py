"""An HTTP/1.1 transport for ``httpx`` built for one job: a gateway forwarding requests.

Why not httpcore: profiling a proxy on httpx's default transport showed most of the time
in the connection pool's per-request scan of every connection and in a failed
``import sniffio`` on every request. A gateway needs much less than a general client:
HTTP/1.1 only, an idle pool per origin, no request retries beyond Go's "stale idle
connection" rule, and both bodies streamed. This transport does exactly that, on an
:class:`asyncio.Protocol` with ``httptools`` (llhttp, the parser uvicorn uses) parsing
responses, and keeps Go's ``http.Transport`` behaviour where Traefik depends on it:

* idle connections kept per origin, last in first out (the warmest socket is reused and
  the cold ones expire), checkout is O(1); ``keepalive_expiry`` (90 s, Traefik's
  ``idleConnTimeout``) and ``max_idle_per_host`` (200, Traefik's
  ``maxIdleConnsPerHost``); the number of concurrent connections is not limited;
* mirror copies (``forward(..., copy=True)``) keep their idle connections in a pool of
  their own, bounded by ``max_idle_copies_per_host`` (the gateway sets it to its cap on
  copies in flight): a slow mirror holds many connections at once, and with only the
  200 of ``maxIdleConnsPerHost`` to go back to, most copies paid a new connection and a
  close, which was 60 % of a copy's cost. Main requests never see those connections,
  so their pool behaves exactly as Go's;
* a connection goes back to the pool only after its response was read to the end from
  the wire, the whole request body was sent, and neither side asked to close;
* a reused connection that the server closed before answering is retried once on a
  fresh connection when the request has no body and an idempotent method (Go's
  ``isReplayable``), because a server's keep-alive timeout can race a new request;
* the request goes out exactly as given: no header is added except ``Host`` when the
  request has none, and the body framing is ``Content-Length`` *or* chunked, never both;
* a mirror copy can be *detached* (:meth:`GatewayTransport.send_detached`): the request
  is written and the call returns; the connection itself reads the answer, discards it
  and goes back to the pool, and tells the copy's owner when the exchange has ended. No
  task waits for the answer, so a copy in flight costs a connection, not a coroutine
  stack (see :mod:`traefikservice_asgi._mirror_pool`);
* errors are httpx's, so callers map them as for httpcore: ``ConnectError``,
  ``ConnectTimeout``, ``ReadTimeout``/``WriteTimeout`` (from the request's ``timeout``
  extension), ``RemoteProtocolError`` (unparsable or cut-short response), ``ReadError``/
  ``WriteError`` (connection reset).
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable
from typing import Any, NamedTuple, Protocol, cast

import httptools
import httpx

__all__ = ["CopyOwner", "GatewayTransport", "RawResponse"]

_Origin = tuple[bytes, bytes, int]

# Response bytes buffered per connection before reading from the socket pauses: a slow
# client then slows the backend instead of the gateway buffering the whole body.
_HIGH_WATER = 256 * 1024
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_REPLAYABLE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NO_BODY_STATUSES = frozenset({204, 304})
# Header names already checked against the token grammar; names repeat on every
# request, so validating each distinct name once keeps validation off the hot path.
_VALID_NAMES: set[bytes] = set()
_VALID_NAMES_MAX = 4096


class RawResponse(NamedTuple):
    """A response head and its streaming body, as :meth:`GatewayTransport.forward`
    returns it: no httpx objects. Iterate ``stream`` for the body; ``aclose`` it always."""

    status: int
    headers: list[tuple[bytes, bytes]]
    stream: _ResponseStream
    http_version: bytes
    reason: bytes


class CopyOwner(Protocol):
    """Who a detached exchange reports to (a mirror copy's job): the exchange is a part
    of it from :meth:`attach` until :meth:`detach`; a retry runs with :meth:`run`."""

    def attach(self, part: Any) -> bool: ...

    def detach(self, part: Any) -> None: ...

    def run(self, coro: Coroutine[Any, Any, None]) -> None: ...


class _DetachedRequest(NamedTuple):
    """A detached copy's request, whole: what its connection writes, and what a retry
    on a fresh connection needs. One small object per copy in flight (a closure holding
    the same would be a dozen for the garbage collector to walk)."""

    payload: tuple[bytes, ...]
    head_request: bool
    close: bool
    header_timeout: float | None
    timeouts: dict[str, float | None]
    sni: object


class _StaleConnection(Exception):
    """A reused connection closed before any response byte arrived (retry candidate)."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


def _check_name(name: bytes) -> None:
    if name in _VALID_NAMES:
        return
    if _TOKEN.fullmatch(name) is None:
        raise httpx.LocalProtocolError(f"invalid header name {name!r}")
    if len(_VALID_NAMES) < _VALID_NAMES_MAX:
        _VALID_NAMES.add(name)


def _request_head(
    method: bytes,
    target: bytes,
    netloc: bytes,
    raw: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes, int | None, bool, bool, bool]:
    """Serialise the request line and headers.

    Returns ``(head, content_length, chunked, framed, close)``: the body framing the
    headers announce (``framed`` is False when they announce none) and whether the
    request asked for ``Connection: close``. A request carrying both framing headers
    keeps only ``Transfer-Encoding`` (RFC 9112 §6.3: it overrides ``Content-Length``);
    two different ``Content-Length`` values are refused.
    """
    if _TOKEN.fullmatch(method) is None:
        raise httpx.LocalProtocolError(f"invalid method {method!r}")
    content_length: int | None = None
    chunked = False
    close = False
    has_host = False
    lines = 0
    parts: list[bytes] = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in raw:
        _check_name(name)
        lower = name.lower()
        if lower == b"host":
            has_host = True
        elif lower == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise httpx.LocalProtocolError(f"invalid Content-Length {value!r}") from None
            if length < 0 or (content_length is not None and length != content_length):
                raise httpx.LocalProtocolError(f"invalid Content-Length {value!r}")
            if content_length is not None:
                continue  # the same value twice: sent once
            content_length = length
        elif lower == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise httpx.LocalProtocolError(f"unsupported Transfer-Encoding {value!r}")
            if chunked:
                continue
            chunked = True
        elif lower == b"connection" and b"close" in value.lower():
            close = True
        parts += (name, b": ", value, b"\r\n")
        lines += 1
    if not has_host:
        parts[4:4] = (b"Host: ", netloc, b"\r\n")
        lines += 1
    parts.append(b"\r\n")
    head = b"".join(parts)
    if chunked and content_length is not None:
        content_length = None
        head = _without_content_length(head)
        lines -= 1
    # One C-speed scan instead of one per value: every CR and LF must be ours
    # (request line, header lines, final blank line), or a value smuggles a header.
    expected = lines + 2
    if head.count(b"\n") != expected or head.count(b"\r") != expected or b"\0" in head:
        raise httpx.LocalProtocolError("CR, LF or NUL in the request target or a header value")
    framed = chunked or content_length is not None
    return head, content_length, chunked, framed, close


def _payload(
    head: bytes, body: bytes, content_length: int | None, chunked: bool, framed: bool
) -> tuple[bytes, ...]:
    """A whole request, head and body, framed as its headers say (a body under headers
    that announce none goes chunked, as :meth:`_Connection._send_unframed` sends it)."""
    if chunked or (body and not framed):
        if not framed:
            head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
        if not body:
            return (head, b"0\r\n\r\n")
        return (head, b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n")
    if content_length is not None and content_length != len(body):
        raise httpx.LocalProtocolError(
            f"request body of {len(body)} bytes under Content-Length {content_length}"
        )
    return (head, body) if body else (head,)


def _without_content_length(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    kept = [ln for ln in lines if not ln.lower().startswith(b"content-length:")]
    return b"\r\n".join(kept)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: writes one request at a time and parses its response.

    Parser callbacks fill the current exchange's state; the task handling the request
    waits on ``_waiter`` for "head arrived", "body data", "complete" or an error.
    """

    def __init__(self, pool: GatewayTransport, origin: _Origin) -> None:
        self._pool = pool
        self.origin = origin
        self.for_copy = False  # a mirror copy's connection: goes back to the copy pool
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._parser_dirty = False
        self.closed = False
        self.idle_since = 0.0
        self.generation = 0  # increments per exchange: stale stream handles are ignored
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # A detached exchange (mirror copy): who to tell when it ends, the timer of
        # the server transport's responseHeaderTimeout, and the request to send again
        # on a fresh connection if this reused one turns out stale (None: no retry).
        self.owner: CopyOwner | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._retry: _DetachedRequest | None = None
        self._reset_exchange(active=False)

    def _reset_exchange(self, *, active: bool) -> None:
        self.active = active
        self.head_request = False
        self.request_close = False
        self.sending = False
        self.received_any = False
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

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:
            # Unsolicited bytes on an idle connection (or after a HEAD response that
            # carried a body anyway): the stream is out of sync, never reuse it.
            self.reusable = False
            self.close()
            return
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # 101 Switching Protocols: the response ends at its head; the connection
            # now belongs to another protocol that this transport does not speak.
            self.reusable = False
            if not self.head_done:
                self.on_headers_complete()
            self.on_message_complete()
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return False  # let the transport close; connection_lost decides what it meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool._forget(self)
        if self.active and not self.complete:
            if exc is None:
                if self.head_done and self._ends_at_close():
                    self.reusable = False
                    self.on_message_complete()
                    return
                if not self.head_done:
                    self._fail(
                        httpx.RemoteProtocolError("server disconnected without sending a response")
                    )
                else:
                    self._fail(
                        httpx.RemoteProtocolError(
                            "server closed the connection before the response body was complete"
                        )
                    )
            elif self.sending and not self.head_done:
                self._fail(httpx.WriteError(f"connection broken while sending: {exc!r}"))
            else:
                self._fail(httpx.ReadError(f"connection broken while reading: {exc!r}"))
        self._wake()
        if self.owner is not None:
            retry, self._retry = self._retry, None
            if retry is not None and not self.received_any and not self._pool._closed:
                # Before detach: the copy is not over yet.
                self.owner.run(self._pool._redial(self.origin, retry, self.owner))
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

    # -- httptools callbacks --------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim response (100 Continue, 103 Early Hints): not the answer.
            self.reason = bytearray()
            self.headers = []
            return
        self.status = status
        self.head_done = True
        if self.head_request:
            # llhttp cannot be told that a HEAD response has no body: end the exchange
            # here and start a fresh parser for the next request on this connection.
            self._parser_dirty = True
            self.on_message_complete()
            return
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:  # a body after a HEAD response
            self.reusable = False
            return
        if self.owner is not None:  # a detached copy: nobody reads the answer
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self._transport:
            self.reading_paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.head_done:  # the end of an interim response
            return
        if self.complete:
            return
        self.complete = True
        if not self._parser.should_keep_alive():
            self.reusable = False
        self._wake()
        if self.owner is not None:
            self._end_detached()

    # -- used by the transport ------------------------------------------------------------

    def _ends_at_close(self) -> bool:
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

    def _fail(self, error: httpx.TransportError) -> None:
        if self.error is None:
            self.error = error
        self.reusable = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float | None, error: type[httpx.TimeoutException]) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        if timeout is None:
            try:
                await waiter
            finally:
                self._waiter = None
            return
        handle = self._loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except _Expired:
            self.reusable = False
            self.close()
            raise error(f"no data from the server within {timeout} s") from None
        finally:
            handle.cancel()
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()
            self._pool._forget(self)

    def abort(self) -> None:
        """Drop the connection at once (no graceful close): used after errors."""
        if self._transport is not None:
            self._transport.abort()
        self.closed = True
        self._pool._forget(self)

    def _begin_exchange(self, head_request: bool, request_close: bool) -> None:
        if self._parser_dirty:
            self._parser = httptools.HttpResponseParser(self)
            self._parser_dirty = False
        self.generation += 1
        self._reset_exchange(active=True)
        self.head_request = head_request
        self.request_close = request_close

    def cancel(self) -> None:
        """Stop a detached exchange (the copy's deadline or shutdown): the connection
        is dropped, and the owner hears of it from ``connection_lost``."""
        self._retry = None
        self.abort()

    def send_detached(self, request: _DetachedRequest, owner: CopyOwner, retry: bool) -> None:
        """Write a whole request and leave its answer to the protocol callbacks: they
        discard it and end the exchange (back to the pool, or closed) without a task.
        ``retry``: send it again on a fresh connection if this one turns out stale."""
        self._begin_exchange(request.head_request, request.close)
        self.owner = owner
        self._retry = request if retry else None
        if request.header_timeout is not None:
            self._head_timer = self._loop.call_later(request.header_timeout, self._head_timeout)
        assert self._transport is not None
        self._transport.writelines(request.payload)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.owner is not None and not self.head_done:
            self._retry = None  # a timeout is not a stale connection
            self.abort()  # Go's responseHeaderTimeout, for a copy too

    def _end_detached(self) -> None:
        owner, self.owner = self.owner, None
        if owner is None:
            return
        self._retry = None
        timer, self._head_timer = self._head_timer, None
        if timer is not None:
            timer.cancel()
        if self._transport is not None and self._transport.get_write_buffer_size():
            # The server answered before our request had left: the connection's
            # stream is not at a request boundary any more.
            self.reusable = False
        self.finish(self.generation)
        owner.detach(self)

    async def _write(self, data: bytes, timeout: float | None) -> None:
        if self.closed or self._transport is None:
            raise self.error or httpx.WriteError("connection closed while sending the request")
        self._transport.write(data)
        if self._write_paused:
            await self._drain(timeout)

    async def _drain(self, timeout: float | None) -> None:
        waiter = self._loop.create_future()
        self._drain_waiter = waiter
        handle = None if timeout is None else self._loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except _Expired:
            self.abort()
            raise httpx.WriteTimeout(f"could not send to the server within {timeout} s") from None
        finally:
            if handle is not None:
                handle.cancel()
            self._drain_waiter = None
        if self.closed and self.error is not None and not self.head_done:
            raise self.error

    async def exchange(
        self,
        head_request: bool,
        stream: AsyncIterable[bytes],
        head: bytes,
        content_length: int | None,
        chunked: bool,
        framed: bool,
        request_close: bool,
        timeouts: dict[str, float | None],
        reused: bool,
    ) -> RawResponse:
        """Send the request and wait for its response head."""
        self._begin_exchange(head_request, request_close)
        self.sending = True
        write_timeout = timeouts.get("write")
        if framed:
            await self._write(head, write_timeout)
            await self._send_body(stream, content_length, chunked, write_timeout)
        else:
            await self._send_unframed(stream, head, write_timeout)
        self.sending = False
        read_timeout = timeouts.get("read")
        while not self.head_done and self.error is None:
            await self._wait(read_timeout, httpx.ReadTimeout)
        if not self.head_done:
            assert self.error is not None
            if reused and not self.received_any:
                raise _StaleConnection(self.error)
            raise self.error
        version = b"HTTP/1.0" if self._parser.get_http_version() == "1.0" else b"HTTP/1.1"
        return RawResponse(
            self.status,
            self.headers,
            _ResponseStream(self, self.generation, read_timeout),
            version,
            bytes(self.reason).strip(),
        )

    async def _send_body(
        self,
        stream: AsyncIterable[bytes],
        content_length: int | None,
        chunked: bool,
        timeout: float | None,
    ) -> None:
        sent = 0
        async for chunk in stream:
            if not chunk:
                continue
            if self.head_done or self.closed:
                # The server answered (or gave up) before reading the whole body, as
                # Go's transport allows: stop sending, and never reuse the connection.
                self.reusable = False
                return
            if chunked:
                await self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk), timeout)
            else:
                sent += len(chunk)
                if content_length is not None and sent > content_length:
                    self.abort()
                    raise httpx.LocalProtocolError(
                        f"request body longer than its Content-Length {content_length}"
                    )
                await self._write(chunk, timeout)
        if chunked:
            await self._write(b"0\r\n\r\n", timeout)
        elif content_length is not None and sent < content_length and not self.head_done:
            self.abort()
            raise httpx.LocalProtocolError(
                f"request body shorter ({sent}) than its Content-Length {content_length}"
            )

    async def _send_unframed(
        self, stream: AsyncIterable[bytes], head: bytes, timeout: float | None
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
            await self._write(head, timeout)
            return
        chunked_head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
        await self._write(chunked_head + b"%x\r\n%b\r\n" % (len(first), first), timeout)
        await self._send_body(iterator, None, True, timeout)

    async def next_body_chunk(self, generation: int, timeout: float | None) -> bytes:
        """The body bytes received so far (waiting for some), or b"" at the end."""
        if generation != self.generation:
            return b""
        while not self.body:
            if self.error is not None:
                raise self.error
            if self.complete:
                self.finish(generation)
                return b""
            await self._wait(timeout, httpx.ReadTimeout)
        chunk = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self.reading_paused and self._transport is not None:
            self.reading_paused = False
            self._transport.resume_reading()
        return chunk

    def finish(self, generation: int) -> None:
        """End the exchange: back to the pool if the response was read to its end from
        the wire and both sides keep the connection, closed otherwise."""
        if generation != self.generation or not self.active:
            return
        self.active = False
        if (
            self.complete
            and self.reusable
            and self.error is None
            and not self.sending
            and not self.request_close
            and not self.closed
        ):
            self._pool._release(self)
        else:
            self.abort()


class _Expired(Exception):
    """A timer fired before the awaited event."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as it arrives: each iteration step yields what is buffered."""

    __slots__ = ("_connection", "_generation", "_timeout")

    def __init__(self, connection: _Connection, generation: int, timeout: float | None) -> None:
        self._connection = connection
        self._generation = generation
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection, generation, timeout = self._connection, self._generation, self._timeout
        try:
            while True:
                chunk = await connection.next_body_chunk(generation, timeout)
                if not chunk:
                    return
                yield chunk
        except BaseException:
            connection.finish(generation)  # not reusable after an error: closes it
            raise

    async def aclose(self) -> None:
        self._connection.finish(self._generation)


class GatewayTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 transport with a LIFO idle pool per origin (see the module docstring).

    ``ssl_context`` is used for ``https`` origins (default:
    :func:`ssl.create_default_context`). The transport binds to the event loop of its
    first request; used from another loop, it starts a new pool there.
    """

    def __init__(
        self,
        *,
        keepalive_expiry: float | None = 90.0,
        max_idle_per_host: int = 200,
        max_idle_copies_per_host: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if keepalive_expiry is not None and keepalive_expiry < 0:
            raise ValueError("keepalive_expiry must be >= 0 or None")
        if max_idle_per_host < 0:
            raise ValueError("max_idle_per_host must be >= 0")
        if max_idle_copies_per_host < 0:
            raise ValueError("max_idle_copies_per_host must be >= 0")
        self.keepalive_expiry = keepalive_expiry
        self.max_idle_per_host = max_idle_per_host
        self.max_idle_copies_per_host = max_idle_copies_per_host
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, collections.deque[_Connection]] = {}
        self._copy_idle: dict[_Origin, collections.deque[_Connection]] = {}
        self._active: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    # -- pool -----------------------------------------------------------------------------

    def _checkout(self, origin: _Origin, now: float, copy: bool = False) -> _Connection | None:
        idle = (self._copy_idle if copy else self._idle).get(origin)
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            expiry = self.keepalive_expiry
            if expiry is not None and now - connection.idle_since >= expiry:
                # LIFO: everything below is older still.
                connection.close()
                while idle:
                    idle.popleft().close()
                return None
            return connection
        return None

    def _release(self, connection: _Connection) -> None:
        if connection.for_copy:
            pools, limit = self._copy_idle, self.max_idle_copies_per_host
        else:
            pools, limit = self._idle, self.max_idle_per_host
        if self._closed or limit == 0 or self.keepalive_expiry == 0:
            connection.close()
            return
        self._active.discard(connection)
        idle = pools.get(connection.origin)
        if idle is None:
            idle = pools[connection.origin] = collections.deque()
        if len(idle) >= limit:
            idle.popleft().close()  # the coldest one goes
        connection.idle_since = connection._loop.time()
        idle.append(connection)
        if self._sweeper is None and self.keepalive_expiry is not None:
            self._sweeper = connection._loop.call_later(self.keepalive_expiry, self._sweep)

    def _forget(self, connection: _Connection) -> None:
        self._active.discard(connection)

    def _sweep(self) -> None:
        """Close idle connections past their expiry, so they do not linger on the
        server until the next request to the same origin."""
        self._sweeper = None
        loop, expiry = self._loop, self.keepalive_expiry
        if loop is None or expiry is None:
            return
        now = loop.time()
        oldest: float | None = None
        for pools in (self._idle, self._copy_idle):
            for origin, idle in list(pools.items()):
                while idle and (idle[0].closed or now - idle[0].idle_since >= expiry):
                    idle.popleft().close()
                if idle:
                    since = idle[0].idle_since
                    oldest = since if oldest is None else min(oldest, since)
                else:
                    del pools[origin]
        if oldest is not None:
            self._sweeper = loop.call_later(max(oldest + expiry - now, 0.001), self._sweep)

    async def _connect(
        self, origin: _Origin, timeouts: dict[str, float | None], sni: object
    ) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        server_hostname: str | None = None
        if scheme == b"https":
            context = self._ssl_context or ssl.create_default_context()
            server_hostname = sni if isinstance(sni, str) else host.decode("ascii")
        connection = _Connection(self, origin)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: connection,
                    host.decode("ascii"),
                    port,
                    ssl=context,
                    server_hostname=server_hostname,
                ),
                timeouts.get("connect"),
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host.decode()}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host.decode()}:{port}: {exc}") from exc
        return connection

    # -- httpx.AsyncBaseTransport ---------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        default_port = _DEFAULT_PORTS.get(scheme)
        if default_port is None:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        if not url.raw_host:
            raise httpx.UnsupportedProtocol(f"no host in URL {url}")
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise RuntimeError("GatewayTransport needs an async request stream")
        raw = await self.forward(
            request.method.encode("ascii"),
            (scheme, url.raw_host, url.port or default_port),
            url.netloc,
            url.raw_path,
            request.headers.raw,
            stream,
            request.extensions.get("timeout") or {},
            request.extensions.get("sni_hostname"),
        )
        return httpx.Response(
            raw.status,
            headers=raw.headers,
            stream=raw.stream,
            extensions={"http_version": raw.http_version, "reason_phrase": raw.reason},
        )

    async def forward(
        self,
        method: bytes,
        origin: tuple[bytes, bytes, int],
        netloc: bytes,
        target: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        stream: AsyncIterable[bytes],
        timeouts: dict[str, float | None],
        sni: object = None,
        copy: bool = False,
    ) -> RawResponse:
        """One exchange on plain values, without httpx's Request/URL/Headers/Response
        objects: the gateway's hot path, where building those objects cost as much as
        the exchange itself. ``origin`` is ``(scheme, host, port)``; ``target`` the raw
        path and query; ``copy`` marks a mirror copy (its own idle pool)."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        head, content_length, chunked, framed, close = _request_head(
            method, target, netloc, headers
        )
        loop = self._bind()
        replayable = not framed and method in _REPLAYABLE_METHODS
        for _attempt in range(2):
            connection = self._checkout(origin, loop.time(), copy)
            reused = connection is not None
            if connection is None:
                connection = await self._connect(origin, timeouts, sni)
                connection.for_copy = copy
            self._active.add(connection)
            try:
                return await connection.exchange(
                    method == b"HEAD",
                    stream,
                    head,
                    content_length,
                    chunked,
                    framed,
                    close,
                    timeouts,
                    reused and replayable,
                )
            except _StaleConnection as stale:
                connection.finish(connection.generation)
                if _attempt == 1:
                    raise stale.error from None
            except BaseException:
                connection.finish(connection.generation)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def send_detached(
        self,
        method: bytes,
        origin: tuple[bytes, bytes, int],
        netloc: bytes,
        target: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        timeouts: dict[str, float | None],
        owner: CopyOwner,
        sni: object = None,
        header_timeout: float | None = None,
    ) -> None:
        """Send a mirror copy whose answer nobody reads, on the copies' own pool.

        Returns once the request is written (at once on an idle connection; after the
        dial on a new one); the connection then reads the answer, discards it and
        reports the end of the exchange to ``owner``, which can stop it before with
        ``cancel``. Go's rules still hold: a stale reused connection is retried once on
        a fresh one (no body, idempotent method), ``header_timeout`` is
        ``responseHeaderTimeout``, and a connection goes back to the pool only after a
        whole answer. Raises as :meth:`forward` for what happens before the write.
        """
        if self._closed:
            raise RuntimeError("the transport is closed")
        head, content_length, chunked, framed, close = _request_head(
            method, target, netloc, headers
        )
        request = _DetachedRequest(
            _payload(head, body, content_length, chunked, framed),
            method == b"HEAD",
            close,
            header_timeout,
            timeouts,
            sni,
        )
        loop = self._bind()
        connection = self._checkout(origin, loop.time(), copy=True)
        if connection is None:
            await self._redial(origin, request, owner)
            return
        replayable = not framed and method in _REPLAYABLE_METHODS
        self._hand_over(connection, request, owner, retry=replayable)

    async def _redial(self, origin: _Origin, request: _DetachedRequest, owner: CopyOwner) -> None:
        """A detached copy on a new connection (none idle, or a retry: never retried)."""
        connection = await self._connect(origin, request.timeouts, request.sni)
        connection.for_copy = True
        self._hand_over(connection, request, owner, retry=False)

    def _hand_over(
        self, connection: _Connection, request: _DetachedRequest, owner: CopyOwner, retry: bool
    ) -> None:
        if not owner.attach(connection):  # the copy was stopped meanwhile
            self._release(connection)
            return
        self._active.add(connection)
        connection.send_detached(request, owner, retry)

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop; connections of another loop cannot be used in it."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._idle.clear()
            self._copy_idle.clear()
            self._sweeper = None
            self._loop = loop
        return loop

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pools in (self._idle, self._copy_idle):
            for idle in pools.values():
                for connection in idle:
                    connection.close()
            pools.clear()
        for connection in list(self._active):
            connection.abort()
        self._active.clear()

    # -- introspection (tests, metrics) ---------------------------------------------------

    def idle_connections(self, copies: bool = False) -> int:
        """How many idle connections the pool holds (closed ones not counted); with
        ``copies``, the mirror copies' pool instead."""
        pools = self._copy_idle if copies else self._idle
        return sum(1 for idle in pools.values() for c in idle if not c.closed)
