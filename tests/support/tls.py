"""TLS backends for ServersTransport tests: certificates of a test CA (trustme) with a URI
SAN, and a TLS 1.2 server that allows a single cipher suite."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import trustme
from starlette.types import Receive, Scope, Send

from .gateway import serve_app

__all__ = ["cert_with_uri", "hello_over_tls", "one_suite_server"]


async def hello_over_tls(scope: Scope, receive: Receive, send: Send) -> None:
    """The TLS backends' app: ``200 hello over tls``."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello over tls"})


def cert_with_uri(ca: trustme.CA, tmp_path: Path, uri: str) -> tuple[str, str]:
    """A certificate of ``ca`` for 127.0.0.1 that also carries the URI SAN ``uri``
    (trustme issues DNS/IP/e-mail names only); its cert and key files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer = ca._certificate.subject
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backend")]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.UniformResourceIdentifier(uri),
                ]
            ),
            critical=False,
        )
        .sign(ca._private_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "uri-cert.pem", tmp_path / "uri-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@contextlib.contextmanager
def one_suite_server(ca: trustme.CA, tmp_path: Path, suite: str) -> Iterator[str]:
    """A TLS 1.2-only backend (:func:`hello_over_tls`, a certificate of ``ca`` for
    127.0.0.1) whose server allows the one OpenSSL ``suite``: a client that does not
    offer it cannot connect. Yields its ``https://`` URL."""
    cert = ca.issue_cert("backend.test", "127.0.0.1")
    cert_file, key_file = tmp_path / "suite-cert.pem", tmp_path / "suite-key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key_file.write_bytes(cert.private_key_pem.bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # PROTOCOL_TLSv1_2: TLS 1.2 only
        with serve_app(
            hello_over_tls,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            ssl_version=ssl.PROTOCOL_TLSv1_2,
            ssl_ciphers=suite,
        ) as url:
            yield url.replace("http://", "https://")
