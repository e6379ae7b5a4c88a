"""forwardAuth beyond the conformance case (tests/conformance/cases/middleware-forward-
auth): TLS towards the auth server, a gzip answer, the answer-size limit, and the
configuration's errors. The auth servers here are real ones, on loopback."""

from __future__ import annotations

import base64
import contextlib
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.asgi import NextApp, run, scope
from tests.support.config import errors, middleware_route
from tests.support.gateway import serve_app
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config.middlewares import ClientTLS
from traefikservice_asgi.config.middlewares import ForwardAuth as ForwardAuthConfig
from traefikservice_asgi.entrypoint.context import forward_of
from traefikservice_asgi.middlewares.forwardauth import ForwardAuth, canonical_header_key


def answering(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def ask(config: ForwardAuthConfig) -> tuple[list[Any], NextApp]:
    nxt = NextApp()
    sent = run(ForwardAuth(nxt, config), scope(headers=[(b"host", b"a.test")]))
    return sent, nxt


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextlib.contextmanager
def tls_auth_server(ca: trustme.CA, tmp_path: Path) -> Iterator[str]:
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key_file.write_bytes(cert.private_key_pem.bytes())
    app = answering(200, [(b"x-auth-user", b"tls")], b"")
    with serve_app(app, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as url:
        yield url.replace("http://", "https://") + "/verify"


def test_an_https_auth_server_is_verified_with_the_ca_of_tls(
    ca: trustme.CA, tmp_path: Path
) -> None:
    with tls_auth_server(ca, tmp_path) as address:
        pem = ca.cert_pem.bytes().decode()
        with_ca = ForwardAuthConfig(
            address, auth_response_headers=("X-Auth-User",), tls=ClientTLS(ca=pem)
        )
        sent, nxt = ask(with_ca)
        assert sent[0]["status"] == 200
        assert (b"x-auth-user", b"tls") in forward_of(nxt.scopes[0]).headers
        sent, _ = ask(ForwardAuthConfig(address))  # the system CAs do not know it: 500
        assert (sent[0]["status"], sent[1]["body"]) == (500, b"")
        insecure = ForwardAuthConfig(address, tls=ClientTLS(insecure_skip_verify=True))
        assert ask(insecure)[0][0]["status"] == 200


def test_a_gzip_answer_to_gos_own_accept_encoding_is_relayed_decompressed() -> None:
    packed = gzip.compress(b"denied, in full")
    headers = [(b"content-encoding", b"gzip"), (b"content-type", b"text/plain")]
    with serve_app(answering(403, headers, packed)) as url:
        sent, _ = ask(ForwardAuthConfig(url + "/"))
    assert sent[0]["status"] == 403 and sent[1]["body"] == b"denied, in full"
    names = [k for k, _ in sent[0]["headers"]]
    assert b"content-encoding" not in names and (b"content-length", b"15") in sent[0]["headers"]


def test_an_answer_over_max_response_body_size_is_a_401() -> None:
    with serve_app(answering(200, [], b"x" * 11)) as url:
        assert ask(ForwardAuthConfig(url, max_response_body_size=11))[0][0]["status"] == 200
        sent, nxt = ask(ForwardAuthConfig(url, max_response_body_size=10))
    assert (sent[0]["status"], sent[1]["body"], nxt.scopes) == (401, b"", [])


def test_canonical_header_keys_are_gos() -> None:
    assert canonical_header_key(b"x-auth-USER") == b"X-Auth-User"
    assert canonical_header_key(b"www-authenticate") == b"Www-Authenticate"
    assert canonical_header_key(b"bad name") == b"bad name"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "{trustForwardHeader: true}",
            "spec.forwardAuth.address: forward authentication requires an address",
        ),
        (
            "{address: 'https://a', tls: {caSecret: ca}}",
            "spec.forwardAuth.tls.caSecret: unable to create client TLS configuration: failed to parse CA",
        ),
        (
            "{address: 'http://a', authResponseHeadersRegex: '(x'}",
            "spec.forwardAuth.authResponseHeadersRegex: invalid regexp",
        ),
        (
            "{address: 'http://a', tls: {caSecret: nope}}",
            "spec.forwardAuth.tls.caSecret: failed to load auth ca secret: secret 'default/nope' not found",
        ),
        (
            "{address: 'http://a', tls: {certSecret: nope}}",
            "spec.forwardAuth.tls.certSecret: failed to load auth secret: secret 'default/nope' does not exist",
        ),
        (
            "{address: 'http://a', maxBodySize: x}",
            "spec.forwardAuth.maxBodySize: must be an integer",
        ),
    ],
)
def test_forward_auth_errors_are_located(spec: str, message: str) -> None:
    bad_ca = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: ca}\nstringData: {ca.crt: nope}\n"
    found = errors(middleware_route(f"{{forwardAuth: {spec}}}") + bad_ca)
    assert any(message in line and line.startswith("routes.yaml:") for line in found), found


def test_a_ca_secret_with_one_other_key_is_the_ca_as_in_traefik(ca: trustme.CA) -> None:
    pem = ca.cert_pem.bytes()
    text = middleware_route("{forwardAuth: {address: 'https://a', tls: {caSecret: ca}}}") + (
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: ca}\n"
        f"data: {{other: {base64.b64encode(pem).decode()}}}\n"
    )
    config = load_config_text(text, backends={"default/app:80": "http://127.0.0.1:9"})
    spec = config.routes[0].middlewares[0].spec
    assert isinstance(spec, ForwardAuthConfig) and spec.tls is not None
    assert spec.tls.ca == pem.decode()


def test_an_address_go_cannot_ask_is_a_warning_and_every_request_a_500() -> None:
    config = load_config_text(
        middleware_route("{forwardAuth: {address: test.com}}"),
        backends={"default/app:80": "http://127.0.0.1:9"},
    )
    assert any("not an http:// or https:// URL" in str(w) for w in config.warnings)
    sent, nxt = ask(ForwardAuthConfig("test.com"))
    assert (sent[0]["status"], sent[1]["body"], nxt.scopes) == (500, b"", [])
