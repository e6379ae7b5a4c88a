"""ServersTransport: parsing with located errors, and its effect on real connections."""

from __future__ import annotations

import base64
import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn  # noqa: F401  (the TLS backend below runs under it)
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app, wait_for_copies
from tests.support.manifests import MIRROR_100
from tests.support.tls import cert_with_uri, hello_over_tls, one_suite_server
from traefikservice_asgi import ConfigError, create_app, load_config_text
from traefikservice_asgi.config import ServersService
from traefikservice_asgi.config._duration import parse_duration
from traefikservice_asgi.config.ciphers import CIPHER_SUITES
from traefikservice_asgi.transport.tls import peer_cert_problem

ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`t.test`)
      services: [{name: app, port: %s, serversTransport: st}]
---
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        ("10", 10.0),
        (7, 7.0),
        ("2h45m0.5s", 9900.5),
    ],
)
def test_go_durations_and_bare_seconds_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "1x", "s", "1s2", True, -1, "-1s"])
def test_invalid_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(bad)


def test_servers_transport_errors_are_located() -> None:
    text = (
        ROUTE % "80"
        + """\
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec:
  forwardingTimeouts:
    responseHeaderTimeout: soon
  spiffe: {ids: [x]}
"""
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename="st.yaml")
    assert [str(i) for i in info.value.issues] == [
        "st.yaml:14: ServersTransport default/st: spec.forwardingTimeouts.responseHeaderTimeout: "
        'must be a duration such as 30s or 1m30s, got "soon"',
        "st.yaml:15: ServersTransport default/st: spec.spiffe: not supported by traefikservice-asgi: "
        "SPIFFE needs a SPIFFE Workload API to fetch certificates from, and there is none "
        "here; use rootCAs and certificatesSecrets",
    ]


def test_unknown_servers_transport_and_missing_ca_secret_are_errors() -> None:
    with pytest.raises(ConfigError, match="ServersTransport default/st not found"):
        load_config_text(ROUTE % "80")
    text = (
        ROUTE % "80"
        + """\
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec:
  rootCAs: [{secret: ca}]
"""
    )
    with pytest.raises(
        ConfigError, match=r"Secret default/ca with a tls\.ca or ca\.crt key not found"
    ):
        load_config_text(text)


def test_response_header_timeout_answers_504_after_the_timeout_not_the_backend(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.yaml").write_text(
        ROUTE % "80"
        + """\
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec:
  forwardingTimeouts: {responseHeaderTimeout: 500ms}
"""
    )
    with RecordingBackend("app", delay=5) as slow:
        app = create_app(tmp_path, backends={"default/app:80": slow.url})
        with serve_app(app) as url:
            started = time.monotonic()
            r = httpx.get(url, headers={"Host": "t.test"}, timeout=10)
            elapsed = time.monotonic() - started
    assert (r.status_code, r.content) == (504, b"Gateway Timeout")
    assert r.headers["content-length"] == "15" and "content-type" not in r.headers
    assert 0.45 <= elapsed < 3.0  # the timeout, not the backend's 5 s


def test_response_header_timeout_does_not_limit_a_slow_body(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        ROUTE % "80"
        + """\
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec:
  forwardingTimeouts: {responseHeaderTimeout: 300ms}
"""
    )

    async def trickle(scope: Scope, receive: Receive, send: Send) -> None:
        import asyncio

        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b"c"):
            await asyncio.sleep(0.25)  # 0.75 s of body, longer than the header timeout
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with serve_app(trickle) as backend:
        app = create_app(tmp_path, backends={"default/app:80": backend})
        with serve_app(app) as url:
            r = httpx.get(url, headers={"Host": "t.test"}, timeout=10)
    assert (r.status_code, r.content) == (200, b"abc")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextlib.contextmanager
