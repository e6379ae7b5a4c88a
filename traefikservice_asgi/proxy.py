"""The leaf of every service tree: forward one request to one server URL.

Requests go through one shared ``httpx.AsyncClient`` (connection pooling across every
route), streamed both ways. Failures become the responses Traefik's proxy sends
(``pkg/proxy/httputil/proxy.go``, ``ComputeStatusCode``): a timeout is ``504 Gateway
Timeout``, a refused or broken connection ``502 Bad Gateway``, each with the bare status
text as body. A backend that fails after the response has started cannot be turned
into a status any more: the client's response is aborted, never finished as if complete.

An ``h2c://`` server is spoken to in HTTP/2 cleartext with prior knowledge
(:mod:`~traefikservice_asgi._h2c`), except for a request asking for a connection
upgrade, which goes over HTTP/1.1 as in Traefik: WebSockets included.

A mirror copy whose scope carries a copy job (:func:`~._mirror_pool.copy_job`) is
*detached* when the leaf talks to the gateway's own HTTP/1.1 transport: the request is
written and the leaf returns; the transport discards the answer and tells the job.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import ssl
import tempfile
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import httpx
from starlette.types import Receive, Scope, Send

from ._h2c import H2CTransport, asks_upgrade
from ._transport import GatewayTransport, RawResponse
from .config import (
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_IDLE_CONN_TIMEOUT,
    DEFAULT_MAX_IDLE_CONNS_PER_HOST,
    ServersTransport,
)
from .entrypoint.context import copy_job, forward_of, is_copy
from .entrypoint.forwarding import HOP_BY_HOP, Forward
from .exceptions import UpstreamAborted
from .loadbalancer.body import read_body
from .loadbalancer.mirror_pool import CopyJob
from .responses import send_proxy_error
from .websocket import forward_websocket

__all__ = ["ClientHolder", "Server", "UpstreamAborted", "default_client", "no_cookie_jar"]

logger = logging.getLogger("traefikservice_asgi.proxy")

# Response headers never passed back: hop-by-hop ones (Go's ReverseProxy drops them), and
# Date, which the ASGI server adds itself (passing the backend's would send two).
_RESPONSE_DROP = HOP_BY_HOP | {b"date"}
# net/http's suppressedHeaders304 and suppressedHeadersNoBody.
_SUPPRESSED_304 = frozenset({b"content-type", b"content-length", b"transfer-encoding"})
_SUPPRESSED_NO_BODY = frozenset({b"content-length", b"transfer-encoding"})


class _BlockAllCookies(http.cookiejar.DefaultCookiePolicy):
    """A shared client must never keep one user's cookies for another."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


