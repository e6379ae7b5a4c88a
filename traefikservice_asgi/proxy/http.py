"""The leaf of every service tree: forward one request to one server URL.

Ports Traefik's ``pkg/proxy/httputil`` reverse proxy and the forwarder choice of
``pkg/server/service/smart_roundtripper.go``. Requests go through the transports of one
:class:`~traefikservice_asgi.transport.manager.ClientHolder` per ServersTransport
(connection pooling across every route), streamed both ways. Failures become the responses Traefik's proxy sends
(``pkg/proxy/httputil/proxy.go``, ``ComputeStatusCode``): a timeout is ``504 Gateway
Timeout``, a refused or broken connection ``502 Bad Gateway``, a response Go's transport
refuses to parse (:class:`~traefikservice_asgi.transport.http11.InvalidResponse`) or a
``1xx`` as final answer, or a server certificate the gateway refuses
(:class:`~traefikservice_asgi.transport.tls.CertificateRefused`) ``500 Internal Server Error``, each with the bare status text as
body (the table is in docs/guides/production.md). A backend that fails after the response has started cannot be turned
into a status any more: the client's response is aborted, never finished as if complete.

An ``h2c://`` server is spoken to in HTTP/2 cleartext with prior knowledge
(:mod:`~traefikservice_asgi.transport.h2c`), except for a request asking for a connection
upgrade, which goes over HTTP/1.1 as in Traefik: WebSockets included.

A WebSocket under ``serve`` (whose ASGI server offers the tunnel extension,
:data:`~traefikservice_asgi.entrypoint.context.TUNNEL_KEY`) is proxied as Go's
``ReverseProxy`` does it: the upgrade request goes through the transport like any
request, a refusal is relayed as the answer, and after a ``101`` the transport hands its
connection over and the two connections are joined byte for byte
(:class:`~traefikservice_asgi.transport.tunnel.Tunnel`). Under another ASGI server
messages are relayed (:mod:`.websocket`).

A mirror copy whose scope carries a copy job (:func:`~traefikservice_asgi.loadbalancer.mirror_pool.copy_job`) is
*detached* when the leaf talks to the gateway's own HTTP/1.1 transport: the request is
written and the leaf returns; the transport discards the answer and tells the job.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from itertools import compress
from operator import itemgetter
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from starlette.types import Receive, Scope, Send

from ..entrypoint.context import (
    COPY_JOB_KEY,
    COPY_KEY,
    FORWARD_KEY,
    forward_of,
    is_copy,
    offers_tunnel,
    tunnel_accept,
)
from ..entrypoint.forwarding import HOP_BY_HOP, Forward
from ..exceptions import UpstreamAborted
from ..loadbalancer.body import read_body
from ..loadbalancer.mirror_pool import CopyJob
from ..responses import STATUS_TEXT, send_proxy_error
from ..transport.h2c import asks_upgrade
from ..transport.http11 import InvalidResponse, RawResponse, ResponseStream
from ..transport.manager import ClientHolder, timeouts_of
from ..transport.request import UpstreamRequest
from ..transport.tls import CertificateRefused
from ..transport.tunnel import Tunnel
from .websocket import forward_websocket

__all__ = ["INFLATE_PIECE", "MAX_REFUSAL", "Server", "ServerRecorder", "UpstreamAborted"]

# The logger keeps the name it had when this module was traefikservice_asgi.proxy.
logger = logging.getLogger("traefikservice_asgi.proxy")

# Response headers never passed back: hop-by-hop ones (Go's ReverseProxy drops them), and
# Date, which the ASGI server adds itself (passing the backend's would send two).
_RESPONSE_DROP = HOP_BY_HOP | {b"date"}
# net/http's suppressedHeaders304 and suppressedHeadersNoBody.
_SUPPRESSED_304 = frozenset({b"content-type", b"content-length", b"transfer-encoding"})
_SUPPRESSED_NO_BODY = frozenset({b"content-length", b"transfer-encoding"})
# Answer header names (as received, lowercase) relayed as they are, and those plus the
# ones dropped whatever their value: an answer whose names are all in _RELAYED is
# filtered without a loop (Server._relay).
_KEPT: set[bytes] = set()
_RELAYED: set[bytes] = {name for name in _RESPONSE_DROP if name != b"connection"}
_RELAYED_MAX = 4096
_kept = _KEPT.__contains__
_first = itemgetter(0)


# -- forwarders: how a Server reaches its server, chosen once when the Server is built --


class _Forwarder(Protocol):
    def forward(
        self, request: UpstreamRequest, scope: Scope
    ) -> Awaitable[RawResponse | httpx.Response]: ...


class _GatewayForwarder:
    """The holder's own HTTP/1.1 transport, on plain values: no httpx
    Request/URL/Response objects. The transport is looked up per request, as the holder
    creates its client lazily and again after a close."""

    __slots__ = ("_holder",)

    def __init__(self, holder: ClientHolder) -> None:
        self._holder = holder

    def forward(self, request: UpstreamRequest, scope: Scope) -> Awaitable[RawResponse]:
        return self._holder.gateway.forward(request)

    def send_detached(
        self, request: UpstreamRequest, body: bytes, owner: CopyJob
    ) -> Awaitable[None]:
        return self._holder.gateway.send_detached(request, body, owner)


class _ClientForwarder:
    """A client of the user's: through ``send``, so their hooks and mounts apply."""

    __slots__ = ("_base", "_extensions", "_holder")

    def __init__(self, holder: ClientHolder, base: str, extensions: dict[str, object]) -> None:
        self._holder = holder
        self._base = base
        self._extensions = extensions

    def forward(self, request: UpstreamRequest, scope: Scope) -> Awaitable[httpx.Response]:
        sent = httpx.Request(
            request.method.decode(),
            self._base + request.target.decode("latin-1"),
            headers=request.headers,
            stream=request.body,  # type: ignore[arg-type]
            extensions=self._extensions,
        )
        return self._holder.client.send(sent, stream=True, follow_redirects=False)


