"""Cookie names, values, parsing and Set-Cookie bytes equal Traefik 3.7.15's
(traefik-observed.md §B; vectors from Traefik's cookie_test.go)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from traefikservice_asgi.config.models import CookieOptions
from traefikservice_asgi.loadbalancer.sticky import (
    cookie_value,
    fnv1_64_hex,
    request_cookie,
    set_cookie_header,
)
from traefikservice_asgi.loadbalancer.wrr import Child, WeightedRoundRobin


def test_cookie_value_is_the_first_16_hex_of_sha256_of_the_child_name() -> None:
    assert cookie_value("default-app-v1-80") == "9b9c0de427c34a54"
    assert cookie_value("default-app-v2-80") == "9ccaa1a0753f2143"
    assert cookie_value("http://127.0.0.1:28082") == "b52ca94a17e935e4"


def test_fnv1_64_matches_the_standard_vectors_and_traefik_2_11_values() -> None:
    assert fnv1_64_hex("a") == "af63bd4c8601b7be"
    assert fnv1_64_hex("foobar") == "340d8765a4dda9c2"
    assert fnv1_64_hex("default-app-v1-80") == "fd16eacf5992ad55"
    assert fnv1_64_hex("default-app-v2-80") == "181cdfcf692c9e04"


def test_set_cookie_has_only_path_by_default() -> None:
    assert (
        set_cookie_header(CookieOptions("cookie"), "9ccaa1a0753f2143")
        == b"cookie=9ccaa1a0753f2143; Path=/"
    )


def test_set_cookie_writes_every_attribute_in_gos_order() -> None:
    options = CookieOptions(
        "sc",
        secure=True,
        http_only=True,
        same_site="strict",
        max_age=60,
        path="/foo",
        domain="example.test",
    )
    assert set_cookie_header(options, "9ccaa1a0753f2143") == (
        b"sc=9ccaa1a0753f2143; Path=/foo; Domain=example.test; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
    )


@pytest.mark.parametrize(
    ("same_site", "max_age", "expected"),
    [
        ("LAX", 0, b"c=v; Path=/; SameSite=Lax"),
        ("none", -1, b"c=v; Path=/; Max-Age=0; SameSite=None"),
        ("bogus", 0, b"c=v; Path=/"),
    ],
)
def test_set_cookie_same_site_is_case_insensitive_and_negative_max_age_expires(
    same_site: str, max_age: int, expected: bytes
) -> None:
    assert (
        set_cookie_header(CookieOptions("c", same_site=same_site, max_age=max_age), "v") == expected
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (CookieOptions("c", path=""), b"c=v"),
        (CookieOptions("c", path="/a;b/\u00e9 c"), b"c=v; Path=/ab/ c"),
        (CookieOptions("c", domain="127.0.0.1"), b"c=v; Path=/; Domain=127.0.0.1"),
        (CookieOptions("c", domain="::1"), b"c=v; Path=/"),
        (CookieOptions("c", domain="127.0.0.01"), b"c=v; Path=/"),
        (CookieOptions("c", domain="x\u0663.test"), b"c=v; Path=/"),
        (CookieOptions("c", domain="exa_mple.test"), b"c=v; Path=/"),
        (CookieOptions("c", domain="example.test."), b"c=v; Path=/; Domain=example.test."),
    ],
)
def test_cookie_attributes_at_their_edges_are_written_as_go_writes_them(
    options: CookieOptions, expected: bytes
) -> None:
    # Each checked against Traefik 3.7.15: case sticky-cookie-attribute-edges.
    assert set_cookie_header(options, "v") == expected


def test_invalid_domain_is_dropped_as_go_drops_it() -> None:
    assert set_cookie_header(CookieOptions("c", domain="bad domain"), "v") == b"c=v; Path=/"
    assert (
        set_cookie_header(CookieOptions("c", domain=".example.test"), "v")
        == b"c=v; Path=/; Domain=example.test"
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"cookie", b"cookie=abc")], "abc"),
        ([(b"cookie", b"other=x; cookie=abc; cookie=def")], "abc"),
        ([(b"cookie", b'cookie="abc"')], "abc"),
        ([(b"cookie", b"cookie=a\\b; cookie=ok")], "ok"),  # malformed value skipped
        ([(b"cookie", b"x=1"), (b"Cookie", b"cookie=second-header")], "second-header"),
        ([(b"cookie", b"Cookie=abc")], None),  # names are case-sensitive
        ([(b"x-cookie", b"cookie=abc")], None),
    ],
)
def test_request_cookie_finds_the_first_well_formed_cookie_like_go(
    headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    assert request_cookie(headers, b"cookie") == expected


# ---------------------------------------------------------------- in a balancer


def _stub(name: str):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"set-cookie", b"backend=1")],
            }
        )
        await send({"type": "http.response.body", "body": name.encode()})

    return app


def _blog_sticky() -> WeightedRoundRobin:
    return WeightedRoundRobin(
        [
            Child("default-app-v1-80", _stub("app-v1"), 1),
            Child("default-app-v2-80", _stub("app-v2"), 2),
        ],
        sticky=CookieOptions("cookie"),
    )


def _call(app: WeightedRoundRobin, cookie: str | None) -> tuple[bytes, list[bytes]]:
    sent: list[Message] = []
    headers = [(b"host", b"x")] + ([(b"cookie", cookie.encode())] if cookie else [])

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "headers": headers}, receive, send))
    cookies = [v for k, v in sent[0]["headers"] if k == b"set-cookie"]
    return sent[1]["body"], cookies


def test_sticky_without_cookie_sets_the_picked_childs_cookie_before_the_backends() -> None:
    wrr = _blog_sticky()
    body, cookies = _call(wrr, None)
    assert body == b"app-v2"
    assert cookies == [b"cookie=9ccaa1a0753f2143; Path=/", b"backend=1"]


def test_sticky_current_value_pins_without_set_cookie() -> None:
    wrr = _blog_sticky()
    for _ in range(5):
        assert _call(wrr, "cookie=9b9c0de427c34a54") == (b"app-v1", [b"backend=1"])


@pytest.mark.parametrize(
    ("legacy", "app", "rewritten"),
    [
        ("default-app-v1-80", b"app-v1", b"cookie=9b9c0de427c34a54; Path=/"),
        ("default-app-v2-80", b"app-v2", b"cookie=9ccaa1a0753f2143; Path=/"),
        ("fd16eacf5992ad55", b"app-v1", b"cookie=9b9c0de427c34a54; Path=/"),
    ],
)
def test_sticky_legacy_value_pins_and_is_rewritten_every_time(
    legacy: str, app: bytes, rewritten: bytes
) -> None:
    wrr = _blog_sticky()
    for _ in range(5):
        assert _call(wrr, f"cookie={legacy}") == (app, [rewritten, b"backend=1"])


def test_sticky_unknown_value_falls_back_to_the_schedule_and_sets_a_cookie() -> None:
    wrr = _blog_sticky()
    got = [_call(wrr, "cookie=garbage-value") for _ in range(5)]
    assert [body for body, _ in got] == [b"app-v2", b"app-v1", b"app-v2", b"app-v2", b"app-v1"]
    assert all(cookies[0].startswith(b"cookie=") for _, cookies in got)


def test_sticky_hit_does_not_advance_the_schedule() -> None:
    wrr = _blog_sticky()
    _call(wrr, "cookie=9b9c0de427c34a54")
    _call(wrr, "cookie=9b9c0de427c34a54")
    assert wrr.next_child() == "default-app-v2-80"  # still the first pick


def test_sticky_cookie_for_an_unhealthy_child_falls_back_to_the_schedule() -> None:
    wrr = _blog_sticky()
    wrr.set_status("default-app-v1-80", False)
    assert _call(wrr, "cookie=9b9c0de427c34a54") == (
        b"app-v2",
        [b"cookie=9ccaa1a0753f2143; Path=/", b"backend=1"],
    )


def test_sticky_cannot_reach_a_zero_weight_child() -> None:
    wrr = WeightedRoundRobin(
        [Child("a", _stub("a"), 0), Child("b", _stub("b"), 1)], sticky=CookieOptions("c")
    )
    assert _call(wrr, f"c={cookie_value('a')}")[0] == b"b"