def no_cookie_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that refuses every cookie: responses never leak into later requests."""
    return http.cookiejar.CookieJar(policy=_BlockAllCookies())


def _ssl_context(transport: ServersTransport) -> ssl.SSLContext:
    """TLS towards servers as Traefik's ServersTransport sets it: ``rootCAs`` replace the
    system's CAs (as Go's ``RootCAs`` does), ``certificatesSecrets`` add client
    certificates, ``insecureSkipVerify`` turns verification off."""
    if transport.root_cas:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata="\n".join(transport.root_cas))
    else:
        context = ssl.create_default_context()
    for chain in transport.client_certificates:
        # The ssl module loads certificate chains from files only.
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
            pem.write(chain)
            pem.flush()
            context.load_cert_chain(pem.name)
    if transport.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _timeouts(transport: ServersTransport | None) -> dict[str, float | None]:
    """httpx's per-request timeout extension for a ServersTransport (or the default):
    Traefik bounds the dial only; reads and writes may take as long as they take."""
    dial = transport.dial_timeout if transport is not None else DEFAULT_DIAL_TIMEOUT
    return {"connect": dial, "read": None, "write": None, "pool": None}


def _gateway_transport(transport: ServersTransport | None, copy_idle: int = 0) -> GatewayTransport:
    if transport is None:
        return GatewayTransport(
            keepalive_expiry=DEFAULT_IDLE_CONN_TIMEOUT,
            max_idle_per_host=DEFAULT_MAX_IDLE_CONNS_PER_HOST,
            max_idle_copies_per_host=copy_idle,
        )
    return GatewayTransport(
        keepalive_expiry=transport.idle_conn_timeout,
        max_idle_per_host=transport.max_idle_conns_per_host,
        max_idle_copies_per_host=copy_idle,
        ssl_context=_ssl_context(transport),
    )


def _h2c_transport(transport: ServersTransport | None) -> H2CTransport:
    """HTTP/2 cleartext for ``h2c://`` servers. Of a ServersTransport only
    ``idleConnTimeout`` applies here, besides the dial and response header timeouts
    every request carries: the idle-connection limit and TLS have nothing to act on."""
    expiry = transport.idle_conn_timeout if transport is not None else DEFAULT_IDLE_CONN_TIMEOUT
    return H2CTransport(keepalive_expiry=expiry)


def _client_around(
    gateway: GatewayTransport, transport: ServersTransport | None, h2c: H2CTransport | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=gateway,
        mounts={"h2c://": h2c} if h2c is not None else None,
        timeout=httpx.Timeout(**_timeouts(transport)),
        follow_redirects=False,
        trust_env=False,
        cookies=no_cookie_jar(),
    )


def default_client(transport: ServersTransport | None = None) -> httpx.AsyncClient:
    """A client the gateway creates: for the default transport, or for one
    ``ServersTransport``.

    It rides on :class:`~traefikservice_asgi._transport.GatewayTransport`, chosen by
    measurement (``bench/transport_compare.py``: 7-9x httpcore, 1.5-1.8x httpx-aiohttp,
    which also leaks cookies between users and adds headers). Traefik's defaults: 30 s
    to connect, no read timeout, 200 idle connections per host kept 90 s; no redirects
    followed, no cookie jar, and nothing from the environment (``trust_env=False``: no
    proxy, no ``.netrc``), so upstream traffic never depends on the shell it started in.
    """
    return _client_around(_gateway_transport(transport), transport)


class ClientHolder:
    """Owns a client: created on first use, closed at shutdown. A client passed in by
    the user is used as is and left open. ``transport`` is the ServersTransport the
    client is built for (None: the default one).

    For a client of its own, :attr:`direct` is the client's transport: the leaf calls it
    without ``client.send``, whose per-request auth flow, event hooks and cookie
    extraction cost as much as the transport itself and do nothing for a gateway. A
    user's client keeps going through ``send``, so their hooks and mounts still apply.

    :attr:`h2c` is the HTTP/2 cleartext transport for ``h2c://`` servers, always the
    holder's own (a user's client cannot be assumed to speak it) and closed by
    :meth:`aclose`. A client of the holder's own has it mounted for ``h2c://`` URLs, so
    health checks reach h2c servers through the client.
    """

    __slots__ = ("_client", "_h2c", "_owned", "copy_idle", "direct", "transport")

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        transport: ServersTransport | None = None,
        *,
        copy_idle: int = 0,
    ) -> None:
        self._client = client
        self._owned = client is None
        self.transport = transport
        # Idle connections kept per host for mirror copies, apart from the main pool
        # (the gateway passes its cap on copies in flight; see _transport.py).
        self.copy_idle = copy_idle
        self.direct: GatewayTransport | None = None
        self._h2c: H2CTransport | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None or (self._owned and self._client.is_closed):
            gateway = _gateway_transport(self.transport, self.copy_idle)
            self._client = _client_around(gateway, self.transport, self.h2c)
            self.direct = gateway
        return self._client

    @property
    def h2c(self) -> H2CTransport:
        if self._h2c is None or self._h2c.closed:
            self._h2c = _h2c_transport(self.transport)
        return self._h2c

    async def aclose(self) -> None:
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None
            self.direct = None
        if self._h2c is not None:
            await self._h2c.aclose()  # idempotent: the client may have closed its mount
            self._h2c = None


_NO_BODY = httpx.ByteStream(b"")
_DRAIN_LIMIT = 256 * 1024  # Go's maxPostHandlerReadBytes
_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class _RequestBody(httpx.AsyncByteStream):
    __slots__ = ("_receive", "done")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            body: bytes = message.get("body", b"")
            if body:
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
            read += len(message.get("body", b""))
            self.done = not message.get("more_body", False)


class Server:
    """An ASGI app forwarding every request to ``url`` (``scheme://host:port``, the
    scheme ``http``, ``https`` or ``h2c``)."""

    __slots__ = (
        "_base",
        "_extensions",
        "_h2c",
        "_header_timeout",
        "_holder",
        "_netloc",
        "_origin",
        "_server_name",
        "_timeouts",
        "pass_host_header",
        "url",
    )

    def __init__(self, url: str, holder: ClientHolder, *, pass_host_header: bool = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "h2c") or not parts.netloc:
            raise ValueError(f"server URL must be http(s)://host:port or h2c://, got {url!r}")
        self.url = url
        # An h2c server is cleartext HTTP: its HTTP/1.1 requests (upgrades) go to http://.
        self._h2c = parts.scheme == "h2c"
        scheme = "http" if self._h2c else parts.scheme
        self._base = f"{scheme}://{parts.netloc}"
        self._netloc = parts.netloc.encode()
        self._holder = holder
        self.pass_host_header = pass_host_header
        transport = holder.transport
        self._header_timeout = transport.response_header_timeout if transport else None
        server_name = transport.server_name if transport else None
        self._timeouts = _timeouts(transport)
        self._server_name = server_name
        self._extensions: dict[str, object] = {"timeout": self._timeouts}
        if server_name:
            self._extensions["sni_hostname"] = server_name
        self._origin = (
            scheme.encode(),
            (parts.hostname or "").encode(),
            parts.port or _DEFAULT_PORTS[scheme.encode()],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await forward_websocket(
                self.url,
                scope,
                receive,
                send,
                pass_host_header=self.pass_host_header,
                transport=self._holder.transport,
            )
            return
        forward = forward_of(scope)
        host = forward.host if self.pass_host_header and forward.host else self._netloc
        headers = [(b"host", host), *forward.headers, *forward.framing_headers()]
        stream: httpx.AsyncByteStream = _RequestBody(receive) if forward.has_body else _NO_BODY
        holder = self._holder
        client = holder.client
        direct = holder.direct
        if direct is not None and not self._h2c:
            job = copy_job(scope)
            if job is not None:
                await self._send_detached(direct, job, forward, headers, receive)
                return
        try:
            if self._h2c and not asks_upgrade(scope["headers"]):
                sending: Awaitable[RawResponse | httpx.Response] = holder.h2c.forward(
                    forward.method.encode(),
                    self._origin,
                    host,
                    forward.target,
                    headers,
                    stream,
                    self._timeouts,
                    has_body=forward.has_body,
                )
            elif direct is not None:
                # Our own transport, on plain values: no httpx Request/URL/Response objects.
                sending = direct.forward(
                    forward.method.encode(),
                    self._origin,
                    self._netloc,
                    forward.target,
                    headers,
                    stream,
                    self._timeouts,
                    self._server_name,
                    is_copy(scope),
                )
            else:  # a client of the user's: through send, so their hooks and mounts apply
                request = httpx.Request(
                    forward.method,
                    self._base + forward.target.decode("latin-1"),
                    headers=headers,
                    stream=stream,
                    extensions=self._extensions,
                )
                sending = client.send(request, stream=True, follow_redirects=False)
            if self._header_timeout is None:
                response = await sending
            else:  # Go's responseHeaderTimeout: the wait for headers only, not the body
                response = await asyncio.wait_for(sending, self._header_timeout)
        except _ClientGone:
            logger.debug("client went away before %s answered", self.url)
            return
        except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
            logger.debug("504 Gateway Timeout from %s: %r", self.url, exc)
            await self._fail(stream, send, 504)
            return
        except (httpx.TransportError, httpx.DecodingError) as exc:
            logger.debug("502 Bad Gateway from %s: %r", self.url, exc)
            await self._fail(stream, send, 502)
            return
        body: AsyncIterable[bytes]
        close: Callable[[], Awaitable[None]]
        if isinstance(response, RawResponse):
            status, raw, body, close = (
                response.status,
                response.headers,
                response.stream,
                response.stream.aclose,
            )
        else:
            status, raw, body, close = (
                response.status_code,
                response.headers.raw,
                response.aiter_raw(),
                response.aclose,
            )
        try:
            await self._relay(status, raw, body, forward.gzip_added, send)
        finally:
            await close()

    async def _send_detached(
        self,
        direct: GatewayTransport,
        job: CopyJob,
        forward: Forward,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
    ) -> None:
        """A mirror copy, its answer left to the transport. Nothing is sent on ``send``:
        a copy's answer goes nowhere, and a failure is a debug line, as in the full
        exchange (where it becomes a 502 that the copy's ``send`` discards)."""
        # A copy's body is replayed whole, in one message.
        body = (await read_body(receive, -1)).data if forward.has_body else b""
        try:
            await direct.send_detached(
                forward.method.encode(),
                self._origin,
                self._netloc,
                forward.target,
                headers,
                body,
                self._timeouts,
                job,
                self._server_name,
                self._header_timeout,
            )
        except httpx.TransportError as exc:
            logger.debug("mirror copy to %s failed: %r", self.url, exc)

    async def _fail(self, stream: httpx.AsyncByteStream, send: Send, status: int) -> None:
        if isinstance(stream, _RequestBody):
            await stream.drain(_DRAIN_LIMIT)
        await send_proxy_error(send, status)

    async def _relay(
        self,
        status: int,
        raw: list[tuple[bytes, bytes]],
        body: AsyncIterable[bytes],
        gzip_added: bool,
        send: Send,
    ) -> None:
        headers = []
        connection: set[bytes] = set()
        decompress = False
        for key, value in raw:
            name = key.lower()
            if name in _RESPONSE_DROP:
                if name == b"connection":
                    connection.update(t.strip().lower() for t in value.split(b","))
                continue
            if name == b"content-encoding" and gzip_added and value.strip().lower() == b"gzip":
                decompress = True
            headers.append((name, value))
        if status == 304 or status == 204 or status < 200:
            # Go's server suppresses these for answers that have no body.
            connection |= _SUPPRESSED_304 if status == 304 else _SUPPRESSED_NO_BODY
        if connection or decompress:
            drop = connection | ({b"content-encoding", b"content-length"} if decompress else set())
            headers = [(k, v) for k, v in headers if k not in drop]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if decompress else None
        try:
            async for chunk in body:
                if decoder is not None:
                    chunk = decoder.decompress(chunk)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if decoder is not None:
                tail = decoder.flush()
                if tail:
                    await send({"type": "http.response.body", "body": tail, "more_body": True})
        except (httpx.TransportError, zlib.error) as exc:
            raise UpstreamAborted(f"{self.url} failed mid-response: {exc!r}") from exc
        await send({"type": "http.response.body", "body": b"", "more_body": False})
