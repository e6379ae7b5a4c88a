"""headers at runtime: what the backend receives (Forward) and what the client gets,
as Traefik's Header and unrolled/secure handlers do it."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import run, scope
from traefikservice_asgi.config.middlewares import Headers as HeadersConfig
from traefikservice_asgi.entrypoint.context import forward_of, set_forward
from traefikservice_asgi.entrypoint.forwarding import Forward, prepare
from traefikservice_asgi.middlewares.headers import (
    Headers,
    canonical_header_key,
    go_sprintf_nonce,
)


class Backend:
    """Answers 200 with ``headers``; keeps the Forward it was called with."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.headers = headers or []
        self.forwards: list[Forward] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.forwards.append(forward_of(scope))
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"ok"})


def request(
    method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None, **keys: Any
) -> Scope:
    s = scope(method, [(b"host", b"a.test"), *(headers or [])], **keys)
    set_forward(s, prepare(s))
    return s


def call(
    config: HeadersConfig, s: Scope, backend: Backend | None = None
) -> tuple[Backend, list[Message]]:
    backend = backend or Backend()
    return backend, run(Headers(backend, config), s)


def answer_headers(messages: list[Message]) -> dict[str, str]:
    start = messages[0]
    return {k.decode().lower(): v.decode() for k, v in start["headers"]}


def sent(forward: Forward) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in forward.headers:
        out.setdefault(k.decode(), []).append(v.decode())
    return out


# -- custom request headers -----------------------------------------------------------


def test_custom_request_headers_add_replace_remove_and_set_the_host() -> None:
    config = HeadersConfig(
        custom_request_headers=(
            ("X-New", "n"),
            ("X-Env", "prod"),
            ("X-Gone", ""),
            ("Host", "b.test"),
        )
    )
    backend, _ = call(config, request(headers=[(b"x-env", b"dev"), (b"x-gone", b"1")]))
    (forward,) = backend.forwards
    headers = sent(forward)
    assert headers["x-new"] == ["n"] and headers["x-env"] == ["prod"]
    assert "x-gone" not in headers
    assert forward.host == b"b.test"
    assert headers["x-forwarded-host"] == ["a.test"]  # set by the entry point, before


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("X-Forwarded-For", "", None),  # Go's nil header: the proxy adds none
        ("x-forwarded-for", "", ["127.0.0.1"]),  # deleted, then the proxy appends the peer
        ("X-Forwarded-For", "10.0.0.9", ["10.0.0.9, 127.0.0.1"]),
    ],
)
def test_x_forwarded_for_as_go_s_proxy_then_sends_it(
    name: str, value: str, expected: list[str] | None
) -> None:
    backend, _ = call(HeadersConfig(custom_request_headers=((name, value),)), request())
    assert sent(backend.forwards[0]).get("x-forwarded-for") == expected


def test_removing_accept_encoding_lets_go_add_gzip_and_setting_it_stops_that() -> None:
    removed = HeadersConfig(custom_request_headers=(("Accept-Encoding", ""),))
    backend, _ = call(removed, request(headers=[(b"accept-encoding", b"br")]))
    assert sent(backend.forwards[0])["accept-encoding"] == ["gzip"]
    assert backend.forwards[0].gzip_added
    chosen = HeadersConfig(custom_request_headers=(("Accept-Encoding", "identity"),))
    backend, _ = call(chosen, request())
    assert sent(backend.forwards[0])["accept-encoding"] == ["identity"]
    assert not backend.forwards[0].gzip_added


def test_hop_by_hop_and_framing_headers_set_here_never_reach_the_backend() -> None:
    config = HeadersConfig(
        custom_request_headers=(("Connection", "x"), ("Upgrade", "y"), ("Content-Length", "5"))
    )
    backend, _ = call(config, request())
    headers = sent(backend.forwards[0])
    assert not {"connection", "upgrade", "content-length"} & headers.keys()


# -- custom response headers and CORS -------------------------------------------------


def test_custom_response_headers_replace_and_remove_the_backend_s() -> None:
    config = HeadersConfig(
        custom_response_headers=(("x-added", "a"), ("X-Drop", ""), ("Server", "s"))
    )
    backend = Backend([(b"X-Drop", b"1"), (b"server", b"be"), (b"x-kept", b"k")])
    _, messages = call(config, request(), backend)
    headers = answer_headers(messages)
    assert headers == {"x-added": "a", "server": "s", "x-kept": "k"}
    assert (b"X-Added", b"a") in messages[0]["headers"]  # Go's canonical spelling


