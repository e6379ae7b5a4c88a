"""``ServersTransport`` (Traefik's ``pkg/provider/kubernetes/crd/traefikio/v1alpha1/
serverstransport.go``): how to talk to servers. A field that is 0 or absent falls back
to Traefik's default (``pkg/config/static``); CAs and client certificates stay names of
Secrets/ConfigMaps until resolution."""

from __future__ import annotations

from typing import Any

from .._fields import Reader, show
from .._yaml import Path
from ..ciphers import CIPHER_SUITES
from ..models import (
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_IDLE_CONN_TIMEOUT,
    DEFAULT_MAX_IDLE_CONNS_PER_HOST,
    ServersTransport,
)

__all__ = ["TLS_VERSIONS", "servers_transport"]

# Traefik's names for minVersion/maxVersion (pkg/tls: Go's tls.VersionTLS1x).
TLS_VERSIONS = ("VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13")


def servers_transport(r: Reader, spec: Any, namespace: str, name: str) -> ServersTransport | None:
    path: Path = ("spec",)
    m = r.mapping(
        spec,
        path,
        {
            "serverName",
            "insecureSkipVerify",
            "rootCAs",
            "rootCAsSecrets",
            "certificatesSecrets",
            "maxIdleConnsPerHost",
            "forwardingTimeouts",
            "disableHTTP2",
            "peerCertURI",
            "peerCertSANs",
            "minVersion",
            "maxVersion",
            "cipherSuites",
        },
        {
            "spiffe": "SPIFFE needs a SPIFFE Workload API to fetch certificates from, "
            "and there is none here; use rootCAs and certificatesSecrets",
        },
    )
    if m is None:
        return None
    sans: list[tuple[str, str]] = []
    for i, item in enumerate(r.items(m, path, "peerCertSANs")):
        spath = (*path, "peerCertSANs", i)
        san = r.mapping(item, spath, {"type", "value"})
        if san is None:
            continue
        kind = r.string(san, spath, "type", required=True, choices=("DNSName", "URI"))
        value = r.string(san, spath, "value", required=True)
        if kind is not None and value is not None:
            sans.append((kind, value))
    uri = r.string(m, path, "peerCertURI")
    if uri:
        # Traefik 3.7's field (its VerifyPeerCertificate); peerCertSANs, which later
        # Traefik adds and deprecates peerCertURI for, is read beside it (a URI SAN).
        sans.append(("URI", uri))
    versions: dict[str, str | None] = {}
    for key in ("minVersion", "maxVersion"):
        versions[key] = r.string(m, path, key, choices=TLS_VERSIONS)
    low, high = versions["minVersion"], versions["maxVersion"]
    if low and high and TLS_VERSIONS.index(low) > TLS_VERSIONS.index(high):
        r.error(
            (*path, "minVersion"),
            f"TLS minimum version {low} is above the maximum version {high}",
        )
    ciphers: list[str] = []
    for i, item in enumerate(r.items(m, path, "cipherSuites")):
        if isinstance(item, str) and item in CIPHER_SUITES:
            ciphers.append(item)
        else:
            # Traefik's CRD provider logs "cipher suite not supported" and falls back to
            # Go's default suites; a located error here (docs/differences.md).
            r.error(
                (*path, "cipherSuites", i),
                f"cipher suite not supported: {show(item)} (Go's crypto/tls names, "
                "such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)",
            )
    root_cas: list[str] = []
    for i, item in enumerate(r.items(m, path, "rootCAs")):
        ipath = (*path, "rootCAs", i)
        ca = r.mapping(item, ipath, {"secret", "configMap"})
        if ca is None:
            continue
        secret, config_map = r.string(ca, ipath, "secret"), r.string(ca, ipath, "configMap")
        if (secret is None) == (config_map is None):
            r.error(ipath, "needs exactly one of secret, configMap")
        else:
            root_cas.append(f"secret:{secret}" if secret else f"configMap:{config_map}")
    for i, item in enumerate(r.items(m, path, "rootCAsSecrets")):
        if isinstance(item, str) and item:
            root_cas.append(f"secret:{item}")
        else:
            r.error((*path, "rootCAsSecrets", i), f"must be a Secret name, got {show(item)}")
    certificates: list[str] = []
    for i, item in enumerate(r.items(m, path, "certificatesSecrets")):
        if isinstance(item, str) and item:
            certificates.append(item)
        else:
            r.error((*path, "certificatesSecrets", i), f"must be a Secret name, got {show(item)}")
    timeouts: dict[str, float | None] = {}
    if m.get("forwardingTimeouts") is not None:
        tpath = (*path, "forwardingTimeouts")
        t = r.mapping(
            m["forwardingTimeouts"],
            tpath,
            {
                "dialTimeout",
                "responseHeaderTimeout",
                "idleConnTimeout",
                "readIdleTimeout",
                "pingTimeout",
            },
        )
        if t is not None:
            for key in (
                "dialTimeout",
                "responseHeaderTimeout",
                "idleConnTimeout",
                "readIdleTimeout",
                "pingTimeout",
            ):
                timeouts[key] = r.duration(t, tpath, key)
    disable_http2 = r.boolean(m, path, "disableHTTP2", False)
    max_idle = r.integer(m, path, "maxIdleConnsPerHost", minimum=0)
    dial = timeouts.get("dialTimeout")
    idle = timeouts.get("idleConnTimeout")
    header = timeouts.get("responseHeaderTimeout")
    return ServersTransport(
        namespace=namespace,
        name=name,
        origin=r.origin(()),
        server_name=r.string(m, path, "serverName"),
        insecure_skip_verify=r.boolean(m, path, "insecureSkipVerify", False),
        root_cas=tuple(root_cas),
        client_certificates=tuple(certificates),
        # Traefik: 0 means the default.
        max_idle_conns_per_host=max_idle or DEFAULT_MAX_IDLE_CONNS_PER_HOST,
        dial_timeout=dial or DEFAULT_DIAL_TIMEOUT,
        response_header_timeout=header or None,
        idle_conn_timeout=idle or DEFAULT_IDLE_CONN_TIMEOUT,
        disable_http2=disable_http2,
        peer_cert_sans=tuple(sans),
        min_version=low,
        max_version=high,
        cipher_suites=tuple(ciphers),
    )
