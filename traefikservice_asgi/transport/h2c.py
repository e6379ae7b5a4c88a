"""HTTP/2 cleartext with prior knowledge: how ``h2c://`` servers are spoken to.

Traefik 3.7 forwards to an ``h2c://ip:port`` server with Go's ``http.Transport`` set to
``Protocols.SetUnencryptedHTTP2`` (``pkg/server/service/smart_roundtripper.go``): the
connection opens with the HTTP/2 preface, no ``Upgrade: h2c`` round trip, and the request
goes out with ``:scheme: http``. This transport does the same, and keeps the rest of Go's
HTTP/2 client behaviour that a backend can see:

* one connection per origin, its streams multiplexed; another connection is opened when
  the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` is reached (until a new connection
  has the server's SETTINGS, the limit its other connections learnt, else Go's 100), and
  concurrent first requests share one dial; idle connections close after
  ``keepalive_expiry`` (Traefik's ``idleConnTimeout``);
* the header block is ``:authority`` (the ``Host``), ``:method``, ``:path``, ``:scheme``,
  then the headers, names in lower case, without the ones HTTP/2 forbids
  (``Connection``, ``Keep-Alive``, ``Proxy-Connection``, ``Transfer-Encoding``,
  ``Upgrade``; ``TE`` unless ``trailers``), ``Cookie`` split into one field per cookie;
  ``content-length`` is sent when the caller gives one, a body of unknown length is
  simply the DATA frames up to ``END_STREAM``;
* the request body streams while the response is read (full duplex), within the
  server's flow-control window; the response body streams out as the caller reads it,
  the window handed back only for what was read, so a slow client slows the server;
* a stream the caller gives up on (the client left, ``responseHeaderTimeout``, the body
  closed early) is reset with ``RST_STREAM(CANCEL)``, so the server stops working for
  nobody and the connection's window and stream count stay whole; a bodyless request
  the server refused (``REFUSED_STREAM``, or a ``GOAWAY`` that did not cover it) is
  retried once on another connection.

Why not httpx's own HTTP/2 (``httpx.AsyncClient(http1=False, http2=True)``, which is
prior knowledge for ``http://`` URLs): httpcore 1.0 never resets a stream its caller
abandoned (encode/httpcore#1022, #943), so the server keeps streaming into a window
nobody reads, and after 100 abandoned streams the connection refuses new ones. A gateway
abandons streams all the time. Both use the same ``h2`` state machine.

Errors are httpx's, as for :class:`~traefikservice_asgi.transport.pool.GatewayTransport`:
``ConnectError``/``ConnectTimeout``, ``RemoteProtocolError`` (reset, ``GOAWAY``, protocol
error, closed connection), ``ReadError``/``ReadTimeout``, ``LocalProtocolError``
(headers HTTP/2 cannot carry). An exception raised by the request body itself (the
client went away) is raised as is. A response header block Go's client refuses (see
:func:`_read_block`) resets its stream with ``PROTOCOL_ERROR`` and raises
:class:`~traefikservice_asgi.transport.http11.InvalidResponse` (Traefik's ``500``), the
other streams untouched, as in Go; validating in ``h2`` itself
(``validate_inbound_headers``) would end the whole connection instead. Limitation of
``h2``: after a ``GOAWAY`` it accepts no further frame, so streams the server meant to
finish fail instead; response trailers are checked, then dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httpx

from ..config import DEFAULT_IDLE_CONN_TIMEOUT
from .http11 import InvalidResponse
from .request import Origin, UpstreamRequest

__all__ = ["H2CTransport", "asks_upgrade"]

# What the gateway lets one response buffer before the server must wait for the client
# (the stream's receive window), and the connection's whole receive window.
_STREAM_WINDOW = 1 << 20
_CONNECTION_WINDOW = 1 << 24
_MAX_HEADER_LIST = 10 << 20  # Go's default MaxResponseHeaderBytes
# Go's limits before the server's SETTINGS arrive, and when they name none.
_INITIAL_MAX_STREAMS = 100
_DEFAULT_MAX_STREAMS = 1000
_READ_SIZE = 64 * 1024

# Headers HTTP/2 forbids (RFC 9113 §8.2.2), dropped as Go's transport drops them; Host
# becomes :authority.
_NOT_SENT = frozenset(
    {b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)

_Fields = Iterable[tuple[bytes, bytes]]  # h2's header list, with header_encoding=None

_CONFIG = h2.config.H2Configuration(
    client_side=True, header_encoding=None, validate_inbound_headers=False
)


# What Go's HTTP/2 framer accepts in a received header block (x/net/http2 frame.go).
# A field name on the wire: a token (httpguts.IsTokenRune) in lower case.
_WIRE_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z").match
# httpguts.ValidHeaderFieldValue refuses the CTLs but HTAB, and DEL; bytes >= 0x80 pass.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
_REQUEST_PSEUDO = frozenset({b":method", b":path", b":scheme", b":authority", b":protocol"})
_STATUS = re.compile(rb"[+-]?[0-9]+\Z").match  # what strconv.Atoi parses, base 10


class _Malformed(Exception):
    """A header block Go's HTTP/2 client refuses; ``connection``: it ends the whole
    connection (a pseudo-header in trailers), not only the stream."""

    def __init__(self, reason: str, *, connection: bool = False) -> None:
        super().__init__(reason)
        self.connection = connection


def _read_block(
    fields: Iterable[tuple[bytes, bytes]], *, trailers: bool = False
) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The ``:status`` (0 in trailers) and the regular fields of a received header block,
    in one pass; raises :class:`_Malformed` for what Go's client refuses.

    Ports, in ``golang.org/x/net/http2`` (net/http's bundled copy): ``Framer.readMetaFrame``
    (its field callback: ``httpguts.ValidHeaderFieldValue``, ``validWireHeaderFieldName``,
    "pseudo header field after regular"), ``MetaHeadersFrame.checkPseudos`` (unknown or
    duplicated pseudo-header, request and response pseudo-headers mixed): stream errors;
    then ``clientConnReadLoop.handleResponse`` ("missing status pseudo header", a
    ``:status`` ``strconv.Atoi`` refuses): stream errors; and ``processTrailers`` (any
    pseudo-header in trailers): a connection error. No more: connection-specific headers
    (``Connection``, ``Transfer-Encoding``, ``TE``...) are accepted, as Go accepts them
    (the proxy drops them as hop-by-hop), and so are values with HTAB or bytes >= 0x80.
    """
    regular: list[tuple[bytes, bytes]] = []
    status: bytes | None = None
    pseudo: list[bytes] = []
    request = response = False
    for name, value in fields:
        if _BAD_VALUE(value) is not None:
            raise _Malformed(f"invalid header field value for {name!r}")
        if name[:1] == b":":
            if regular:
                raise _Malformed("pseudo header field after regular")
            if name == b":status":
                response = True
                if status is None:
                    status = value
            elif name in _REQUEST_PSEUDO:
                request = True
            else:
                raise _Malformed(f"invalid pseudo-header {name!r}")
            if name in pseudo:
                raise _Malformed(f"duplicate pseudo-header {name!r}")
            pseudo.append(name)
        elif _WIRE_NAME(name) is None:
            raise _Malformed(f"invalid header field name {name!r}")
        else:
            regular.append((name, value))
    if request and response:
        raise _Malformed("mix of request and response pseudo headers")
    if trailers:
        if pseudo:
            raise _Malformed("pseudo-header in trailers", connection=True)
        return 0, regular
    if not status:
        raise _Malformed("malformed response from server: missing status pseudo header")
    if _STATUS(status) is None:
        raise _Malformed("malformed response from server: malformed non-numeric status")
    return int(status), regular


