"""Proxy one ASGI ``websocket`` connection to one server URL.

Traefik proxies a WebSocket like any request: Go's ``httputil.ReverseProxy`` sends the
upgrade request to the backend, relays a refusal (any status but 101) as a normal
response, and after a ``101`` hijacks both TCP connections and copies bytes. Under
``serve`` the gateway does the same (its own WebSocket protocol offers the tunnel
extension, and :class:`~.http.Server` tunnels: ``transport/tunnel.py``). Under any other
ASGI server an app cannot hijack: the server terminates the client's WebSocket and
hands us whole messages. So this module terminates the backend's side too and relays
*messages*:

* the upgrade request carries the route's view of the request (``_forwarding.prepare``:
  ``X-Forwarded-Proto: ws``/``wss``, ``X-Forwarded-For`` ...), the client's ``Host`` when
  ``passHostHeader`` (else the server's), its ``Cookie``/``Authorization``/``Origin``/
  ``User-Agent`` as sent, and its ``Sec-WebSocket-Protocol`` list; nothing is added;
* a refusal is relayed (status, headers, body) through the ASGI ``websocket.http.response``
  extension; an unreachable backend is ``502 Bad Gateway``, a server certificate the
  gateway refuses ``500``, and a connect timeout ``504 Gateway Timeout``, as in
  ``proxy/http.py``. Without the extension the handshake can only be
  refused with ``websocket.close`` (code 1011), which every ASGI server turns into a
  ``403``;
* on success the client is accepted with the backend's subprotocol and its extra
  headers (``Set-Cookie`` ...), then messages flow both ways, each ``send`` awaited, so a
  slow reader slows the writer on the other side instead of filling memory;
* towards a slow client, what the gateway holds per connection is bounded in *bytes*
  (:data:`MAX_BUFFERED`): the messages received from the backend and not yet taken by
  the client's ASGI server, the one being handed over included. Reaching it, the gateway
  stops reading the backend's socket, so the backend's writes block as they would through
  Traefik's tunnel. A message is relayed whole, so one message larger than the bound
  (up to :data:`MAX_MESSAGE_SIZE`) is read whole, then reading stops until the client
  has taken it: at most ``max(MAX_BUFFERED, one message)`` plus one socket read (256
  KiB) per connection, and besides it whatever the ASGI server buffers itself (uvicorn:
  the unsent rest of the message before). websockets' own ``max_queue`` counts frames
  (16 frames of 16 MiB: 256 MiB), so it is off and replaced by this count;
* close codes and reasons cross in both directions. Codes that cannot be sent in a close
  frame are translated: ``1005`` (no code) becomes ``1000``; a client that vanished
  (``1006``) makes us drop the backend connection, as Traefik's tunnel would, so the
  backend sees ``1006`` too; a backend that vanished becomes ``1011`` for the client (an
  ASGI app cannot drop the client's TCP connection).

Library: ``websockets`` (already installed by ``uvicorn[standard]``, and uvicorn's default
WebSocket implementation). It is actively maintained, typed, asyncio-native, and its
client has bounded buffers both ways (reading can be paused, ``send`` awaits the write
buffer draining), which is the backpressure we need. Its Sans-I/O
``ClientProtocol`` lets us write the handshake request ourselves (it would otherwise set
``Host`` from the URL and add ``User-Agent``), and its handshake exception carries the
backend's full refusal response. Using the connection classes directly (not
``connect()``) also keeps out what a proxy must not do: follow redirects, read proxy
settings from the environment, or retry. ``wsproto`` is Sans-I/O only (we would write
the I/O, message assembly and flow control ourselves); ``httpx-ws`` is a thin, less
maintained layer over wsproto; ``aiohttp`` is a second HTTP stack to install.

Differences from Traefik, all consequences of relaying messages instead of bytes:
permessage-deflate is negotiated separately on each side (none towards the backend),
the backend gets its own ``Sec-WebSocket-Key``, a backend message over 16 MiB (uvicorn's
default limit for client messages) closes the connection with 1009, a refusal body over
1 MiB (websockets' limit) becomes a 502, pings are answered on each side rather than
passed through, and the ASGI server adds ``Content-Type`` to a relayed refusal without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import DATA_OPCODES, Frame
from websockets.http11 import Request
from websockets.protocol import Event
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from ..config import DEFAULT_DIAL_TIMEOUT, ServersTransport
from ..entrypoint.context import forward_of
from ..entrypoint.forwarding import HOP_BY_HOP, Forward
from ..responses import STATUS_TEXT
from ..transport.tls import websocket_ssl_context

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_BUFFERED",
    "MAX_MESSAGE_SIZE",
    "forward_websocket",
    "http_responses_as_websocket",
]

logger = logging.getLogger("traefikservice_asgi.websocket")

CONNECT_TIMEOUT = DEFAULT_DIAL_TIMEOUT
"""Seconds to open the TCP (and TLS) connection: Traefik's ``dialTimeout``. The
handshake answer itself is awaited without limit, as Traefik's ``responseHeaderTimeout``
is 0 by default; a client that leaves meanwhile ends the wait."""

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""Largest message accepted from a backend: uvicorn's default for client messages."""

