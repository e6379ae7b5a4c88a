"""Set-Cookie lines read and written back as Go's net/http does."""

from __future__ import annotations

import pytest

from traefikservice_asgi.middlewares._gocookie import parse_set_cookie


@pytest.mark.parametrize(
    ("line", "written"),
    [
        (b"a=1", b"a=1"),
        (b" a=1 ; path=/x ; HTTPONLY; secure", b"a=1; Path=/x; HttpOnly; Secure"),
        (b"a = 1", b'a=" 1"'),  # the value is not trimmed, and a space is quoted
        (
            b"pref=dark; max-age=60; SameSite=lax; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
            b"pref=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Max-Age=60; SameSite=Lax",
        ),
        (
            b"a=1; Expires=Wed, 21-Oct-2037 07:28:00 GMT",
            b"a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
        ),
        (b"a=1; Expires=soon", b"a=1"),
        (b"a=1; Max-Age=0", b"a=1; Max-Age=0"),
        (b"a=1; Max-Age=-5", b"a=1; Max-Age=0"),
        (b"a=1; Max-Age=05", b"a=1"),
        (b"a=1; Domain=.Shop.test; Partitioned", b"a=1; Domain=Shop.test; Partitioned"),
        (b"a=1; Domain=bad_domain", b"a=1"),
        (b'a="x y"', b'a="x y"'),
        (b"a=x y", b'a="x y"'),
        (b"a=1; SameSite=weird; Foo=bar", b"a=1"),
        (b"a=", b"a="),
    ],
)
def test_a_cookie_is_written_back_as_go_writes_it(line: bytes, written: bytes) -> None:
    cookie = parse_set_cookie(line)
    assert cookie is not None and cookie.string() == written


@pytest.mark.parametrize("line", [b"", b"novalue", b"=x", b"a b=1", b'a=x"y', b"a=x;y\\"])
def test_lines_go_cannot_parse_are_dropped(line: bytes) -> None:
    if line == b"a=x;y\\":
        cookie = parse_set_cookie(line)  # the bad byte is in an attribute: kept, unwritten
        assert cookie is not None and cookie.string() == b"a=x"
    else:
        assert parse_set_cookie(line) is None
