"""TLS towards servers, as Traefik's ServersTransport sets it up.

Ports the TLS part of ``pkg/server/service/transport.go`` (``createRootCACertPool``,
``Certificates``, ``InsecureSkipVerify``, ``MinVersion``/``MaxVersion``, ``CipherSuites``
and
``peerCertSANs``/``peerCertURI``, checked by :func:`peer_cert_problem` as
``pkg/tls.VerifyPeerCertificate`` checks them): one :class:`ssl.SSLContext` per
ServersTransport, used by the HTTP/1.1 pool (``https://`` servers) and by the WebSocket
proxy (``wss://`` servers) alike.
"""

from __future__ import annotations

import ssl
import tempfile
from typing import Any

import httpx

from ..config import ServersTransport
from ..config.ciphers import CIPHER_SUITES
from ..config.middlewares import ClientTLS
from ..config.models import Origin

__all__ = [
    "CertificateRefused",
    "client_tls_context",
    "peer_cert_problem",
    "ssl_context",
    "websocket_ssl_context",
]


class CertificateRefused(httpx.ConnectError):
    """The gateway refused the server's certificate: one its CAs or the host name do not
    accept, or one without the ``peerCertURI``. Go's handshake returns these errors as
    they are (not a ``net.Error``), so Traefik's ``ComputeStatusCode`` answers ``500
    Internal Server Error``, where a handshake the server refuses (a TLS alert, which
    Go wraps in a ``net.OpError``) or a broken connection is ``502`` (all observed on
    Traefik 3.7.15: tests/conformance/test_kubernetes_crd_fields.py)."""


_VERSIONS = {
    "VersionTLS10": ssl.TLSVersion.TLSv1,
    "VersionTLS11": ssl.TLSVersion.TLSv1_1,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}


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
        # With peerCertSANs Traefik still verifies the chain (verifyChain), not the name.
        context.verify_mode = ssl.CERT_REQUIRED if transport.peer_cert_sans else ssl.CERT_NONE
    if transport.min_version:
        context.minimum_version = _VERSIONS[transport.min_version]
    if transport.max_version:
        context.maximum_version = _VERSIONS[transport.max_version]
    if transport.cipher_suites:
        _set_cipher_suites(context, transport.cipher_suites)
    return context


def client_tls_context(tls: ClientTLS) -> ssl.SSLContext:
    """Traefik's ``types.ClientTLS.CreateTLSConfig`` (the ``tls`` of ``forwardAuth`` and of
    a rate limiter's Redis): the CA replaces the system's, the certificate is shown,
    ``insecureSkipVerify`` checks nothing. Raises ``ssl.SSLError`` for a certificate and
    key that do not pair."""
    transport = ServersTransport(
        "",
        "",
        Origin(None, None, "", ""),
        insecure_skip_verify=tls.insecure_skip_verify,
        root_cas=(tls.ca,) if tls.ca else (),
        client_certificates=(tls.cert.rstrip("\n") + "\n" + tls.key,) if tls.cert else (),
    )
    return ssl_context(transport)


def _set_cipher_suites(context: ssl.SSLContext, names: tuple[str, ...]) -> None:
    """Offer only these TLS 1.0-1.2 suites (Go's ``Config.CipherSuites``). TLS 1.3 suites
    stay all on, as in Go, which does not let them be configured. When no configured suite
    is a TLS 1.2 one this OpenSSL has (only TLS 1.3 names, or RC4/3DES, which OpenSSL 3
    leaves out), Go offers TLS 1.2 no suite at all: only TLS 1.3 can then be agreed."""
    openssl = [CIPHER_SUITES[n].openssl for n in names]
    wanted = ":".join(dict.fromkeys(name for name in openssl if name))
    try:
        context.set_ciphers(wanted)
    except ssl.SSLError:  # "No cipher can be selected": no TLS 1.2 suite at all
        context.minimum_version = ssl.TLSVersion.TLSv1_3


def _dns_matches(pattern: str, name: str) -> bool:
    """Go's ``x509.Certificate.VerifyHostname`` for one DNS SAN: case-insensitive, a
    leading ``*.`` matching exactly one label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def peer_cert_problem(cert: dict[str, Any] | None, sans: tuple[tuple[str, str], ...]) -> str | None:
    """Why the server's certificate (``getpeercert()``, already verified against the
    CAs) carries none of ``sans`` (``("URI", value)`` compared case-insensitively,
    ``("DNSName", name)`` as a host name), or None when one matches: Traefik's
    ``VerifyPeerCertificate``, which refuses the connection with this message."""
    present = (cert or {}).get("subjectAltName", ())
    uris = [v for k, v in present if k == "URI"]
    names = [v for k, v in present if k == "DNS"]
    for kind, value in sans:
        if kind == "URI" and any(value.lower() == u.lower() for u in uris):
            return None
        if kind == "DNSName" and any(_dns_matches(n, value) for n in names):
            return None
    return "no matching SAN in peer certificate"


_WEBSOCKET_CONTEXTS: dict[ServersTransport | None, ssl.SSLContext] = {}


def websocket_ssl_context(transport: ServersTransport | None) -> ssl.SSLContext:
    """The TLS context for ``wss://`` servers of ``transport`` (None: the default one),
    built once per transport by the same rules as the HTTP client's."""
    context = _WEBSOCKET_CONTEXTS.get(transport)
    if context is None:
        context = ssl.create_default_context() if transport is None else ssl_context(transport)
        _WEBSOCKET_CONTEXTS[transport] = context
    return context
