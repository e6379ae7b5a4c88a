"""The gateway's HTTP/1.1 transport: idle connections per origin, as Go's
``http.Transport`` keeps them (``net/http/transport.go``: ``idleConn``,
``getIdleConn``, ``tryPutIdleConn``, ``isReplayable``).

A gateway needs much less than a general client: HTTP/1.1 only, an idle pool per
origin, no request retries beyond Go's "stale idle connection" rule, and both bodies
streamed. :class:`GatewayTransport` does exactly that, on
:class:`~traefikservice_asgi.transport.http11.HTTP11Connection`, and keeps Go's
behaviour where Traefik depends on it:

* idle connections kept per origin, last in first out (the warmest socket is reused and
  the cold ones expire), checkout is O(1); ``keepalive_expiry`` (Traefik's
  ``idleConnTimeout``) and ``max_idle_per_host`` (Traefik's ``maxIdleConnsPerHost``);
  the number of concurrent connections is not limited;
* mirror copies (``UpstreamRequest.copy``) keep their idle connections in a pool of
  their own, bounded by ``max_idle_copies_per_host`` (the gateway sets it to its cap on
  copies in flight), so that a slow mirror holding many connections at once does not
  pay a new connection and a close per copy. Main requests never see those
  connections, so their pool behaves exactly as Go's;
* a reused connection that the server closed before answering is retried once on a
  fresh connection when the request has no body and an idempotent method (Go's
  ``isReplayable``), because a server's keep-alive timeout can race a new request;
* a mirror copy can be *detached* (:meth:`GatewayTransport.send_detached`): the request
  is written and the call returns; the connection reads the answer, discards it, goes
  back to the pool and tells the copy's owner (see
  :mod:`traefikservice_asgi.loadbalancer.mirror_pool`);
* errors are httpx's, so callers map them as for httpcore: ``ConnectError``,
  ``ConnectTimeout``, ``ReadTimeout``/``WriteTimeout`` (from the request's ``timeout``
  extension), ``RemoteProtocolError``, ``ReadError``/``WriteError``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Coroutine
from typing import Any

import httpx

from ..config import DEFAULT_IDLE_CONN_TIMEOUT, DEFAULT_MAX_IDLE_CONNS_PER_HOST
from .http11 import CopyOwner, DetachedRequest, HTTP11Connection, RawResponse
from .request import Origin, RequestHead, UpstreamRequest, payload, request_head
from .tls import CertificateRefused, peer_cert_problem

__all__ = ["GatewayTransport"]

_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_REPLAYABLE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})


class GatewayTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 transport with a LIFO idle pool per origin (see the module docstring).

    ``ssl_context`` is used for ``https`` origins (default:
    :func:`ssl.create_default_context`). The transport binds to the event loop of its
    first request; used from another loop, it starts a new pool there.
    """

    def __init__(
        self,
        *,
        keepalive_expiry: float | None = DEFAULT_IDLE_CONN_TIMEOUT,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_CONNS_PER_HOST,
        max_idle_copies_per_host: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        peer_cert_sans: tuple[tuple[str, str], ...] = (),
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
        self._peer_cert_sans = peer_cert_sans
        self._idle: dict[Origin, collections.deque[HTTP11Connection]] = {}
        self._copy_idle: dict[Origin, collections.deque[HTTP11Connection]] = {}
        self._active: set[HTTP11Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    # -- pool -----------------------------------------------------------------------------

    def _checkout(self, origin: Origin, now: float, copy: bool = False) -> HTTP11Connection | None:
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

    def release(self, connection: HTTP11Connection) -> None:
        """Take back a connection whose exchange ended cleanly (or close it)."""
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
        connection.idle_since = connection.loop.time()
        idle.append(connection)
        if self._sweeper is None and self.keepalive_expiry is not None:
            self._sweeper = connection.loop.call_later(self.keepalive_expiry, self._sweep)

    def forget(self, connection: HTTP11Connection) -> None:
        """A connection closed: no longer counted as active."""
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

    async def _connect(self, request: UpstreamRequest, copy: bool) -> HTTP11Connection:
        scheme, host, port = origin = request.origin
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        server_hostname: str | None = None
        if scheme == b"https":
            context = self._ssl_context or ssl.create_default_context()
            sni = request.server_name
            server_hostname = sni if isinstance(sni, str) else host.decode("ascii")
        connection = HTTP11Connection(self, origin, for_copy=copy)
        try:
            sock, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: connection,
                    host.decode("ascii"),
                    port,
                    ssl=context,
                    server_hostname=server_hostname,
                ),
                request.timeouts.get("connect"),
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host.decode()}:{port} timed out") from None
        except ssl.SSLCertVerificationError as exc:
            raise CertificateRefused(f"cannot connect to {host.decode()}:{port}: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host.decode()}:{port}: {exc}") from exc
        if context is not None and self._peer_cert_sans:
            # Go's VerifyPeerCertificate runs inside the handshake; here, right after it,
            # before a byte of the request is sent.
            problem = peer_cert_problem(sock.get_extra_info("peercert"), self._peer_cert_sans)
            if problem is not None:
                sock.abort()
                raise CertificateRefused(f"cannot connect to {host.decode()}:{port}: {problem}")
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
            UpstreamRequest(
                request.method.encode("ascii"),
                (scheme, url.raw_host, url.port or default_port),
                url.netloc,
                url.raw_path,
                request.headers.raw,
                stream,
                request.extensions.get("timeout") or {},
                server_name=request.extensions.get("sni_hostname"),
            )
        )
        return httpx.Response(
            raw.status,
            headers=raw.headers,
            stream=raw.stream,
            extensions={"http_version": raw.http_version, "reason_phrase": raw.reason},
        )

    def forward(self, request: UpstreamRequest) -> Coroutine[Any, Any, RawResponse]:
        """One exchange on plain values, without httpx's Request/URL/Headers/Response
        objects: the gateway's hot path. ``request.copy`` marks a mirror copy (its own
        idle pool). Awaited, the response head; the head is serialised and a connection
        taken at the call, and the coroutine returned is the connection's own (an idle
        one's) or the dial's: no coroutine of this method's around it."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        serialised = request_head(request)
        replayable = not serialised[3] and request.method in _REPLAYABLE_METHODS
        return self._send(request, serialised, replayable)

    def retry(
        self, request: UpstreamRequest, serialised: RequestHead
    ) -> Coroutine[Any, Any, RawResponse]:
        """The request again after a reused connection turned out stale (Go's
        ``isReplayable``): once only, so a second failure is the request's error."""
        return self._send(request, serialised, False)

    def _send(
        self, request: UpstreamRequest, serialised: RequestHead, replayable: bool
    ) -> Coroutine[Any, Any, RawResponse]:
        loop = self._bind()
        connection = self._checkout(request.origin, loop.time(), request.copy)
        if connection is None:
            return self._dial_and_send(request, serialised)
        self._active.add(connection)
        return connection.exchange_on(request, serialised, replayable)

    async def _dial_and_send(
        self, request: UpstreamRequest, serialised: RequestHead
    ) -> RawResponse:
        connection = await self._connect(request, request.copy)
        self._active.add(connection)
        return await connection.exchange_on(request, serialised, False)

    async def send_detached(self, request: UpstreamRequest, body: bytes, owner: CopyOwner) -> None:
        """Send a mirror copy whose answer nobody reads, on the copies' own pool.

        Returns once the request is written (at once on an idle connection; after the
        dial on a new one); the connection then reads the answer, discards it and
        reports the end of the exchange to ``owner``, which can stop it before with
        ``cancel``. Go's rules still hold: a stale reused connection is retried once on
        a fresh one (no body, idempotent method), ``request.header_timeout`` is
        ``responseHeaderTimeout``, and a connection goes back to the pool only after a
        whole answer. Raises as :meth:`forward` for what happens before the write.
        """
        if self._closed:
            raise RuntimeError("the transport is closed")
        serialised = request_head(request)
        detached = DetachedRequest(payload(serialised, body), serialised[4], request)
        loop = self._bind()
        connection = self._checkout(request.origin, loop.time(), copy=True)
        if connection is None:
            await self.redial(detached, owner)
            return
        replayable = not serialised[3] and request.method in _REPLAYABLE_METHODS
        self._hand_over(connection, detached, owner, retry=replayable)

    async def redial(self, request: DetachedRequest, owner: CopyOwner) -> None:
        """A detached copy on a new connection (none idle, or a retry: never retried)."""
        connection = await self._connect(request.request, copy=True)
        self._hand_over(connection, request, owner, retry=False)

    def _hand_over(
        self, connection: HTTP11Connection, request: DetachedRequest, owner: CopyOwner, retry: bool
    ) -> None:
        if not owner.attach(connection):  # the copy was stopped meanwhile
            self.release(connection)
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
