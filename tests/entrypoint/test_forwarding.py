"""The upstream view of a request: Traefik's forwarded headers, hop-by-hop removal, framing."""

from __future__ import annotations

import pytest
from starlette.types import Scope

from traefikservice_asgi.entrypoint.forwarding import InvalidRequest, prepare


def scope(
    headers: list[tuple[bytes, bytes]],
    *,
    client: str = "127.0.0.1",
    scheme: str = "http",
    kind: str = "http",
    method: str = "GET",
) -> Scope:
    return {
        "type": kind,
        "method": method,
        "scheme": scheme,
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "client": (client, 40000),
    }


def as_dict(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    return dict(headers)


def test_untrusted_forwarded_headers_are_replaced_including_underscore_spellings() -> None:
    f = prepare(
        scope(
            [
                (b"host", b"a.test"),
                (b"x-forwarded-for", b"1.2.3.4"),
                (b"x-real-ip", b"1.2.3.4"),
                (b"x_forwarded_proto", b"https"),
                (b"x-forwarded-prefix", b"/evil"),
            ]
        ),
        hostname=b"gw",
    )
    assert as_dict(f.headers) == {
        b"x-real-ip": b"127.0.0.1",
        b"x-forwarded-proto": b"http",
        b"x-forwarded-port": b"80",
        b"x-forwarded-host": b"a.test",
        b"x-forwarded-server": b"gw",
        b"x-forwarded-for": b"127.0.0.1",
        b"accept-encoding": b"gzip",
    }


def test_trusted_peer_keeps_its_headers_and_gets_its_address_appended() -> None:
    f = prepare(
        scope(
            [
                (b"host", b"a.test"),
                (b"x-forwarded-for", b"1.2.3.4"),
                (b"x-forwarded-for", b"5.6.7.8"),
                (b"x-forwarded-proto", b"https"),
            ],
            client="10.0.0.1",
        ),
        trusted=lambda ip: ip.startswith("10."),
        hostname=b"gw",
    )
    h = as_dict(f.headers)
    assert h[b"x-forwarded-for"] == b"1.2.3.4, 5.6.7.8, 10.0.0.1"
    assert h[b"x-forwarded-proto"] == b"https"
    assert h[b"x-forwarded-port"] == b"443"  # no port in Host, proto https


def test_forwarded_port_comes_from_the_host_header_including_ipv6() -> None:
    assert (
        as_dict(prepare(scope([(b"host", b"a.test:8080")])).headers)[b"x-forwarded-port"] == b"8080"
    )
    assert (
        as_dict(prepare(scope([(b"host", b"[::1]:9000")])).headers)[b"x-forwarded-port"] == b"9000"
    )
    assert as_dict(prepare(scope([(b"host", b"[::1]")])).headers)[b"x-forwarded-port"] == b"80"
    assert (
        as_dict(prepare(scope([(b"host", b"a")], scheme="https")).headers)[b"x-forwarded-port"]
        == b"443"
    )


def test_websocket_requests_are_forwarded_as_ws_proto() -> None:
    assert (
        as_dict(prepare(scope([(b"host", b"a")], kind="websocket")).headers)[b"x-forwarded-proto"]
        == b"ws"
    )
    assert (
        as_dict(prepare(scope([(b"host", b"a")], kind="websocket", scheme="wss")).headers)[
            b"x-forwarded-proto"
        ]
        == b"wss"
    )


def test_connection_listed_headers_go_but_managed_x_headers_stay() -> None:
    f = prepare(
        scope(
            [
                (b"host", b"a"),
                (b"connection", b"close, X-Secret, X-Forwarded-Host"),
                (b"x-secret", b"1"),
                (b"te", b"trailers, deflate"),
                (b"keep-alive", b"5"),
                (b"upgrade", b"h2c"),
                (b"proxy-authorization", b"x"),
            ]
        )
    )
    names = [k for k, _ in f.headers]
    assert b"x-secret" not in names and b"connection" not in names and b"keep-alive" not in names
    assert b"upgrade" not in names and b"proxy-authorization" not in names
    assert (b"te", b"trailers") in f.headers
    assert b"x-forwarded-host" in names


def test_framing_is_rebuilt_never_both_content_length_and_chunked() -> None:
    both = prepare(
        scope(
            [(b"host", b"a"), (b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
            method="POST",
        )
    )
    assert both.framing_headers() == [(b"transfer-encoding", b"chunked")]
    assert prepare(scope([(b"content-length", b"0")], method="GET")).framing_headers() == []
    assert prepare(scope([], method="PATCH")).framing_headers() == [(b"content-length", b"0")]
    assert prepare(scope([(b"content-length", b"12")], method="PUT")).framing_headers() == [
        (b"content-length", b"12")
    ]


def test_gzip_is_not_added_for_head_range_or_an_explicit_accept_encoding() -> None:
    assert not prepare(scope([], method="HEAD")).gzip_added
    assert not prepare(scope([(b"range", b"bytes=0-1")])).gzip_added
    f = prepare(scope([(b"accept-encoding", b"br")]))
    assert not f.gzip_added and (b"accept-encoding", b"br") in f.headers


def test_gzip_is_added_after_an_empty_first_accept_encoding_as_gos_header_get_reads_it() -> None:
    f = prepare(scope([(b"accept-encoding", b""), (b"accept-encoding", b"br")]))
    assert f.gzip_added and f.headers[-1] == (b"accept-encoding", b"gzip")


def test_target_is_normalized_as_traefik_and_semicolons_become_ampersands() -> None:
    s = scope([])
    s["raw_path"] = b"/a%2fb/%7ex//y"  # %2F stays encoded (upper-cased), %7E is decoded
    s["query_string"] = b"x=1;y=%2f"  # the query is left as sent, but for ; -> &
    assert prepare(s).target == b"/a%2Fb/~x/y?x=1&y=%2f"
    s["raw_path"] = b"/a%2Fb/../c"  # %2F is not a separator: the dot segment removes a/b
    assert prepare(s).target == b"/c?x=1&y=%2f"


def test_unparsable_path_is_an_invalid_request() -> None:
    s = scope([])
    s["raw_path"] = b"/x%zz"
    with pytest.raises(InvalidRequest):
        prepare(s)


def test_a_header_name_seen_before_is_forwarded_as_the_first_time() -> None:
    # After a first request, its ordinary names are copied without their tests: the
    # same result, names still lowercased, and a name listed in Connection still goes.
    headers = [
        (b"host", b"a.test:8080"),
        (b"x-app-seen", b"1"),
        (b"X-App-Mixed", b"2"),
        (b"x-app-listed", b"3"),
        (b"accept", b"*/*"),
    ]
    first, again = (prepare(scope(headers), hostname=b"gw") for _ in range(2))
    assert again.headers == first.headers
    assert again.headers == [
        (b"x-app-seen", b"1"),
        (b"x-app-mixed", b"2"),
        (b"x-app-listed", b"3"),
        (b"accept", b"*/*"),
        (b"x-real-ip", b"127.0.0.1"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-port", b"8080"),
        (b"x-forwarded-host", b"a.test:8080"),
        (b"x-forwarded-server", b"gw"),
        (b"x-forwarded-for", b"127.0.0.1"),
        (b"accept-encoding", b"gzip"),
    ]
    dropped = prepare(scope([*headers, (b"connection", b"x-app-listed")]), hostname=b"gw")
    assert b"x-app-listed" not in dict(dropped.headers)
    with pytest.raises(InvalidRequest):
        prepare(scope([(b"host", b"a.test"), (b"x-app-seen", b"1\r\nx-evil: 1")]))
