"""Upstream I/O: how the gateway talks to its servers.

* :mod:`.request` — :class:`UpstreamRequest`, one request on plain values, and its
  HTTP/1.1 serialisation;
* :mod:`.http11` — one HTTP/1.1 connection (``asyncio.Protocol`` + ``httptools``);
* :mod:`.pool` — :class:`GatewayTransport`, the idle connections per origin;
* :mod:`.h2c` — :class:`H2CTransport`, HTTP/2 cleartext with prior knowledge;
* :mod:`.tls` — the TLS context of a ServersTransport;
* :mod:`.manager` — :class:`ClientHolder`, the transports of one ServersTransport;
* :mod:`.tunnel` — :class:`~.tunnel.Tunnel`, two connections joined after a ``101``.
"""

from .h2c import H2CTransport
from .http11 import RawResponse
from .manager import ClientHolder, default_client, no_cookie_jar
from .pool import GatewayTransport
from .request import UpstreamRequest

__all__ = [
    "ClientHolder",
    "GatewayTransport",
    "H2CTransport",
    "RawResponse",
    "UpstreamRequest",
    "default_client",
    "no_cookie_jar",
]