MAX_BUFFERED = 1024 * 1024
"""Bytes of a backend's messages the gateway holds for one slow client before it stops
reading that backend (the message being handed to the client included). A single
message larger than this is still read whole: messages are relayed whole."""

_RESUME_AT = MAX_BUFFERED // 4  # reading resumes at or under this (or with nothing held)
_CLOSE_TIMEOUT = 10.0  # seconds to wait for the backend's half of the closing handshake
_REFUSAL_CLOSE_CODE = 1011

# Headers of the client's upgrade request the handshake with the backend writes itself.
_REQUEST_OWN = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
    }
)
# Backend response headers never relayed: hop-by-hop, those of the handshake (the ASGI
# server writes its own for the client's), Date (the server adds one), and the body
# framing of a refusal, rebuilt from the body websockets has already read.
_RESPONSE_DROP = HOP_BY_HOP | {
    b"date",
    b"content-length",
    b"sec-websocket-accept",
    b"sec-websocket-protocol",
    b"sec-websocket-extensions",
}
# Codes a close frame may carry (RFC 6455 §7.4, as websockets checks them).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def _sendable(code: int) -> bool:
    return code in _SENDABLE or 3000 <= code < 5000


@dataclass(frozen=True, slots=True)
class _Closed:
    """How one side ended the conversation."""

    code: int
    reason: str = ""


class _Failed(Exception):
    """The backend did not accept the upgrade; what the client is answered instead."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body

    @classmethod
    def bare(cls, status: int) -> _Failed:
        """Traefik's proxy error: the status text alone."""
        return cls(status, [], STATUS_TEXT[status].encode())


class _UpstreamProtocol(ClientProtocol):
    """websockets' client protocol with the handshake request a proxy sends.

    websockets writes ``Host`` from the URL and offers no way to replace it (extra
    headers are appended, giving two); here the request is the client's: its target as
    received, its ``Host`` (or the server's), its headers, and websockets' own upgrade
    headers (key, version, subprotocols).
    """

    def __init__(
        self,
        url: str,
        *,
        target: str,
        host: str,
        headers: Sequence[tuple[str, str]],
        subprotocols: Sequence[Subprotocol] | None,
    ) -> None:
        super().__init__(parse_uri(url), subprotocols=subprotocols, max_size=MAX_MESSAGE_SIZE)
        self._target = target
        self._host = host
        self._headers = headers

    def connect(self) -> Request:
        own = super().connect()
        headers = Headers()
        headers["Host"] = self._host
        for name, value in own.headers.raw_items():
            if name.lower() != "host":
                headers[name] = value
        for name, value in self._headers:
            headers[name] = value
        return Request(self._target, headers)