CORS = HeadersConfig(
    access_control_allow_methods=("GET", "PUT"),
    access_control_allow_headers=("X-A", "X-B"),
    access_control_allow_origin_list=("https://a.example",),
    access_control_allow_origin_list_regex=(r"^https://[a-z]+\.c\.example$",),
    access_control_expose_headers=("X-Total",),
    access_control_max_age=60,
    add_vary_header=True,
    custom_response_headers=(("X-Custom", "1"),),
)


def preflight(origin: bytes, method: bytes = b"PUT", extra: Any = ()) -> Scope:
    headers = [(b"origin", origin), (b"access-control-request-method", method), *extra]
    return request("OPTIONS", headers)


def test_a_preflight_is_answered_here_with_only_the_cors_headers() -> None:
    backend, messages = call(CORS, preflight(b"https://a.example"))
    assert backend.forwards == []
    assert messages[0]["status"] == 200
    assert messages[0]["headers"] == [
        (b"Access-Control-Allow-Headers", b"X-A,X-B"),
        (b"Access-Control-Allow-Methods", b"GET,PUT"),
        (b"Access-Control-Allow-Origin", b"https://a.example"),
        (b"Access-Control-Max-Age", b"60"),
        (b"Access-Control-Expose-Headers", b"X-Total"),
        (b"content-length", b"0"),
    ]
    assert messages[1]["body"] == b""


def test_an_origin_a_regexp_matches_is_allowed_and_others_get_no_allow_origin() -> None:
    _, messages = call(CORS, preflight(b"https://x.c.example"))
    assert answer_headers(messages)["access-control-allow-origin"] == "https://x.c.example"
    _, messages = call(CORS, preflight(b"https://evil.example"))
    assert "access-control-allow-origin" not in answer_headers(messages)


def test_an_options_request_without_origin_or_method_is_forwarded() -> None:
    backend, _ = call(CORS, request("OPTIONS", [(b"origin", b"https://a.example")]))
    assert len(backend.forwards) == 1


def test_wildcards_with_credentials_echo_the_request() -> None:
    config = HeadersConfig(
        access_control_allow_credentials=True,
        access_control_allow_methods=("*",),
        access_control_allow_headers=("*",),
        access_control_allow_origin_list=("*",),
        access_control_expose_headers=("*",),
    )
    extra = [(b"access-control-request-headers", b"X-A, X-B")]
    _, messages = call(config, preflight(b"https://o.example", b"DELETE", extra))
    assert answer_headers(messages) == {
        "access-control-allow-credentials": "true",
        "access-control-allow-headers": "X-A, X-B",
        "access-control-allow-methods": "DELETE",
        "access-control-allow-origin": "https://o.example",
        "content-length": "0",
    }


def test_a_simple_request_gets_allow_origin_expose_and_vary_merged() -> None:
    backend = Backend([(b"vary", b"Accept-Encoding")])
    _, messages = call(CORS, request(headers=[(b"origin", b"https://a.example")]), backend)
    headers = answer_headers(messages)
    assert headers["access-control-allow-origin"] == "https://a.example"
    assert headers["access-control-expose-headers"] == "X-Total"
    assert headers["vary"] == "Accept-Encoding,Origin"
    assert headers["x-custom"] == "1"
    _, messages = call(CORS, request())
    assert answer_headers(messages)["vary"] == "Origin"
    assert "access-control-allow-origin" not in answer_headers(messages)


def test_the_origin_is_read_after_the_custom_request_headers() -> None:
    config = HeadersConfig(
        access_control_allow_origin_list=("https://a.example",),
        custom_request_headers=(("Origin", "https://a.example"),),
    )
    _, messages = call(config, request(headers=[(b"origin", b"https://other.example")]))
    assert answer_headers(messages)["access-control-allow-origin"] == "https://a.example"


# -- secure ---------------------------------------------------------------------------


SECURE = HeadersConfig(
    frame_deny=True,
    content_type_nosniff=True,
    browser_xss_filter=True,
    sts_seconds=100,
    sts_include_subdomains=True,
    sts_preload=True,
    ssl_proxy_headers=(("X-Tls", "on"),),
    public_key="pin",
    referrer_policy="no-referrer",
    permissions_policy="camera=()",
    content_security_policy="default-src 'self'",
)


def test_secure_headers_over_plain_http_leave_out_sts_and_public_key_pins() -> None:
    _, messages = call(SECURE, request())
    headers = answer_headers(messages)
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-xss-protection"] == "1; mode=block"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["permissions-policy"] == "camera=()"
    assert headers["content-security-policy"] == "default-src 'self'"
    assert "strict-transport-security" not in headers and "public-key-pins" not in headers


