"""basicAuth: go-http-auth's 401 challenge, the checks, and what the backend receives."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import bcrypt

from tests.support.asgi import NextApp, run, scope
from traefikservice_asgi.config.middlewares import BasicAuth as BasicAuthConfig
from traefikservice_asgi.entrypoint.context import forward_of
from traefikservice_asgi.middlewares.basicauth import BasicAuth, parse_basic_auth


def sha(password: str) -> str:
    return "{SHA}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def call(app: Any, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    return run(app, scope(headers=[(b"host", b"a.test"), *headers]))


def auth(*users: str, **options: Any) -> tuple[BasicAuth, NextApp]:
    nxt = NextApp()
    return BasicAuth(nxt, BasicAuthConfig("s", users=users, **options)), nxt


def test_no_or_wrong_credentials_get_go_http_auths_challenge_with_the_default_realm() -> None:
    app, nxt = auth("ann:" + sha("pw"))
    for headers in (
        [],
        [(b"authorization", basic("ann", "bad"))],
        [(b"authorization", b"Basic !")],
    ):
        start, body = call(app, headers)
        assert start["status"] == 401
        assert start["headers"] == [
            (b"content-type", b"text/plain"),
            (b"www-authenticate", b'Basic realm="traefik"'),
            (b"content-length", b"17"),
        ]
        assert body["body"] == b"401 Unauthorized\n"
    assert nxt.scopes == []


def test_the_realm_is_the_configured_one() -> None:
    app, _ = auth("ann:" + sha("pw"), realm="shop")
    assert (b"www-authenticate", b'Basic realm="shop"') in call(app, [])[0]["headers"]


def test_good_credentials_go_on_with_authorization_unless_remove_header() -> None:
    app, nxt = auth("ann:" + sha("pw"))
    assert call(app, [(b"authorization", basic("ann", "pw"))])[0]["status"] == 200
    assert (b"authorization", basic("ann", "pw")) in forward_of(nxt.scopes[0]).headers
    app, nxt = auth("ann:" + sha("pw"), remove_header=True)
    call(app, [(b"authorization", basic("ann", "pw"))])
    assert all(k != b"authorization" for k, _ in forward_of(nxt.scopes[0]).headers)


def test_header_field_carries_the_user_replacing_what_the_client_sent() -> None:
    app, nxt = auth("ann:" + sha("pw"), header_field="X-WebAuth-User")
    call(app, [(b"x-webauth-user", b"mallory"), (b"authorization", basic("ann", "pw"))])
    values = [v for k, v in forward_of(nxt.scopes[0]).headers if k == b"x-webauth-user"]
    assert values == [b"ann"]


def test_a_password_may_hold_a_colon_and_the_scheme_any_case() -> None:
    app, _ = auth("ann:" + sha("a:b"))
    value = b"bAsIc " + base64.b64encode(b"ann:a:b")
    assert call(app, [(b"authorization", value)])[0]["status"] == 200
    assert parse_basic_auth(b"Basic " + base64.b64encode(b"nocolon")) is None


def test_an_unknown_user_or_an_empty_hash_never_passes() -> None:
    app, _ = auth("ann:" + sha("pw"), "ben:")
    assert call(app, [(b"authorization", basic("zed", "pw"))])[0]["status"] == 401
    assert call(app, [(b"authorization", basic("ben", ""))])[0]["status"] == 401


def test_concurrent_bcrypt_checks_of_one_password_share_one_computation() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    app, _ = auth("ann:" + hashed)

    async def main() -> list[bool]:
        checks = [asyncio.ensure_future(app.check(b"ann", b"pw")) for _ in range(5)]
        await asyncio.sleep(0)
        assert len(app.checks) == 1  # one thread computing, five waiting on it
        return list(await asyncio.gather(*checks))

    assert asyncio.run(main()) == [True] * 5
    assert app.checks == {}


def test_a_non_http_scope_passes_untouched() -> None:
    app, nxt = auth("ann:" + sha("pw"))
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    app.app = inner
    asyncio.run(app({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan"] and nxt.scopes == []