class _BoundedConnection(ClientConnection):
    """websockets' client connection with flow control counted in bytes of messages.

    websockets pauses reading when its queue holds ``max_queue`` *frames*, whatever their
    size: with 8 MiB messages, 16 frames were 128 MiB per slow client. Here every data
    frame is counted as it is parsed, and reading pauses once the complete messages held
    (queued, or returned by ``recv`` and not yet :meth:`relayed`) and the one still
    arriving reach :data:`MAX_BUFFERED`. Reading never pauses while no message is
    complete: ``recv`` needs the rest of a fragmented message to return anything."""

    def __init__(self, protocol: ClientProtocol) -> None:
        super().__init__(
            protocol,
            ping_interval=None,  # the client's pings are answered by the ASGI server
            ping_timeout=None,
            close_timeout=_CLOSE_TIMEOUT,
            max_queue=None,  # frames, not bytes: replaced by the count below
        )
        self._held = 0  # bytes of complete messages queued or being relayed
        self._partial = 0  # bytes of the message still arriving
        self._sizes: deque[int] = deque()  # sizes of complete messages not yet relayed
        self._paused = False
        self._discarding = False

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES:
            if self._discarding:
                return  # closing: nobody will relay it
            self._partial += len(event.data)
            if event.fin:
                self._sizes.append(self._partial)
                self._held += self._partial
                self._partial = 0
            if self._held and self._held + self._partial >= MAX_BUFFERED and not self._paused:
                self._paused = True
                self.transport.pause_reading()
        super().process_event(event)

    def relayed(self) -> None:
        """The message ``recv`` returned last is in the client's ASGI server's hands."""
        self._held -= self._sizes.popleft()
        if self._paused and (not self._held or self._held + self._partial <= _RESUME_AT):
            self._paused = False
            self.transport.resume_reading()

    def discard_messages(self) -> None:
        """Closing: drop data frames from now on and read again, so that the backend's
        close frame can arrive without its messages piling up meanwhile."""
        self._discarding = True
        if self._paused:
            self._paused = False
            self.transport.resume_reading()