def _tls_server(ca: trustme.CA, tmp_path: Path, app: ASGIApp) -> Iterator[str]:
    """``app`` served over TLS with a certificate of ``ca`` for 127.0.0.1; its URL."""
    cert = ca.issue_cert("backend.test", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key_file.write_bytes(cert.private_key_pem.bytes())
    with serve_app(app, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as url:
        yield url.replace("http://", "https://")


@pytest.fixture
def tls_backend(ca: trustme.CA, tmp_path: Path) -> Iterator[str]:
    with _tls_server(ca, tmp_path, hello_over_tls) as url:
        yield url


def _tls_config(ca: trustme.CA, spec: str) -> str:
    return ROUTE % "443" + _tls_resources(ca, spec)


def _tls_resources(ca: trustme.CA, spec: str) -> str:
    """A Secret holding ``ca``'s certificate, and ServersTransport ``st`` of ``spec``."""
    secret = base64.b64encode(ca.cert_pem.bytes()).decode()
    return f"""\
apiVersion: v1
kind: Secret
metadata: {{name: backend-ca, namespace: default}}
data: {{ca.crt: {secret}}}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: st, namespace: default}}
spec:
{spec}
"""


def test_root_cas_from_a_secret_verify_a_private_backend(
    ca: trustme.CA, tls_backend: str, tmp_path: Path
) -> None:
    (tmp_path / "r.yaml").write_text(_tls_config(ca, "  rootCAs: [{secret: backend-ca}]"))
    app = create_app(tmp_path, backends={"default/app:443": tls_backend})
    with serve_app(app) as url:
        r = httpx.get(url, headers={"Host": "t.test"})
    assert (r.status_code, r.text) == (200, "hello over tls")


def test_without_the_ca_the_backend_is_refused_with_500(tls_backend: str, tmp_path: Path) -> None:
    """Go's certificate verification error is no net.Error: Traefik answers 500
    (tests/conformance/test_kubernetes_crd_fields.py)."""
    (tmp_path / "r.yaml").write_text(
        ROUTE % "443"
        + """\
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec:
  maxIdleConnsPerHost: 5
"""
    )
    app = create_app(tmp_path, backends={"default/app:443": tls_backend})
    with serve_app(app) as url:
        r = httpx.get(url, headers={"Host": "t.test"})
    assert (r.status_code, r.content) == (500, b"Internal Server Error")


def test_insecure_skip_verify_accepts_any_certificate(
    ca: trustme.CA, tls_backend: str, tmp_path: Path
) -> None:
    (tmp_path / "r.yaml").write_text(_tls_config(ca, "  insecureSkipVerify: true"))
    app = create_app(tmp_path, backends={"default/app:443": tls_backend})
    with serve_app(app) as url:
        r = httpx.get(url, headers={"Host": "t.test"})
    assert r.text == "hello over tls"


# Every request mirrored to Service `app` on port 443, through ServersTransport `st`.
MIRROR_TO_TLS = MIRROR_100.replace(
    "{name: copy, port: 80, percent: 100}",
    "{name: app, port: 443, serversTransport: st, percent: 100}",
)


def test_a_copy_reaches_a_tls_mirror_through_its_servers_transport(
    ca: trustme.CA, tmp_path: Path
) -> None:
    """The copy is written and its answer read over TLS by the connection itself."""
    received: list[tuple[str, str, bytes]] = []
    arrived = threading.Event()

    async def mirror(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        received.append((scope["method"], scope["path"], body))
        arrived.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"copy"})

    config = tmp_path / "config"
    config.mkdir()
    (config / "r.yaml").write_text(
        MIRROR_TO_TLS + "---\n" + _tls_resources(ca, "  rootCAs: [{secret: backend-ca}]")
    )
    with RecordingBackend("main") as main, _tls_server(ca, tmp_path, mirror) as mirror_url:
        app = create_app(
            config, backends={"default/main:80": main.url, "default/app:443": mirror_url}
        )
        with serve_app(app) as url:
            r = httpx.post(url + "/up", content=b"payload", headers={"Host": "m.test"})
            assert r.text == "Hello main\n"
            assert arrived.wait(5)
            wait_for_copies(app)  # the copy's answer is read by its connection
            transport = app.runtime.holders[1].direct  # the ServersTransport's own client
            assert transport is not None and transport.idle_connections(copies=True) == 1
    assert received == [("POST", "/up", b"payload")]


def test_transport_settings_reach_the_resolved_service() -> None:
    text = (
        ROUTE % "80"
        + """\
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec:
  serverName: internal.test
  maxIdleConnsPerHost: 7
  forwardingTimeouts: {dialTimeout: 2s, idleConnTimeout: 1m}
"""
    )
    (route,) = load_config_text(text).routes
    assert isinstance(route.service, ServersService) and route.service.transport is not None
    t = route.service.transport
    assert (t.server_name, t.max_idle_conns_per_host, t.dial_timeout, t.idle_conn_timeout) == (
        "internal.test",
        7,
        2.0,
        60.0,
    )
    assert t.response_header_timeout is None


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ("  peerCertURI: spiffe://cluster/backend", 200),
        ("  peerCertURI: SPIFFE://cluster/BACKEND", 200),  # EqualFold, as Traefik
        ("  peerCertURI: spiffe://cluster/other", 500),
        ("  peerCertSANs: [{type: URI, value: spiffe://cluster/backend}]", 200),
        ("  peerCertSANs: [{type: DNSName, value: backend.test}]", 500),
        (
            "  peerCertSANs: [{type: DNSName, value: x.test}, "
            "{type: URI, value: spiffe://cluster/backend}]",
            200,
        ),
        # Traefik verifies the chain (not the name) when the SANs are checked.
        ("  insecureSkipVerify: true\n  peerCertURI: spiffe://cluster/other", 500),
        ("  insecureSkipVerify: true\n  peerCertURI: spiffe://cluster/backend", 200),
    ],
)
def test_peer_cert_sans_must_match_the_servers_certificate(
    ca: trustme.CA, tmp_path: Path, spec: str, status: int
) -> None:
    cert_file, key_file = cert_with_uri(ca, tmp_path, "spiffe://cluster/backend")
    rootcas = "  rootCAs: [{secret: backend-ca}]\n"
    (tmp_path / "r.yaml").write_text(_tls_config(ca, rootcas + spec))
    with serve_app(hello_over_tls, ssl_certfile=cert_file, ssl_keyfile=key_file) as backend:
        app = create_app(
            tmp_path, backends={"default/app:443": backend.replace("http://", "https://")}
        )
        with serve_app(app) as url:
            r = httpx.get(url, headers={"Host": "t.test"})
    # A certificate without the SAN is 500, as Traefik answers it (its
    # VerifyPeerCertificate error is not a net.Error: tests/conformance/
    # test_kubernetes_crd_fields.py)
    assert r.status_code == status
    if status == 500:
        assert r.content == b"Internal Server Error"