def asks_upgrade(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's ``Connection`` header holds ``upgrade``: Traefik sends such a
    request (a WebSocket handshake, say) over HTTP/1.1 even to an ``h2c://`` server,
    because HTTP/2 cannot carry a connection upgrade."""
    for name, value in headers:
        if name.lower() == b"connection" and any(
            token.strip().lower() == b"upgrade" for token in value.split(b",")
        ):
            return True
    return False


def _header_block(
    method: bytes, authority: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    block = [(b":authority", authority), (b":method", method), (b":path", target)]
    block.append((b":scheme", b"http"))
    for name, value in headers:
        lower = name.lower()
        if lower in _NOT_SENT:
            continue
        if lower == b"te" and value.strip().lower() != b"trailers":
            continue
        if lower == b"cookie":
            # Go's transport: one field per cookie-pair, for better compression
            # (RFC 9113 §8.2.3); split at each ";", the spaces after it dropped.
            for crumb in value.split(b";"):
                crumb = crumb.lstrip(b" ")
                if crumb:
                    block.append((b"cookie", crumb))
            continue
        block.append((lower, value))
    return block


class _Refused(httpx.RemoteProtocolError):
    """The server did not process the stream (REFUSED_STREAM, or a GOAWAY whose last
    stream id is lower): a request without a body may be sent again elsewhere."""


class _Unavailable(Exception):
    """The connection cannot take a new stream after all: pick or dial another."""


class _Expired(Exception):
    """A timer fired before the awaited event."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


class _Stream:
    """One request/response exchange on a connection."""

    __slots__ = (
        "body_done",
        "chunks",
        "connection",
        "ended",
        "error",
        "head",
        "headers",
        "id",
        "released",
        "sender",
        "status",
        "waiter",
    )

    def __init__(self, connection: _Connection, stream_id: int) -> None:
        self.connection = connection
        self.id = stream_id
        self.head = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self.ended = False  # END_STREAM received: the response is complete
        self.body_done = True  # the request body was sent to its end (or there is none)
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.sender: asyncio.Task[None] | None = None
        self.released = False

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.wake()

    async def wait(self, timeout: float | None) -> None:
        loop = self.connection.loop
        waiter = loop.create_future()
        self.waiter = waiter
        handle = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        except _Expired:
            raise httpx.ReadTimeout(f"no data from the server within {timeout} s") from None
        finally:
            if handle is not None:
                handle.cancel()
            self.waiter = None

    async def next_chunk(self, timeout: float | None) -> bytes:
        """The response body received so far (waiting for some), or b"" at its end."""
        while not self.chunks:
            if self.ended:  # complete: a later reset or connection loss does not matter
                self.finish()
                return b""
            if self.error is not None:
                raise _after_head(self.error)
            await self.wait(timeout)
        data = b"".join(chunk for chunk, _ in self.chunks)
        flow = sum(length for _, length in self.chunks)
        self.chunks.clear()
        self.connection.acknowledge(self.id, flow)
        return data

    def finish(self) -> None:
        """The response was read to its end. A request body not sent to its end (still
        going, or stopped by a failure) is not wanted any more: the stream is reset, as Go
        does, so that it does not stay half open on either side."""
        if self.released:
            return
        if not self.body_done:
            self.abandon()
            return
        self.released = True
        self.connection.release(self)

    def abandon(self) -> None:
        """Give the stream up: stop sending, reset it if it is still open, hand its
        unread bytes back to the connection window."""
        if self.released:
            return
        self.released = True
        sender = self.sender
        if sender is not None and not sender.done():
            sender.cancel()
        unread = sum(length for _, length in self.chunks)
        self.chunks.clear()
        self.connection.cancel(self, unread)

    async def abandon_and_wait(self) -> None:
        """:meth:`abandon`, then wait for the body sender to stop, so nothing reads the
        client's body any more (the caller may drain it)."""
        self.abandon()
        sender = self.sender
        if sender is not None and not sender.done():
            await asyncio.wait([sender])


def _after_head(error: BaseException) -> BaseException:
    """An error met while the response streams: a failure of the request body (the
    client went away) surfaces as a transport error, which the leaf turns into an
    aborted response."""
    if isinstance(error, httpx.TransportError):
        return error
    failed = httpx.WriteError(f"the request body failed: {error!r}")
    failed.__cause__ = error
    return failed


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: the ``h2`` state machine on an asyncio transport."""

    def __init__(self, pool: H2CTransport, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.h2 = h2.connection.H2Connection(config=_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.closed = False
        self.draining = False  # GOAWAY received, or stream ids exhausted: no new streams
        self.settings_received = False
        self.error: httpx.TransportError | None = None
        self._write_paused = False
        self._flow: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: _MAX_HEADER_LIST,
            },
        )
        del settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL]  # Go sends none
        self.h2.local_settings = settings
        self.h2.initiate_connection()  # the preface and our SETTINGS: prior knowledge
        self.h2.increment_flow_control_window(_CONNECTION_WINDOW)
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.flush()  # the GOAWAY h2 queued
            self._broken(httpx.RemoteProtocolError(f"HTTP/2 protocol error: {exc}"))
            return
        for event in events:
            self._dispatch(event)
            if self.error is not None:  # a connection error: the frames after it are moot
                return
        self.flush()

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        if self.error is None:
            self.error = (
                httpx.RemoteProtocolError("server disconnected")
                if exc is None
                else httpx.ReadError(f"connection broken: {exc!r}")
            )
        for stream in list(self.streams.values()):
            stream.fail(self.error)
        self._wake_flow()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_flow()

    # -- events ---------------------------------------------------------------------------

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                try:
                    status, headers = _read_block(cast(_Fields, event.headers or ()))
                except _Malformed as exc:
                    self._malformed(stream, exc)
                    return
                if 200 <= status <= 599:
                    stream.status, stream.headers = status, headers
                    stream.head = True
                    stream.wake()
                else:
                    stream.fail(httpx.RemoteProtocolError(f"response with :status {status}"))
        elif isinstance(event, h2.events.InformationalResponseReceived):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                try:  # not relayed, but Go's framer checks it as any header block
                    _read_block(cast(_Fields, event.headers or ()))
                except _Malformed as exc:
                    self._malformed(stream, exc)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                try:  # read and dropped, once Go would have accepted them
                    _read_block(cast(_Fields, event.headers or ()), trailers=True)
                except _Malformed as exc:
                    self._malformed(stream, exc)
        elif isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id or 0
            stream = self.streams.get(stream_id)
            length = event.flow_controlled_length or 0
            if stream is None or stream.released:
                self.acknowledge(stream_id, length)
            else:
                stream.chunks.append((event.data or b"", length))
                stream.wake()
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream.ended = True
                stream.wake()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                code = event.error_code
                if not (stream.ended and code == h2.errors.ErrorCodes.NO_ERROR):
                    # NO_ERROR after a complete response only asks us to stop sending.
                    kind = _Refused if code == h2.errors.ErrorCodes.REFUSED_STREAM else None
                    stream.fail((kind or httpx.RemoteProtocolError)(_reset_text(code)))
                if stream.sender is not None:
                    stream.sender.cancel()
            self._wake_flow()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings_received = True
                self.pool._limits[self.origin] = self._stream_limit()
            self._wake_flow()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.draining = True
            last = event.last_stream_id or 0
            for stream in list(self.streams.values()):
                if stream.id > last:
                    stream.fail(_Refused(f"GOAWAY from the server before stream {stream.id}"))
            if not self.streams:
                self.close()

    def _malformed(self, stream: _Stream, error: _Malformed) -> None:
        """Go's answer to a header block it refuses (see :func:`_read_block`). A stream
        error: ``RST_STREAM(PROTOCOL_ERROR)`` and only this request fails, the stream
        forgotten at once (its later frames, ``END_STREAM`` included, are not its
        response any more). A connection error: ``GOAWAY(PROTOCOL_ERROR)``, every stream
        of the connection fails. Either way a request still waiting for its head gets
        :class:`InvalidResponse` (Go's ``RoundTrip`` error is neither ``io.EOF`` nor a
        ``net.Error``: Traefik answers 500); one whose response has started is aborted."""
        failure = InvalidResponse(f"malformed HTTP/2 response header block: {error}")
        if error.connection:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection(error_code=h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self.flush()
            self._broken(failure)
            return
        self.streams.pop(stream.id, None)
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.h2.reset_stream(stream.id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        stream.fail(failure)
        self._wake_flow()  # a sender waiting for window sees the error and stops

    # -- used by the transport ------------------------------------------------------------

    def _stream_limit(self) -> int:
        if not self.settings_received:
            return self.pool._limits.get(self.origin, _INITIAL_MAX_STREAMS)
        return min(self.h2.remote_settings.max_concurrent_streams, _DEFAULT_MAX_STREAMS)

    def available(self) -> bool:
        if self.closed or self.draining or self.error is not None:
            return False
        return len(self.streams) < self._stream_limit()

    def open_stream(self, block: list[tuple[bytes, bytes]], end_stream: bool) -> _Stream:
        if not self.available():
            raise _Unavailable
        try:
            stream_id = self.h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.draining = True
            raise _Unavailable from None
        try:
            self.h2.send_headers(stream_id, block, end_stream=end_stream)
        except h2.exceptions.TooManyStreamsError:
            raise _Unavailable from None
        except h2.exceptions.ProtocolError as exc:
            # The header compression state may be half updated: the connection is done.
            error = httpx.LocalProtocolError(f"request headers refused by HTTP/2: {exc}")
            self._broken(error)
            raise error from None
        stream = _Stream(self, stream_id)
        self.streams[stream_id] = stream
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self.flush()
        return stream

    async def send_body(
        self, stream: _Stream, body: AsyncIterable[bytes], timeout: float | None
    ) -> None:
        """The body sender task: DATA frames within the flow-control windows, then
        ``END_STREAM``. A failure of ``body`` itself fails the stream with that error."""
        h2c = self.h2
        try:
            async for chunk in body:
                while chunk:
                    if stream.released or stream.error is not None or self.closed:
                        return
                    window = min(
                        h2c.local_flow_control_window(stream.id), h2c.max_outbound_frame_size
                    )
                    if window <= 0 or self._write_paused:
                        await self._wait_flow(timeout)
                        continue
                    h2c.send_data(stream.id, chunk[:window])
                    chunk = chunk[window:]
                    self.flush()
            if not (stream.released or stream.error is not None or self.closed):
                h2c.end_stream(stream.id)
                self.flush()
                stream.body_done = True
        except h2.exceptions.StreamClosedError:
            return  # reset meanwhile: its error, if any, is already on the stream
        except h2.exceptions.ProtocolError as exc:
            stream.fail(httpx.LocalProtocolError(f"HTTP/2 error while sending: {exc}"))
        except Exception as exc:  # the body's own failure (e.g. the client went away)
            stream.fail(exc)

    async def _wait_flow(self, timeout: float | None) -> None:
        """Wait for more send window (or for the socket to drain); one future shared by
        every sender of the connection, shielded from each one's cancellation."""
        flow = self._flow
        if flow is None or flow.done():
            flow = self._flow = self.loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(flow), timeout)
        except asyncio.TimeoutError:
            raise httpx.WriteTimeout(f"could not send to the server within {timeout} s") from None

    def _wake_flow(self) -> None:
        flow, self._flow = self._flow, None
        if flow is not None and not flow.done():
            flow.set_result(None)

    def acknowledge(self, stream_id: int, length: int) -> None:
        """Hand ``length`` bytes of the stream's (and connection's) window back."""
        if length and not self.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):  # the connection is ending
                self.h2.acknowledge_received_data(length, stream_id)
            self.flush()

    def release(self, stream: _Stream) -> None:
        """A stream is over on both sides."""
        self.streams.pop(stream.id, None)
        self.idle()

    def cancel(self, stream: _Stream, unread: int) -> None:
        """Reset a stream the caller gave up on, if it is still open."""
        self.streams.pop(stream.id, None)
        if not self.closed:
            try:
                if unread:
                    self.h2.acknowledge_received_data(unread, stream.id)
                self.h2.reset_stream(stream.id, h2.errors.ErrorCodes.CANCEL)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass  # closed already, or the connection is ending: nothing to reset
            self.flush()
        self._wake_flow()
        self.idle()

    def idle(self) -> None:
        """With no stream open: start the idle clock (the next stream stops it), or close
        a connection that will take no new stream."""
        if self.streams or self.closed:
            return
        if self.draining or self.error is not None:
            self.close()
            return
        expiry = self.pool.keepalive_expiry
        if expiry is not None and self._idle_timer is None:
            self._idle_timer = self.loop.call_later(expiry, self._expire_idle)

    def _expire_idle(self) -> None:
        self._idle_timer = None
        if not self.streams:
            self.close()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _broken(self, error: httpx.TransportError) -> None:
        if self.error is None:
            self.error = error
        for stream in list(self.streams.values()):
            stream.fail(error)
        self.abort()

    def close(self) -> None:
        """Say goodbye (GOAWAY) and close."""
        if self.closed:
            return
        self.closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self.pool._forget(self)
        if self.transport is not None:
            with contextlib.suppress(h2.exceptions.ProtocolError):  # closed already
                self.h2.close_connection()
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self.pool._forget(self)
        if self.transport is not None:
            self.transport.abort()