class _H2CForwarder:
    """HTTP/2 cleartext with prior knowledge (Traefik's h2c round tripper), except for a
    request asking for a connection upgrade: HTTP/1.1 through ``upgrades``, as Traefik."""

    __slots__ = ("_holder", "_upgrades")

    def __init__(self, holder: ClientHolder, upgrades: _Forwarder) -> None:
        self._holder = holder
        self._upgrades = upgrades

    def forward(
        self, request: UpstreamRequest, scope: Scope
    ) -> Awaitable[RawResponse | httpx.Response]:
        if asks_upgrade(scope["headers"]):
            return self._upgrades.forward(request, scope)
        return self._holder.h2c.forward(request)


_NO_BODY = httpx.ByteStream(b"")
# The methods whose body-less request still gets a framing header (Forward.framing_headers).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_perf = time.perf_counter
_DRAIN_LIMIT = 256 * 1024  # Go's maxPostHandlerReadBytes
_DEFAULT_PORTS = {b"http": 80, b"https": 443}

INFLATE_PIECE = 64 * 1024
"""Largest body message sent for a gzip answer the gateway decompresses: what one step of
inflating may produce, so that a gzip bomb costs this much memory, not its ratio."""


MAX_REFUSAL = 1024 * 1024
"""Largest body of a refused WebSocket upgrade relayed (websockets' limit, kept when
the tunnel replaced it): the ASGI server holds a refusal whole before writing it."""


