"""The cipher suite names a ServersTransport's ``cipherSuites`` takes: Go's
``crypto/tls`` constants as Traefik's ``pkg/tls/cipher.go`` (``CipherSuites``) lists them,
each with the OpenSSL name :meth:`ssl.SSLContext.set_ciphers` knows it by.

``None`` marks the names Go accepts and then cannot apply: the three TLS 1.3 suites (Go
offers all of them whatever the configuration says, and so does OpenSSL by default) and
``TLS_FALLBACK_SCSV`` (a signalling value, never offered as a suite). Go's numeric IDs
are kept beside the names so that a test can hold the table against OpenSSL's own.
"""

from __future__ import annotations

__all__ = ["CIPHER_SUITES", "CipherSuite"]

from typing import NamedTuple


class CipherSuite(NamedTuple):
    go_id: int  # the IANA value Go's constant holds
    openssl: str | None  # None: accepted, no effect (TLS 1.3 or TLS_FALLBACK_SCSV)


CIPHER_SUITES: dict[str, CipherSuite] = {
    "TLS_RSA_WITH_RC4_128_SHA": CipherSuite(0x0005, "RC4-SHA"),
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": CipherSuite(0x000A, "DES-CBC3-SHA"),
    "TLS_RSA_WITH_AES_128_CBC_SHA": CipherSuite(0x002F, "AES128-SHA"),
    "TLS_RSA_WITH_AES_256_CBC_SHA": CipherSuite(0x0035, "AES256-SHA"),
    "TLS_RSA_WITH_AES_128_CBC_SHA256": CipherSuite(0x003C, "AES128-SHA256"),
    "TLS_RSA_WITH_AES_128_GCM_SHA256": CipherSuite(0x009C, "AES128-GCM-SHA256"),
    "TLS_RSA_WITH_AES_256_GCM_SHA384": CipherSuite(0x009D, "AES256-GCM-SHA384"),
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": CipherSuite(0xC007, "ECDHE-ECDSA-RC4-SHA"),
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": CipherSuite(0xC009, "ECDHE-ECDSA-AES128-SHA"),
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": CipherSuite(0xC00A, "ECDHE-ECDSA-AES256-SHA"),
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": CipherSuite(0xC011, "ECDHE-RSA-RC4-SHA"),
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": CipherSuite(0xC012, "ECDHE-RSA-DES-CBC3-SHA"),
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": CipherSuite(0xC013, "ECDHE-RSA-AES128-SHA"),
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": CipherSuite(0xC014, "ECDHE-RSA-AES256-SHA"),
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": CipherSuite(0xC023, "ECDHE-ECDSA-AES128-SHA256"),
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": CipherSuite(0xC027, "ECDHE-RSA-AES128-SHA256"),
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": CipherSuite(0xC02F, "ECDHE-RSA-AES128-GCM-SHA256"),
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": CipherSuite(0xC02B, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": CipherSuite(0xC030, "ECDHE-RSA-AES256-GCM-SHA384"),
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": CipherSuite(0xC02C, "ECDHE-ECDSA-AES256-GCM-SHA384"),
    # Go's two spellings of each ChaCha20 suite (the short one is the older alias).
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": CipherSuite(0xCCA8, "ECDHE-RSA-CHACHA20-POLY1305"),
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": CipherSuite(
        0xCCA8, "ECDHE-RSA-CHACHA20-POLY1305"
    ),
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": CipherSuite(0xCCA9, "ECDHE-ECDSA-CHACHA20-POLY1305"),
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": CipherSuite(
        0xCCA9, "ECDHE-ECDSA-CHACHA20-POLY1305"
    ),
    "TLS_AES_128_GCM_SHA256": CipherSuite(0x1301, None),
    "TLS_AES_256_GCM_SHA384": CipherSuite(0x1302, None),
    "TLS_CHACHA20_POLY1305_SHA256": CipherSuite(0x1303, None),
    "TLS_FALLBACK_SCSV": CipherSuite(0x5600, None),
}
