"""digestAuth: go-http-auth's challenge, a real exchange, nonce counts and staleness."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from tests.support.asgi import NextApp, run, scope
from traefikservice_asgi.config.middlewares import DigestAuth as DigestAuthConfig
from traefikservice_asgi.entrypoint.context import forward_of
from traefikservice_asgi.middlewares.digestauth import (
    CLIENT_CACHE_SIZE,
    CLIENT_CACHE_TOLERANCE,
    DigestAuth,
    parse_pairs,
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


HA1 = md5("ann:shop:pw")


def call(app: Any, path: str = "/a/b?x=1", authorization: str | None = None) -> list[Any]:
    headers = [(b"host", b"a.test")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    raw, _, query = path.partition("?")
    return run(
        app, scope(headers=headers, path=raw, raw_path=raw.encode(), query_string=query.encode())
    )


def challenge(sent: list[Any]) -> dict[str, str]:
    value = dict(sent[0]["headers"])[b"www-authenticate"].decode()
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def answer(c: dict[str, str], uri: str, nc: str = "00000001", user: str = "ann") -> str:
    response = md5(f"{HA1}:{c['nonce']}:{nc}:cn:auth:{md5('GET:' + uri)}")
    return (
        f'Digest username="{user}", realm="shop", nonce="{c["nonce"]}", uri="{uri}", '
        f'qop=auth, nc={nc}, cnonce="cn", response="{response}", opaque="{c["opaque"]}"'
    )


@pytest.fixture
def app() -> DigestAuth:
    return DigestAuth(
        NextApp(),
        DigestAuthConfig("s", users=(f"ann:shop:{HA1}",), realm="shop", header_field="X-User"),
    )


def test_the_challenge_is_go_http_auths_with_a_fresh_nonce_each_time(app: DigestAuth) -> None:
    first, second = call(app), call(app)
    assert first[0]["status"] == 401 and first[1]["body"] == b"401 Unauthorized\n"
    value = dict(first[0]["headers"])[b"www-authenticate"].decode()
    assert re.fullmatch(
        r'Digest realm="shop", nonce="[A-Za-z0-9+/]{16}", opaque="[A-Za-z0-9+/]{16}", '
        r'algorithm="MD5", qop="auth"',
        value,
    )
    assert dict(first[0]["headers"])[b"content-type"] == b"text/plain"
    assert challenge(first)["nonce"] != challenge(second)["nonce"]
    assert challenge(first)["opaque"] == challenge(second)["opaque"]


def test_a_right_answer_passes_with_the_user_in_header_field(app: DigestAuth) -> None:
    c = challenge(call(app))
    sent = call(app, authorization=answer(c, "/a/b?x=1"))
    assert sent[0]["status"] == 200
    headers = forward_of(app.app.scopes[0]).headers  # type: ignore[attr-defined]
    assert (b"x-user", b"ann") in headers
    assert sent[0]["headers"] == []  # no Authentication-Info: Traefik sets none


def test_the_uri_may_be_a_prefix_of_the_path_but_nothing_else(app: DigestAuth) -> None:
    c = challenge(call(app))
    assert call(app, authorization=answer(c, "/a"))[0]["status"] == 200
    assert call(app, authorization=answer(c, "/zzz", nc="00000002"))[0]["status"] == 401


def test_a_replayed_count_is_refused_and_a_lower_one_is_stale(app: DigestAuth) -> None:
    c = challenge(call(app))
    assert call(app, authorization=answer(c, "/a/b?x=1", nc="00000005"))[0]["status"] == 200
    replay = call(app, authorization=answer(c, "/a/b?x=1", nc="00000005"))
    assert replay[0]["status"] == 401 and "stale" not in challenge(replay)
    stale = call(app, authorization=answer(c, "/a/b?x=1", nc="00000003"))
    assert stale[0]["status"] == 401 and challenge(stale)["stale"] == "true"


def test_wrong_password_unknown_nonce_or_other_opaque_are_refused(app: DigestAuth) -> None:
    c = challenge(call(app))
    wrong_user = answer(c, "/a/b?x=1", user="bob")
    assert call(app, authorization=wrong_user)[0]["status"] == 401
    assert call(app, authorization=answer({**c, "nonce": "x"}, "/a/b?x=1"))[0]["status"] == 401
    assert call(app, authorization=answer({**c, "opaque": "x"}, "/a/b?x=1"))[0]["status"] == 401
    bad_nc = answer(c, "/a/b?x=1", nc="0x1")
    assert call(app, authorization=bad_nc)[0]["status"] == 401


def test_a_lone_quote_panics_in_go_and_is_answered_500(app: DigestAuth) -> None:
    sent = call(app, authorization='Digest username="')
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"Internal Server Error\n"
    assert parse_pairs('a="x, y", b, c=') == {"a": "x, y", "b": "", "c": ""}
    assert parse_pairs(r'a="q\"q"') == {"a": 'q"q'}


def test_nonces_past_the_cache_size_drop_the_least_recently_seen(app: DigestAuth) -> None:
    for _ in range(CLIENT_CACHE_SIZE + CLIENT_CACHE_TOLERANCE + 1):
        app.challenge(False)
    oldest = next(iter(app.clients))
    app.challenge(False)
    assert len(app.clients) == CLIENT_CACHE_SIZE + 1 - CLIENT_CACHE_TOLERANCE + 1
    assert oldest not in app.clients