class ServerRecorder(Protocol):
    """What a :class:`Server` tells of each exchange it makes (the observability's
    :class:`~traefikservice_asgi.observability.observe.ServerRecorder`)."""

    def record(
        self,
        scope: Scope,
        forward: Forward,
        start: float,
        status: int,
        response_bytes: int,
        request_bytes: int,
    ) -> None:
        """An exchange of ``forward`` begun at ``start`` (``time.perf_counter``) is
        over: it sent ``status`` (0: nothing) and ``response_bytes`` of body, and read
        ``request_bytes`` of the request's body."""

    def websocket(
        self,
        server: Callable[[Scope, Receive, Send], Awaitable[None]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> Awaitable[None]:
        """``server``'s WebSocket exchange, counted."""


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class _RequestBody(httpx.AsyncByteStream):
    __slots__ = ("_receive", "done", "size")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False
        self.size = 0  # bytes read, for the metrics

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            body: bytes = message.get("body", b"")
            if body:
                self.size += len(body)
                yield body
            if not message.get("more_body", False):
                self.done = True
                return

    async def drain(self, limit: int) -> None:
        """Read and discard what is left of the body, at most ``limit`` bytes, as Go's
        server does for a handler that did not read it (256 KiB). After an error answer
        the ASGI server reports the client gone instead, so this happens before it: a
        mirror then still gets the copy of a small body whose main refused it."""
        read = 0
        while not self.done and read <= limit:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return
            size = len(message.get("body", b""))
            read += size
            self.size += size
            self.done = not message.get("more_body", False)


class Server:
    """An ASGI app forwarding every request to ``url`` (``scheme://host:port``, the
    scheme ``http``, ``https`` or ``h2c``).

    How it reaches the server is chosen once, here, as Traefik's ``SmartBuilder`` picks
    the round tripper when it builds the service: HTTP/2 cleartext for ``h2c://``, the
    holder's own HTTP/1.1 transport for a client the holder created, ``client.send``
    for a client of the user's."""

    __slots__ = (
        "_detacher",
        "_forwarder",
        "_header_timeout",
        "_holder",
        "_netloc",
        "_origin",
        "_server_name",
        "_servers_transport",
        "_timeouts",
        "_tunnels",
        "pass_host_header",
        "recorder",
        "url",
    )

    def __init__(self, url: str, holder: ClientHolder, *, pass_host_header: bool = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "h2c") or not parts.netloc:
            raise ValueError(f"server URL must be http(s)://host:port or h2c://, got {url!r}")
        self.url = url
        # An h2c server is cleartext HTTP: its HTTP/1.1 requests (upgrades) go to http://.
        h2c = parts.scheme == "h2c"
        scheme = "http" if h2c else parts.scheme
        self._netloc = parts.netloc.encode()
        self._holder = holder
        self.pass_host_header = pass_host_header
        transport = self._servers_transport = holder.transport
        self._header_timeout = transport.response_header_timeout if transport else None
        server_name = transport.server_name if transport else None
        self._timeouts = timeouts_of(transport)
        self._server_name = server_name
        self._origin = (
            scheme.encode(),
            (parts.hostname or "").encode(),
            parts.port or _DEFAULT_PORTS[scheme.encode()],
        )
        http11: _Forwarder
        self._detacher: _GatewayForwarder | None = None
        if holder.owned:
            http11 = _GatewayForwarder(holder)
            # A mirror copy is detached only on the holder's own HTTP/1.1 transport.
            self._detacher = None if h2c else http11
        else:
            extensions: dict[str, object] = {"timeout": self._timeouts}
            if server_name:
                extensions["sni_hostname"] = server_name
            http11 = _ClientForwarder(holder, f"{scheme}://{parts.netloc}", extensions)
        self._forwarder = _H2CForwarder(holder, http11) if h2c else http11
        # A WebSocket can be tunnelled (bytes after the 101) on the holder's own
        # HTTP/1.1 transport only, which can hand over a connection.
        self._tunnels = holder.owned
        #: What counts this server's exchanges (metrics, access log), when something does.
        self.recorder: ServerRecorder | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        recorder = self.recorder
        if scope["type"] == "websocket":
            if recorder is not None:
                await recorder.websocket(self._websocket, scope, receive, send)
            else:
                await self._websocket(scope, receive, send)
            return
        # Recorded in this call rather than in one more wrapping layer or ``send``,
        # whose calls cost a request more than the counting (bench/README.md): ``sent``
        # is the status and the body bytes sent, counted as they are.
        forward: Forward | None = scope.get(FORWARD_KEY)  # (forward_of, inline)
        if forward is None:
            forward = forward_of(scope)
        sent: list[int] | None = None
        start = 0.0
        if recorder is not None:
            start = _perf()
            sent = [0, 0]
        request_body: _RequestBody | None = None
        try:
            stream: httpx.AsyncByteStream = _NO_BODY
            if forward.chunked or forward.content_length:  # (forward.has_body)
                stream = request_body = _RequestBody(receive)
                request = self._request(forward, scope, forward.framing_headers(), stream)
            elif forward.method in _BODY_METHODS:
                request = self._request(forward, scope, forward.framing_headers(), stream)
            else:  # no framing headers to add
                request = self._request(forward, scope, None, stream)
            detacher = self._detacher
            if detacher is not None:
                job = scope.get(COPY_JOB_KEY)  # (copy_job, inline)
                if job is not None:
                    await self._send_detached(detacher, job, request, receive)
                    return
            try:
                sending = self._forwarder.forward(request, scope)
                if self._header_timeout is None:
                    response = await sending
                else:  # Go's responseHeaderTimeout: the wait for headers only, not the body
                    response = await asyncio.wait_for(sending, self._header_timeout)
            except _ClientGone:
                logger.debug("client went away before %s answered", self.url)
                return
            except (asyncio.TimeoutError, httpx.TransportError, httpx.DecodingError) as exc:
                status, not_sent = self._failure(exc, scope, forward)
                await self._fail(stream, send, status, sent, not_sent=not_sent)
                return
            body: AsyncIterable[bytes]
            close: Callable[[], Awaitable[None]]
            if isinstance(response, RawResponse):
                status, raw, answer, _version, _reason = response
                if status >= 200:  # (the usual answer: closed without a coroutine)
                    try:
                        await self._relay(status, raw, answer, forward.gzip_added, send, sent)
                    finally:
                        answer.finish()
                    return
                body, close = answer, answer.aclose
            else:
                status, raw, body, close = (
                    response.status_code,
                    response.headers.raw,
                    response.aiter_raw(),
                    response.aclose,
                )
            if status < 200:
                # A 1xx as the final answer: a 101 to a request that asked for no upgrade
                # (or one an ASGI server cannot hand over). Go's ReverseProxy refuses it
                # (handleUpgradeResponse: "backend tried to switch protocol"), and Traefik's
                # error handler answers 500; relaying it would leave the client connection
                # parsed as HTTP after a protocol switch.
                await close()
                logger.debug("500 Internal Server Error from %s: final status %d", self.url, status)
                await self._fail(stream, send, 500, sent)
                return
            try:
                await self._relay(status, raw, body, forward.gzip_added, send, sent)
            finally:
                await close()
        finally:
            if recorder is not None and sent is not None:
                read = request_body.size if request_body is not None else 0
                recorder.record(scope, forward, start, sent[0], sent[1], read)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._tunnels and offers_tunnel(scope):
            await self._tunnel(scope, receive, send)
            return
        await forward_websocket(
            self.url,
            scope,
            receive,
            send,
            pass_host_header=self.pass_host_header,
            transport=self._servers_transport,
        )

    def _request(
        self,
        forward: Forward,
        scope: Scope,
        extra: list[tuple[bytes, bytes]] | None,
        stream: httpx.AsyncByteStream,
    ) -> UpstreamRequest:
        """The request to the server: the route's view of it, its ``Host`` (the
        client's, or the server's without ``passHostHeader``), and ``extra`` headers."""
        host = forward.host if self.pass_host_header and forward.host else self._netloc
        headers = [(b"host", host), *forward.headers]
        if extra:
            headers += extra
        return UpstreamRequest(
            forward.method.encode(),
            self._origin,
            host,
            forward.target,
            headers,
            stream,
            self._timeouts,
            stream is not _NO_BODY,
            self._server_name,
            COPY_KEY in scope,  # (is_copy, inline)
            self._header_timeout,
        )

    async def _answer(self, request: UpstreamRequest, scope: Scope) -> RawResponse | httpx.Response:
        """Send ``request``; its response head, within ``responseHeaderTimeout``."""
        sending = self._forwarder.forward(request, scope)
        if self._header_timeout is None:
            return await sending
        return await asyncio.wait_for(sending, self._header_timeout)

    def _failure(self, exc: BaseException, scope: Scope, forward: Forward) -> tuple[int, bool]:
        """Traefik's status for a failed exchange (``ComputeStatusCode``), and whether no
        byte of the request was sent (a connection never made)."""
        if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)):
            logger.debug("504 Gateway Timeout from %s: %r", self.url, exc)
            return 504, isinstance(exc, httpx.ConnectTimeout)
        if isinstance(exc, InvalidResponse):
            logger.debug("500 Internal Server Error from %s: %r", self.url, exc)
            return 500, False
        if isinstance(exc, CertificateRefused):  # Go: the server's certificate refused
            logger.debug("500 Internal Server Error from %s: %r", self.url, exc)
            return 500, True
        logger.debug("502 Bad Gateway from %s: %r", self.url, exc)
        _log_bad_gateway(self.url, scope, forward.method, forward.target, exc)
        return 502, isinstance(exc, httpx.ConnectError)

    async def _tunnel(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket as Traefik proxies it (``serve`` only): the upgrade request goes
        through the transport like any request, a refusal is relayed as an answer, and
        after a ``101`` the two connections are joined byte for byte (a
        :class:`~..transport.tunnel.Tunnel`, which the ASGI server joins). The call
        lasts as long as the tunnel, so the access log and metrics see its duration."""
        if (await receive())["type"] != "websocket.connect":
            return
        forward = forward_of(scope)
        upgrade = next((v for k, v in scope["headers"] if k.lower() == b"upgrade"), b"websocket")
        request = self._request(
            forward, scope, [(b"connection", b"Upgrade"), (b"upgrade", upgrade)], _NO_BODY
        )
        # Only a disconnect can come before the answer: watch for it meanwhile.
        watching = asyncio.ensure_future(receive())
        answering = asyncio.ensure_future(self._answer(request, scope))
        try:
            await asyncio.wait({watching, answering}, return_when=asyncio.FIRST_COMPLETED)
            if not answering.done():
                logger.debug("client left before %s answered the upgrade", self.url)
                return
            response = answering.result()
        except (asyncio.TimeoutError, httpx.TransportError, httpx.DecodingError) as exc:
            status, not_sent = self._failure(exc, scope, forward)
            await send_proxy_error(send, status, not_sent=not_sent)
            return
        finally:
            watching.cancel()
            answering.cancel()
        assert isinstance(response, RawResponse)  # the holder's own transport
        if response.status != 101:
            await self._refuse(response, send)
            return
        if not _switches_to(response.headers, upgrade):
            # Go: "backend tried to switch protocol %q when %q was requested", or a 101
            # without Connection: Upgrade (not a protocol switch to its transport): 500.
            await response.stream.aclose()
            logger.debug("500 Internal Server Error from %s: not a switch to %r", self.url, upgrade)
            await send_proxy_error(send, 500)
            return
        try:
            backend, pending = response.stream.hijack()
        except httpx.TransportError as exc:
            status, _ = self._failure(exc, scope, forward)
            await send_proxy_error(send, status)
            return
        # Go writes the backend's reason, or (stuttering) "101" when it has none.
        status_line = b"%s 101 %s" % (response.http_version, response.reason or b"101")
        tunnel = Tunnel(backend, pending, status_line)
        try:
            await send(tunnel_accept(list(response.headers), tunnel))
            await tunnel.wait()
        except BaseException:
            tunnel.abort()  # the client left before the 101, or the server stops
            raise

    async def _refuse(self, response: RawResponse, send: Send) -> None:
        """Relay the server's refusal of an upgrade (any status but ``101``). The ASGI
        server writes it whole, so its body is read first, up to :data:`MAX_REFUSAL`
        (a larger one is a ``502``, as the message relay answers it)."""
        body: list[bytes] = []
        size = 0
        try:
            async for chunk in response.stream:
                size += len(chunk)
                if size > MAX_REFUSAL:
                    logger.debug("502 Bad Gateway: %s refused with a larger body", self.url)
                    await send_proxy_error(send, 502)
                    return
                body.append(chunk)
        except httpx.TransportError as exc:
            logger.debug("502 Bad Gateway: %s failed mid-refusal: %r", self.url, exc)
            await send_proxy_error(send, 502)
            return
        finally:
            await response.stream.aclose()
        await self._relay(response.status, response.headers, _replay(body), False, send, None)

    async def _send_detached(
        self, detacher: _GatewayForwarder, job: CopyJob, request: UpstreamRequest, receive: Receive
    ) -> None:
        """A mirror copy, its answer left to the transport. Nothing is sent on ``send``:
        a copy's answer goes nowhere, and a failure is a debug line, as in the full
        exchange (where it becomes a 502 that the copy's ``send`` discards)."""
        # A copy's body is replayed whole, in one message.
        body = (await read_body(receive, -1)).data if request.has_body else b""
        try:
            await detacher.send_detached(request, body, job)
        except httpx.TransportError as exc:
            logger.debug("mirror copy to %s failed: %r", self.url, exc)

    async def _fail(
        self,
        stream: httpx.AsyncByteStream,
        send: Send,
        status: int,
        sent: list[int] | None,
        *,
        not_sent: bool = False,
    ) -> None:
        if isinstance(stream, _RequestBody):
            await stream.drain(_DRAIN_LIMIT)
        if sent is not None:
            sent[0] = status
            sent[1] += len(STATUS_TEXT[status])  # the body send_proxy_error sends
        await send_proxy_error(send, status, not_sent=not_sent)

    async def _relay(
        self,
        status: int,
        raw: list[tuple[bytes, bytes]],
        body: AsyncIterable[bytes],
        gzip_added: bool,
        send: Send,
        sent: list[int] | None,
    ) -> None:
        """Relay an answer; ``sent``, when not None, counts its status and body bytes."""
        decompress = False
        if (
            status >= 200
            and status != 204
            and status != 304
            and _RELAYED.issuperset(map(_first, raw))
        ):
            # Every name seen before and nothing to do but keep or drop it (nearly every
            # answer): filtered in C, no bytecode per header (bench/README.md, session 8).
            headers = list(compress(raw, map(_kept, map(_first, raw))))
        else:
            headers, decompress = _relayed_headers(status, raw, gzip_added)
        if sent is not None:
            sent[0] = status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        last = b""
        try:
            if decompress:
                await _inflate(body, send, sent)
            elif isinstance(body, ResponseStream):  # the last piece is the last message
                while True:
                    last, final = await body.read_piece()
                    if sent is not None:
                        sent[1] += len(last)
                    if final:
                        break
                    await send({"type": "http.response.body", "body": last, "more_body": True})
            else:
                async for chunk in body:
                    if chunk:
                        if sent is not None:
                            sent[1] += len(chunk)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (httpx.TransportError, zlib.error) as exc:
            raise UpstreamAborted(f"{self.url} failed mid-response: {exc!r}") from exc
        await send({"type": "http.response.body", "body": last, "more_body": False})


def _relayed_headers(
    status: int, raw: list[tuple[bytes, bytes]], gzip_added: bool
) -> tuple[list[tuple[bytes, bytes]], bool]:
    """The answer's headers as relayed (names lowercased, hop-by-hop ones, those named
    in ``Connection`` and ``Date`` dropped, and those Go suppresses for a body-less
    status), and whether to decompress a gzip body the gateway asked for. Names kept
    as they are and dropped without a look at their value are remembered (:data:`_KEPT`,
    :data:`_RELAYED`) for the C-only path of :meth:`Server._relay`."""
    headers = []
    connection: set[bytes] = set()
    decompress = False
    for key, value in raw:
        name = key.lower()
        if name in _RESPONSE_DROP:
            if name == b"connection":
                connection.update(t.strip().lower() for t in value.split(b","))
            continue
        if name == b"content-encoding":
            if gzip_added and value.strip().lower() == b"gzip":
                decompress = True
        elif name == key and len(_RELAYED) < _RELAYED_MAX:
            _KEPT.add(name)
            _RELAYED.add(name)
        headers.append((name, value))
    if status == 304 or status == 204 or status < 200:
        # Go's server suppresses these for answers that have no body.
        connection |= _SUPPRESSED_304 if status == 304 else _SUPPRESSED_NO_BODY
    if connection or decompress:
        drop = connection | ({b"content-encoding", b"content-length"} if decompress else set())
        headers = [(k, v) for k, v in headers if k not in drop]
    return headers, decompress


def _switches_to(headers: list[tuple[bytes, bytes]], upgrade: bytes) -> bool:
    """Whether a ``101`` switches to the protocol the client asked for, as Go's
    transport and ``handleUpgradeResponse`` require: the same ``Upgrade`` (any case) and
    ``Connection: Upgrade``."""
    offered = b""
    connection = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"upgrade" and not offered:
            offered = value.strip().lower()
        elif lower == b"connection":
            connection = connection or b"upgrade" in (t.strip() for t in value.lower().split(b","))
    return connection and offered == upgrade.strip().lower()


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _inflate(body: AsyncIterable[bytes], send: Send, sent: list[int] | None) -> None:
    """Relay a gzip answer the gateway asked for (``Accept-Encoding: gzip`` added, as Go's
    transport does) decompressed, at most :data:`INFLATE_PIECE` bytes at a time.

    A backend's chunk can inflate a thousandfold (a gzip bomb: 1 MiB becomes 1 GiB), so a
    chunk is never inflated whole: each piece is sent, and its ``send`` awaited (the ASGI
    server's flow control), before the next is inflated from ``unconsumed_tail``. Memory
    per request is then one piece and zlib's window, whatever the ratio, and a client that
    reads slowly slows the inflating, then the reading from the backend. Only the first
    gzip member is decoded (bytes after it are ignored), as before these bounds."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    async for chunk in body:
        data = chunk
        while True:
            piece = decoder.decompress(data, INFLATE_PIECE)
            if piece:
                if sent is not None:
                    sent[1] += len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            data = decoder.unconsumed_tail
            # A full piece with no input left may still have output pending in zlib.
            if not data and len(piece) < INFLATE_PIECE:
                break
    tail = decoder.flush()  # at most a few bytes: every input byte was inflated above
    if tail:
        if sent is not None:
            sent[1] += len(tail)
        await send({"type": "http.response.body", "body": tail, "more_body": True})


BAD_GATEWAY_LOG_INTERVAL = 10.0
"""Seconds between two warnings about the same unreachable server."""
_bad_gateway_logged: dict[str, float] = {}  # server URL -> when; the config's servers only


def _log_bad_gateway(
    url: str, scope: Scope, method: str, target: bytes, exc: BaseException
) -> None:
    """A 502 for a server that cannot be reached is otherwise silent at the default log
    level (a misspelt name resolved to cluster DNS answers 502 to everything): a warning
    naming the server, the request and the cause, at most once per server every
    :data:`BAD_GATEWAY_LOG_INTERVAL` seconds."""
    now = time.monotonic()
    last = _bad_gateway_logged.get(url)
    if last is not None and now - last < BAD_GATEWAY_LOG_INTERVAL:
        return
    _bad_gateway_logged[url] = now
    headers = dict(scope.get("headers") or ())
    host = headers.get(b"host", b"").decode("latin-1")
    logger.warning(
        "502 Bad Gateway: %sserver %s failed for %s %s%s: %s: %s "
        "(logged once per server every %.0f s)",
        "mirror copy: " if is_copy(scope) else "",
        url,
        method,
        host,
        target.decode("latin-1"),
        type(exc).__name__,
        str(exc) or "no detail",
        BAD_GATEWAY_LOG_INTERVAL,
    )