def _reset_text(code: int | None) -> str:
    try:
        name = h2.errors.ErrorCodes(code or 0).name
    except ValueError:
        name = str(code)
    return f"stream reset by the server ({name})"


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as it arrives."""

    __slots__ = ("_stream", "_timeout")

    def __init__(self, stream: _Stream, timeout: float | None) -> None:
        self._stream = stream
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream, timeout = self._stream, self._timeout
        try:
            while True:
                chunk = await stream.next_chunk(timeout)
                if not chunk:
                    return
                yield chunk
        except BaseException:
            stream.abandon()
            raise

    async def aclose(self) -> None:
        stream = self._stream
        if stream.ended and stream.error is None and not stream.chunks:
            stream.finish()
        else:
            stream.abandon()


class H2CTransport(httpx.AsyncBaseTransport):
    """The HTTP/2 prior-knowledge transport (see the module docstring).

    Takes ``h2c://`` and ``http://`` URLs alike (both are cleartext HTTP/2 here), so it
    can be mounted on an ``httpx.AsyncClient`` for ``h2c://``: the gateway's health
    checks reach h2c servers that way. The transport binds to the event loop of its
    first request; used from another loop, it starts a new pool there.
    """

    def __init__(self, *, keepalive_expiry: float | None = DEFAULT_IDLE_CONN_TIMEOUT) -> None:
        if keepalive_expiry is not None and keepalive_expiry < 0:
            raise ValueError("keepalive_expiry must be >= 0 or None")
        self.keepalive_expiry = keepalive_expiry
        self._pool: dict[Origin, list[_Connection]] = {}
        self._dialing: dict[Origin, asyncio.Task[_Connection]] = {}
        self._limits: dict[Origin, int] = {}  # the streams per connection each server allows
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    # -- pool -----------------------------------------------------------------------------

    def _forget(self, connection: _Connection) -> None:
        connections = self._pool.get(connection.origin)
        if connections is not None and connection in connections:
            connections.remove(connection)
            if not connections:
                del self._pool[connection.origin]

    def _available(self, origin: Origin) -> _Connection | None:
        for connection in reversed(self._pool.get(origin, ())):
            if connection.available():
                return connection
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        _, host, port = origin
        loop = asyncio.get_running_loop()
        connection = _Connection(self, origin)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: connection, host.decode("ascii"), port), timeout
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host.decode()}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host.decode()}:{port}: {exc}") from exc
        if self._closed:
            connection.close()
            raise RuntimeError("the transport is closed")
        self._pool.setdefault(origin, []).append(connection)
        connection.idle()  # until its first stream: not kept forever if none comes
        return connection

    def _dial(self, origin: Origin, timeout: float | None) -> asyncio.Task[_Connection]:
        """One dial per origin at a time, shared by the requests waiting for it (Go's
        ``dialOnMiss``): a slow or refused server costs one attempt, not one each."""
        task = self._dialing.get(origin)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(origin, timeout))
            self._dialing[origin] = task

            def done(finished: asyncio.Task[_Connection]) -> None:
                if self._dialing.get(origin) is finished:
                    del self._dialing[origin]
                if not finished.cancelled():
                    finished.exception()  # retrieved: a failure nobody awaits is not logged

            task.add_done_callback(done)
        return task

    async def _acquire(self, origin: Origin, timeout: float | None) -> _Connection:
        """A connection with room for a stream: a pooled one, else a new one. The requests
        a dial leaves no room for (a burst larger than the stream limit) share the next
        dial, so a burst opens as many connections as it needs, not one each."""
        while True:
            connection = self._available(origin)
            if connection is not None:
                return connection
            connection = await asyncio.shield(self._dial(origin, timeout))
            if connection.available():
                return connection
            if not connection.streams:  # not filled by the others: it takes no stream at all
                raise httpx.RemoteProtocolError("the server accepts no new stream")

    # -- requests -------------------------------------------------------------------------

    async def forward(self, request: UpstreamRequest) -> httpx.Response:
        """One exchange: of ``request.origin`` the scheme is not used (always cleartext),
        ``request.authority`` is the ``Host``; the body is sent only when
        ``request.has_body``. The response streams: read it to its end or ``aclose`` it."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._pool.clear()  # connections of another loop cannot be used here
            self._dialing.clear()
            self._loop = loop
        block = _header_block(request.method, request.authority, request.target, request.headers)
        origin, body, has_body, timeouts = (
            request.origin,
            request.body,
            request.has_body,
            request.timeouts,
        )
        read_timeout = timeouts.get("read")
        for attempt in range(2):
            connection = await self._acquire(origin, timeouts.get("connect"))
            try:
                stream = connection.open_stream(block, end_stream=not has_body)
            except _Unavailable:
                continue
            if has_body:
                stream.body_done = False
                stream.sender = loop.create_task(
                    connection.send_body(stream, body, timeouts.get("write"))
                )
            try:
                while not stream.head:
                    if stream.error is not None:
                        raise stream.error
                    await stream.wait(read_timeout)
            except _Refused:
                await stream.abandon_and_wait()
                if attempt == 0 and not has_body:
                    continue
                raise
            except BaseException:
                await stream.abandon_and_wait()
                raise
            return httpx.Response(
                stream.status,
                headers=stream.headers,
                stream=_ResponseStream(stream, read_timeout),
                extensions={"http_version": b"HTTP/2"},
            )
        raise httpx.ConnectError("no HTTP/2 connection could take the request")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("h2c", "http"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r} for h2c")
        if not url.raw_host:
            raise httpx.UnsupportedProtocol(f"no host in URL {url}")
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise RuntimeError("H2CTransport needs an async request stream")
        raw = request.headers.raw
        host = next((v for k, v in raw if k.lower() == b"host"), url.netloc)
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in raw)
        return await self.forward(
            UpstreamRequest(
                request.method.encode("ascii"),
                (b"http", url.raw_host, url.port or 80),
                host,
                url.raw_path,
                raw,
                stream,
                request.extensions.get("timeout") or {},
                has_body=has_body,
            )
        )

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._dialing.values()):
            task.cancel()
        self._dialing.clear()
        for connections in list(self._pool.values()):
            for connection in list(connections):
                for stream in list(connection.streams.values()):
                    stream.abandon()
                connection.close()
        self._pool.clear()

    # -- introspection (tests) ------------------------------------------------------------

    def connections(self) -> int:
        """How many open connections the pool holds."""
        return sum(1 for conns in self._pool.values() for c in conns if not c.closed)