@pytest.mark.parametrize(
    "keys",
    [
        {"scheme": "https"},
        {"headers": [(b"x-tls", b"on")]},
        {"raw_path": b"https://a.test/x", "path": "https://a.test/x"},
    ],
)
def test_sts_and_public_key_pins_over_tls_or_a_matching_ssl_proxy_header(keys: Any) -> None:
    _, messages = call(SECURE, request(**keys))
    headers = answer_headers(messages)
    assert headers["strict-transport-security"] == "max-age=100; includeSubDomains; preload"
    assert headers["public-key-pins"] == "pin"


def test_custom_values_override_frame_deny_and_the_xss_filter_and_force_sts() -> None:
    config = HeadersConfig(
        frame_deny=True,
        custom_frame_options_value="SAMEORIGIN",
        browser_xss_filter=True,
        custom_browser_xss_value="0",
        sts_seconds=5,
        force_sts_header=True,
    )
    _, messages = call(config, request())
    headers = answer_headers(messages)
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["x-xss-protection"] == "0"
    assert headers["strict-transport-security"] == "max-age=5"


def test_is_development_drops_sts_and_the_host_check() -> None:
    config = HeadersConfig(
        sts_seconds=5, force_sts_header=True, allowed_hosts=("x.test",), is_development=True
    )
    _, messages = call(config, request())
    assert messages[0]["status"] == 200
    assert "strict-transport-security" not in answer_headers(messages)


def test_a_host_not_allowed_is_500_bad_host_with_custom_but_no_secure_headers() -> None:
    config = HeadersConfig(
        allowed_hosts=("good.test",), frame_deny=True, custom_response_headers=(("X-C", "1"),)
    )
    backend, messages = call(config, request())
    assert backend.forwards == []
    assert messages[0]["status"] == 500
    assert messages[1]["body"] == b"Bad Host\n"
    headers = answer_headers(messages)
    assert headers["x-c"] == "1" and "x-frame-options" not in headers


def test_allowed_hosts_ignore_case_and_read_the_first_hosts_proxy_header_set() -> None:
    config = HeadersConfig(
        allowed_hosts=("GOOD.test",), hosts_proxy_headers=("X-Empty", "X-Host", "X-Other")
    )
    s = request(headers=[(b"x-empty", b""), (b"x-host", b"good.TEST"), (b"x-other", b"bad")])
    _, messages = call(config, s)
    assert messages[0]["status"] == 200


def test_secure_headers_are_set_before_the_custom_response_headers_remove_them() -> None:
    config = HeadersConfig(frame_deny=True, custom_response_headers=(("X-Frame-Options", ""),))
    _, messages = call(config, request())
    assert "x-frame-options" not in answer_headers(messages)


def test_a_nonce_is_fresh_for_each_request_and_formatted_as_go_s() -> None:
    config = HeadersConfig(content_security_policy="script-src $NONCE")
    nonces = set()
    for _ in range(3):
        _, messages = call(config, request())
        value = answer_headers(messages)["content-security-policy"]
        match = re.fullmatch(r"script-src 'nonce-([A-Za-z0-9+/]{22})'", value)
        assert match is not None
        assert len(base64.b64decode(match.group(1) + "==")) == 16
        nonces.add(match.group(1))
    assert len(nonces) == 3


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("a 'nonce-%[1]s' b", "a 'nonce-N' b"),
        ("100%% 'nonce-%[1]s'", "100% 'nonce-N'"),
        ("default-src 'self'", "default-src 'self'%!(EXTRA string=N)"),
        ("%[1]s %s", "N %!s(MISSING)"),
        ("%d", "%!d(string=N)"),
        ("a%", "a%!(NOVERB)%!(EXTRA string=N)"),
    ],
)
def test_policies_are_formatted_as_go_s_sprintf(template: str, expected: str) -> None:
    assert go_sprintf_nonce(template, "N") == expected


def test_a_websocket_accept_is_left_alone_and_only_the_request_changes() -> None:
    config = HeadersConfig(frame_deny=True, custom_request_headers=(("X-A", "1"),))
    seen: list[Message] = []

    async def app(s: Scope, receive: Receive, send: Send) -> None:
        seen.append({"headers": forward_of(s).headers})
        await send({"type": "websocket.accept", "headers": []})

    s = request(type="websocket", scheme="ws")
    messages = run(Headers(app, config), s)
    assert messages == [{"type": "websocket.accept", "headers": []}]
    assert (b"x-a", b"1") in seen[0]["headers"]


def test_canonical_header_keys_are_go_s() -> None:
    assert canonical_header_key("x-custom-HEADER") == "X-Custom-Header"
    assert canonical_header_key("content-security-policy") == "Content-Security-Policy"