def _latin1(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


def _relayed(headers: Headers) -> list[tuple[bytes, bytes]]:
    """The backend's response headers worth passing to the client."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.raw_items()]
    connection = {
        t.strip().lower() for k, v in raw if k == b"connection" for t in v.split(b",") if t.strip()
    }
    return [(k, v) for k, v in raw if k not in _RESPONSE_DROP and k not in connection]


async def _open(
    url: str,
    forward: Forward,
    scope: Scope,
    pass_host_header: bool,
    transport: ServersTransport | None,
) -> _BoundedConnection:
    """Connect to ``url`` and complete the handshake; raise :class:`_Failed` otherwise.

    ``transport`` (Traefik's ServersTransport) sets the TLS rules, the SNI name, the
    time allowed to connect (``dialTimeout``) and to answer (``responseHeaderTimeout``).
    """
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    hostname = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    netloc = parts.netloc
    host = forward.host.decode("latin-1") if pass_host_header and forward.host else netloc
    headers = [(k, v) for k, v in forward.headers if k not in _REQUEST_OWN]
    offered = [Subprotocol(p) for p in scope.get("subprotocols", ())]
    protocol = _UpstreamProtocol(
        f"{'wss' if secure else 'ws'}://{netloc}/",
        target=forward.target.decode("latin-1"),
        host=host,
        headers=_latin1(headers),
        subprotocols=offered or None,
    )
    sni = transport.server_name if transport and transport.server_name else hostname
    loop = asyncio.get_running_loop()

    def factory() -> _BoundedConnection:
        return _BoundedConnection(protocol)

    try:
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                factory,
                hostname,
                port,
                ssl=websocket_ssl_context(transport) if secure else None,
                server_hostname=sni if secure else None,
            ),
            transport.dial_timeout if transport else CONNECT_TIMEOUT,
        )
    except asyncio.TimeoutError as exc:
        logger.debug("504 Gateway Timeout from %s: %r", url, exc)
        raise _Failed.bare(504) from exc
    except ssl.SSLCertVerificationError as exc:
        # A certificate the gateway refuses: 500, as for HTTP (transport.tls.CertificateRefused)
        logger.debug("500 Internal Server Error from %s: %r", url, exc)
        raise _Failed.bare(500) from exc
    except OSError as exc:
        logger.debug("502 Bad Gateway from %s: %r", url, exc)
        raise _Failed.bare(502) from exc
    try:
        await asyncio.wait_for(
            connection.handshake(None, user_agent_header=None),
            transport.response_header_timeout if transport else None,
        )
    except asyncio.TimeoutError as exc:
        connection.transport.abort()
        logger.debug("504 Gateway Timeout: no answer to the upgrade from %s", url)
        raise _Failed.bare(504) from exc
    except InvalidStatus as exc:
        connection.transport.abort()
        response = exc.response
        logger.debug("%s refused the upgrade: %d", url, response.status_code)
        raise _Failed(
            response.status_code, _relayed(response.headers), bytes(response.body)
        ) from exc
    except (InvalidHandshake, OSError) as exc:
        connection.transport.abort()
        logger.debug("502 Bad Gateway from %s: %r", url, exc)
        raise _Failed.bare(502) from exc
    except BaseException:
        connection.transport.abort()
        raise
    return connection


async def _refuse(scope: Scope, send: Send, failure: _Failed) -> None:
    """Answer the client's handshake with the backend's refusal, or close it."""
    try:
        if "websocket.http.response" in scope.get("extensions", {}):
            headers = [*failure.headers, (b"content-length", str(len(failure.body)).encode())]
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": failure.status,
                    "headers": headers,
                }
            )
            await send({"type": "websocket.http.response.body", "body": failure.body})
        else:
            await send({"type": "websocket.close", "code": _REFUSAL_CLOSE_CODE})
    except OSError:  # the client left meanwhile
        pass


def http_responses_as_websocket(scope: Scope, send: Send) -> Send:
    """Wrap the ``send`` of a ``websocket`` scope so that plain HTTP responses written by
    the service tree (``503 no available server``, ...) reach the client as Traefik sends
    them: through the ``websocket.http.response`` extension, or, without it, as a
    ``websocket.close`` (code 1011) refusing the handshake."""
    extension = "websocket.http.response" in scope.get("extensions", {})
    refused = False

    async def sender(message: Message) -> None:
        nonlocal refused
        kind = message["type"]
        if kind == "http.response.start":
            if extension:
                message = {**message, "type": "websocket.http.response.start"}
            elif not refused:
                refused = True
                message = {"type": "websocket.close", "code": _REFUSAL_CLOSE_CODE}
            else:
                return
        elif kind == "http.response.body":
            if not extension:
                return
            message = {**message, "type": "websocket.http.response.body"}
        await send(message)

    return sender


async def _client_to_backend(
    first: asyncio.Future[Message], receive: Receive, upstream: ClientConnection
) -> _Closed | None:
    """Relay the client's messages until it leaves (its close), or the backend is gone
    (None: the other direction reports the backend's close)."""
    message = await first
    while True:
        kind = message["type"]
        if kind == "websocket.disconnect":
            return _Closed(int(message.get("code", 1005)), str(message.get("reason") or ""))
        if kind == "websocket.receive":
            text: str | None = message.get("text")
            data: bytes | None = message.get("bytes")
            try:
                if text is not None:
                    await upstream.send(text)
                elif data is not None:
                    await upstream.send(data)
            except ConnectionClosed:
                return None
        message = await receive()


async def _backend_to_client(upstream: _BoundedConnection, send: Send) -> _Closed | None:
    """Relay the backend's messages until it closes (its close), or the client is gone
    (None: the other direction reports the client's close). A message counts against
    the connection's :data:`MAX_BUFFERED` until the client's ``send`` returns."""
    while True:
        try:
            data = await upstream.recv()
        except ConnectionClosed as exc:
            if exc.rcvd is not None and (exc.sent is None or exc.rcvd_then_sent):
                return _Closed(exc.rcvd.code, exc.rcvd.reason)  # the backend closed
            if exc.sent is not None:
                return _Closed(exc.sent.code, exc.sent.reason)  # we failed it (e.g. 1009)
            return _Closed(1006)  # the connection dropped
        if isinstance(data, str):
            message: Message = {"type": "websocket.send", "text": data}
        else:
            message = {"type": "websocket.send", "bytes": bytes(data)}
        try:
            await send(message)
        except OSError:  # uvicorn's ClientDisconnected
            return None
        del message, data
        upstream.relayed()


async def _close_upstream(upstream: _BoundedConnection, closed: _Closed) -> None:
    """Pass the client's close on to the backend."""
    upstream.discard_messages()
    if closed.code == 1005:
        await upstream.close(1000)
    elif _sendable(closed.code):
        await upstream.close(closed.code, closed.reason)
    else:  # 1006/1015: the client vanished; so does our connection to the backend
        upstream.transport.abort()


async def _close_client(send: Send, closed: _Closed) -> None:
    """Pass the backend's close on to the client."""
    if closed.code == 1005:
        code, reason = 1000, ""
    elif _sendable(closed.code):
        code, reason = closed.code, closed.reason
    else:  # 1006/1015: the backend vanished
        code, reason = 1011, ""
    with contextlib.suppress(OSError):  # the client left meanwhile
        await send({"type": "websocket.close", "code": code, "reason": reason})


async def _pump(
    upstream: _BoundedConnection, first: asyncio.Future[Message], receive: Receive, send: Send
) -> None:
    """Both directions at once; the first side to close ends both."""
    up = asyncio.create_task(
        _client_to_backend(first, receive, upstream), name="traefikservice_asgi.ws.up"
    )
    down = asyncio.create_task(
        _backend_to_client(upstream, send), name="traefikservice_asgi.ws.down"
    )
    try:
        pending: set[asyncio.Task[_Closed | None]] = {up, down}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if up in done and (closed := up.result()) is not None:
                down.cancel()
                await _close_upstream(upstream, closed)
                return
            if down in done and (closed := down.result()) is not None:
                up.cancel()
                await _close_client(send, closed)
                return
    finally:
        up.cancel()
        down.cancel()
        await asyncio.wait({up, down})


async def _discard(upstream: ClientConnection) -> None:
    """Make sure the backend connection is gone and its transport released."""
    if not upstream.connection_lost_waiter.done():
        upstream.transport.abort()
    await upstream.wait_closed()


async def forward_websocket(
    url: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    pass_host_header: bool,
    transport: ServersTransport | None = None,
) -> None:
    """Proxy the ``websocket`` connection of ``scope`` to the server ``url``
    (``http://`` or ``https://``, which become ``ws://``/``wss://``), talking to it as
    ``transport`` says (None: Traefik's default ServersTransport)."""
    forward = forward_of(scope)
    if (await receive())["type"] != "websocket.connect":
        return  # the client left before anything happened
    # Only a disconnect can come before we accept: watch for it while connecting, and
    # hand the same pending receive to the relay, so no message is ever lost.
    watching = asyncio.ensure_future(receive())
    connecting = asyncio.ensure_future(_open(url, forward, scope, pass_host_header, transport))
    upstream: _BoundedConnection | None = None
    try:
        await asyncio.wait({watching, connecting}, return_when=asyncio.FIRST_COMPLETED)
        if watching.done():
            logger.debug("client left before %s answered the upgrade", url)
            return
        try:
            upstream = connecting.result()
        except _Failed as failure:
            await _refuse(scope, send, failure)
            return
        response = upstream.response
        assert response is not None  # the handshake succeeded
        try:
            await send(
                {
                    "type": "websocket.accept",
                    "subprotocol": upstream.subprotocol,
                    "headers": _relayed(response.headers),
                }
            )
        except OSError:
            return
        await _pump(upstream, watching, receive, send)
    finally:
        watching.cancel()
        connecting.cancel()
        await asyncio.wait({watching, connecting})
        if upstream is None and not connecting.cancelled() and connecting.exception() is None:
            upstream = connecting.result()
        if upstream is not None:
            await _discard(upstream)
