"""TLS towards servers, as Traefik's ServersTransport sets it up.

Ports the TLS part of ``pkg/server/service/transport.go`` (``createRootCACertPool``,
``Certificates``, ``InsecureSkipVerify``): one :class:`ssl.SSLContext` per
ServersTransport, used by the HTTP/1.1 pool (``https://`` servers) and by the WebSocket
proxy (``wss://`` servers) alike.
"""

from __future__ import annotations

import ssl
import tempfile

from ..config import ServersTransport

__all__ = ["ssl_context", "websocket_ssl_context"]


def ssl_context(transport: ServersTransport) -> ssl.SSLContext:
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


_WEBSOCKET_CONTEXTS: dict[ServersTransport | None, ssl.SSLContext] = {}


def websocket_ssl_context(transport: ServersTransport | None) -> ssl.SSLContext:
    """The TLS context for ``wss://`` servers of ``transport`` (None: the default one),
    built once per transport by the same rules as the HTTP client's."""
    context = _WEBSOCKET_CONTEXTS.get(transport)
    if context is None:
        context = ssl.create_default_context() if transport is None else ssl_context(transport)
        _WEBSOCKET_CONTEXTS[transport] = context
    return context
