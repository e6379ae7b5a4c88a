"""The clients and transports of one ServersTransport: the one owner of "the pool".

Traefik keeps one ``http.RoundTripper`` per ServersTransport
(``pkg/server/service/transport.go``, ``TransportManager``) and picks HTTP/1.1, HTTP/2
or h2c per server URL (``smart_roundtripper.go``). Here a :class:`ClientHolder` owns,
for one ServersTransport (or the default one), the HTTP/1.1
:class:`~traefikservice_asgi.transport.pool.GatewayTransport` inside an
``httpx.AsyncClient`` and the :class:`~traefikservice_asgi.transport.h2c.H2CTransport`;
both are created on first use and closed at shutdown.
"""

from __future__ import annotations

import http.cookiejar

import httpx

from ..config import (
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_IDLE_CONN_TIMEOUT,
    DEFAULT_MAX_IDLE_CONNS_PER_HOST,
    ServersTransport,
)
from .h2c import H2CTransport
from .pool import GatewayTransport
from .tls import ssl_context

__all__ = ["ClientHolder", "default_client", "no_cookie_jar", "timeouts_of"]


class _BlockAllCookies(http.cookiejar.DefaultCookiePolicy):
    """A shared client must never keep one user's cookies for another."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


def no_cookie_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that refuses every cookie: responses never leak into later requests."""
    return http.cookiejar.CookieJar(policy=_BlockAllCookies())


def timeouts_of(transport: ServersTransport | None) -> dict[str, float | None]:
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
        ssl_context=ssl_context(transport),
        peer_cert_sans=transport.peer_cert_sans,
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
        timeout=httpx.Timeout(**timeouts_of(transport)),
        follow_redirects=False,
        trust_env=False,
        cookies=no_cookie_jar(),
    )


def default_client(transport: ServersTransport | None = None) -> httpx.AsyncClient:
    """A client the gateway creates: for the default transport, or for one
    ``ServersTransport``.

    It rides on :class:`~traefikservice_asgi.transport.pool.GatewayTransport` (chosen by
    measurement: see ``bench/README.md``). Traefik's defaults (``DEFAULT_DIAL_TIMEOUT``
    to connect, no read timeout, ``DEFAULT_MAX_IDLE_CONNS_PER_HOST`` idle connections
    per host kept ``DEFAULT_IDLE_CONN_TIMEOUT``, in :mod:`traefikservice_asgi.config`);
    no redirects followed, no cookie jar, and nothing from the environment
    (``trust_env=False``: no proxy, no ``.netrc``), so upstream traffic never depends on
    the shell it started in.
    """
    return _client_around(_gateway_transport(transport), transport)


class ClientHolder:
    """Owns a client: created on first use, closed at shutdown. A client passed in by
    the user is used as is and left open (:attr:`owned` is False). ``transport`` is the
    ServersTransport the client is built for (None: the default one).

    For a client of its own, :attr:`direct` (and :attr:`gateway`, which creates the
    client if needed) is the client's transport: the leaf calls it without
    ``client.send``, whose per-request auth flow, event hooks and cookie extraction cost
    as much as the transport itself and do nothing for a gateway. A user's client keeps
    going through ``send``, so their hooks and mounts still apply.

    :attr:`h2c` is the HTTP/2 cleartext transport for ``h2c://`` servers, always the
    holder's own (a user's client cannot be assumed to speak it) and closed by
    :meth:`aclose`. A client of the holder's own has it mounted for ``h2c://`` URLs, so
    health checks reach h2c servers through the client.
    """

    __slots__ = ("_client", "_h2c", "copy_idle", "direct", "owned", "transport")

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        transport: ServersTransport | None = None,
        *,
        copy_idle: int = 0,
    ) -> None:
        self._client = client
        self.owned = client is None
        self.transport = transport
        # Idle connections kept per host for mirror copies, apart from the main pool
        # (the gateway passes its cap on copies in flight; see transport/pool.py).
        self.copy_idle = copy_idle
        self.direct: GatewayTransport | None = None
        self._h2c: H2CTransport | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None or (self.owned and self._client.is_closed):
            gateway = _gateway_transport(self.transport, self.copy_idle)
            self._client = _client_around(gateway, self.transport, self.h2c)
            self.direct = gateway
        return self._client

    @property
    def gateway(self) -> GatewayTransport:
        """The transport of the holder's own client (created, or created again after a
        close, as :attr:`client` is). Only for a holder that owns its client."""
        direct = self.direct
        if direct is None or direct.closed:
            self.client  # noqa: B018  (creates the client and its transport)
            direct = self.direct
            assert direct is not None, "a user's client has no gateway transport"
        return direct

    @property
    def h2c(self) -> H2CTransport:
        if self._h2c is None or self._h2c.closed:
            self._h2c = _h2c_transport(self.transport)
        return self._h2c

    async def aclose(self) -> None:
        if self.owned and self._client is not None:
            await self._client.aclose()
            self._client = None
            self.direct = None
        if self._h2c is not None:
            await self._h2c.aclose()  # idempotent: the client may have closed its mount
            self._h2c = None