def test_peer_cert_san_check_without_a_san_in_the_certificate_fails() -> None:
    assert peer_cert_problem({}, (("URI", "spiffe://x"),)) == (
        "no matching SAN in peer certificate"
    )
    assert (
        peer_cert_problem(
            {"subjectAltName": (("DNS", "*.example.org"),)}, (("DNSName", "a.example.org"),)
        )
        is None
    )
    assert (
        peer_cert_problem(
            {"subjectAltName": (("DNS", "*.example.org"),)}, (("DNSName", "a.b.example.org"),)
        )
        == "no matching SAN in peer certificate"
    )


def test_bad_tls_versions_and_san_types_are_refused_with_the_reason() -> None:
    text = ROUTE % "80" + (
        "apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\n"
        "metadata: {name: st, namespace: default}\nspec:\n"
        "  minVersion: VersionTLS13\n  maxVersion: VersionTLS12\n"
        "  peerCertSANs: [{type: IP, value: 1.2.3.4}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename="st.yaml")
    messages = [str(i) for i in info.value.issues]
    assert any(
        "spec.minVersion: TLS minimum version VersionTLS13 is above the maximum version "
        "VersionTLS12" in m
        for m in messages
    )
    assert any('peerCertSANs[0].type: must be one of DNSName, URI, got "IP"' in m for m in messages)


def test_unknown_cipher_suite_names_are_located_errors() -> None:
    text = ROUTE % "443" + (
        "apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\n"
        "metadata: {name: st, namespace: default}\nspec:\n"
        "  cipherSuites:\n"
        "    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
        "    - ECDHE-RSA-AES128-GCM-SHA256\n"  # OpenSSL's name, not Go's
        "    - tls_aes_128_gcm_sha256\n"  # Go's names are case-sensitive
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename="st.yaml")
    assert [str(i) for i in info.value.issues] == [
        f"st.yaml:{line}: ServersTransport default/st: spec.cipherSuites[{i}]: cipher suite "
        f'not supported: "{name}" (Go\'s crypto/tls names, such as '
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
        for line, i, name in (
            (15, 1, "ECDHE-RSA-AES128-GCM-SHA256"),
            (16, 2, "tls_aes_128_gcm_sha256"),
        )
    ]


def test_cipher_suites_reach_the_resolved_transport_as_written() -> None:
    text = ROUTE % "443" + (
        "apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\n"
        "metadata: {name: st, namespace: default}\nspec:\n"
        "  cipherSuites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"
    )
    (route,) = load_config_text(text).routes
    assert isinstance(route.service, ServersService) and route.service.transport is not None
    assert route.service.transport.cipher_suites == (
        "TLS_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    )


def test_every_go_cipher_name_maps_to_the_openssl_suite_of_the_same_id() -> None:
    """The table's OpenSSL names carry Go's IDs, for every suite this OpenSSL has (RC4
    and 3DES are left out of OpenSSL 3's build; they are then never offered)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("ALL:@SECLEVEL=0")
    by_name = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    checked = 0
    for go_name, suite in CIPHER_SUITES.items():
        if suite.openssl is None:
            assert go_name.startswith("TLS_AES_") or go_name in {
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_FALLBACK_SCSV",
            }
        elif suite.openssl in by_name:
            assert by_name[suite.openssl] == suite.go_id, go_name
            checked += 1
        else:
            assert "RC4" in go_name or "3DES" in go_name, go_name
    assert checked >= 18


@pytest.mark.parametrize(
    ("suites", "status"),
    [
        ("[TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]", 200),
        ("[TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]", 200),
        ("[TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]", 502),
        ("[TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]", 502),  # the certificate is ECDSA
        ("[TLS_AES_128_GCM_SHA256]", 502),  # TLS 1.3 only: no TLS 1.2 suite is offered
        ("[TLS_RSA_WITH_RC4_128_SHA]", 502),  # not in OpenSSL 3: nothing offered either
        ("[]", 200),  # the defaults
    ],
)
def test_cipher_suites_limit_what_the_gateway_offers_a_tls_1_2_backend(
    ca: trustme.CA, tmp_path: Path, suites: str, status: int
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    spec = f"  rootCAs: [{{secret: backend-ca}}]\n  cipherSuites: {suites}"
    (config / "r.yaml").write_text(_tls_config(ca, spec))
    with one_suite_server(ca, tmp_path, "ECDHE-ECDSA-AES128-GCM-SHA256") as backend:
        app = create_app(config, backends={"default/app:443": backend})
        with serve_app(app) as url:
            r = httpx.get(url, headers={"Host": "t.test"})
    assert r.status_code == status
    assert r.content == (b"hello over tls" if status == 200 else b"Bad Gateway")
