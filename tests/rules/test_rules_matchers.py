"""Matcher semantics, mostly as table tests ported from Traefik's own tests.

The ``*_MATCH`` tables come from traefik/traefik @ fd5a576df2 (v3.7):
``pkg/muxer/http/matcher_test.go``, ``matcher_v2_test.go`` and ``mux_test.go``
(``TestMuxer``). Each row is (rule, {request: expected}); the request is the URL (or the
remote address) Traefik's test sends, ``OK`` means the route matched. The ``*_REJECTED``
tables list rules Traefik refuses to add.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from traefikservice_asgi.rules import RequestView, RuleError, compile_rule


def scope_for_url(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    client: str = "192.0.2.1",
    method: str = "GET",
) -> dict[str, Any]:
    """The ASGI scope a server would build for Go's ``httptest.NewRequest(method, url)``."""
    parts = urlsplit(url)
    raw_headers = [(b"host", parts.netloc.encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {
        "type": "http",
        "method": method,
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": raw_headers,
        "client": (client, 50000),
        "server": ("127.0.0.1", 80),
    }


def matches(rule: str, scope: dict[str, Any], syntax: str = "v3") -> bool:
    return compile_rule(rule, syntax=syntax).matches(RequestView(scope))  # type: ignore[arg-type]


def request_scope(key: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Traefik's tables key requests by URL, or by remote address for ClientIP."""
    if "://" in key:
        return scope_for_url(key, headers=headers)
    return scope_for_url("https://example.com", headers=headers, client=key)


# fmt: off
V3_MATCH = [
    ('Host(`example.com`)', {'https://example.com': 'OK', 'https://example.com:8080': 'OK', 'https://example.com/path': 'OK', 'https://EXAMPLE.COM/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('Host(`example.com.`)', {'https://example.com': 'OK', 'https://example.com/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound', 'https://example.com.': 'OK', 'https://example.com./path': 'OK', 'https://example.org.': 'NotFound', 'https://example.org./path': 'NotFound'}),
    ('Host(`example.com`)', {'https://example.com.': 'OK', 'https://example.com./path': 'OK', 'https://example.org.': 'NotFound', 'https://example.org./path': 'NotFound'}),
    ('Host(`EXAMPLE.COM`)', {'https://example.com': 'OK', 'https://example.com/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('Host(`*.example.com`)', {'https://test.example.com': 'OK', 'https://other.example.com': 'OK', 'https://example.com': 'NotFound', 'https://test.otherexample.com': 'NotFound'}),
    ('Host(`*`)', {'https://test.example.com': 'OK', 'https://other.example.com': 'OK', 'https://example.com': 'OK', 'https://test.otherexample.com': 'OK', 'https://localhost': 'OK'}),
    ('HostRegexp(`^[a-zA-Z-]+\\.com$`)', {'https://example.com': 'OK', 'https://example.com:8080': 'OK', 'https://example.com/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('HostRegexp(`^[A-Z]+\\.com$`)', {'https://example.com': 'NotFound', 'https://EXAMPLE.com': 'NotFound', 'https://example.com/path': 'NotFound', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('HostRegexp(`{domain:[a-zA-Z-]+\\.com}`)', {'https://example.com': 'NotFound', 'https://example.com/path': 'NotFound', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('Path(`/css`)', {'https://example.com': 'NotFound', 'https://example.com/html': 'NotFound', 'https://example.org/css': 'OK', 'https://example.com/css': 'OK', 'https://example.com/css/': 'NotFound', 'https://example.com/css/main.css': 'NotFound'}),
    ('PathRegexp(`^/(css|js)`)', {'https://example.com': 'NotFound', 'https://example.com/html': 'NotFound', 'https://example.org/css': 'OK', 'https://example.com/CSS': 'NotFound', 'https://example.com/css': 'OK', 'https://example.com/css/': 'OK', 'https://example.com/css/main.css': 'OK', 'https://example.com/js': 'OK', 'https://example.com/js/': 'OK', 'https://example.com/js/main.js': 'OK'}),
    ('Query(`q`, `traefik`)', {'https://example.com': 'NotFound', 'https://example.com?q=traefik': 'OK', 'https://example.com?rel=ddg&q=traefik': 'OK', 'https://example.com?q=traefik&q=proxy': 'OK', 'https://example.com?q=awesome&q=traefik': 'OK', 'https://example.com?q=nginx': 'NotFound', 'https://example.com?rel=ddg': 'NotFound', 'https://example.com?q=TRAEFIK': 'NotFound', 'https://example.com?Q=traefik': 'NotFound', 'https://example.com?rel=traefik': 'NotFound'}),
    ('Query(`mobile`)', {'https://example.com': 'NotFound', 'https://example.com?mobile': 'OK', 'https://example.com?mobile=true': 'NotFound'}),
    ('QueryRegexp(`q`, `^(traefik|nginx)$`)', {'https://example.com': 'NotFound', 'https://example.com?q=traefik': 'OK', 'https://example.com?rel=ddg&q=traefik': 'OK', 'https://example.com?q=traefik&q=proxy': 'OK', 'https://example.com?q=awesome&q=traefik': 'OK', 'https://example.com?q=TRAEFIK': 'NotFound', 'https://example.com?Q=traefik': 'NotFound', 'https://example.com?rel=traefik': 'NotFound', 'https://example.com?q=nginx': 'OK', 'https://example.com?rel=ddg&q=nginx': 'OK', 'https://example.com?q=nginx&q=proxy': 'OK', 'https://example.com?q=awesome&q=nginx': 'OK', 'https://example.com?q=NGINX': 'NotFound', 'https://example.com?Q=nginx': 'NotFound', 'https://example.com?rel=nginx': 'NotFound', 'https://example.com?q=haproxy': 'NotFound', 'https://example.com?rel=ddg': 'NotFound'}),
    ('QueryRegexp(`q`, `^.*$`)', {'https://example.com': 'NotFound', 'https://example.com?q=traefik': 'OK', 'https://example.com?rel=ddg&q=traefik': 'OK', 'https://example.com?q=traefik&q=proxy': 'OK', 'https://example.com?q=awesome&q=traefik': 'OK', 'https://example.com?q=TRAEFIK': 'OK', 'https://example.com?Q=traefik': 'NotFound', 'https://example.com?rel=traefik': 'NotFound', 'https://example.com?q=nginx': 'OK', 'https://example.com?rel=ddg&q=nginx': 'OK', 'https://example.com?q=nginx&q=proxy': 'OK', 'https://example.com?q=awesome&q=nginx': 'OK', 'https://example.com?q=NGINX': 'OK', 'https://example.com?Q=nginx': 'NotFound', 'https://example.com?rel=nginx': 'NotFound', 'https://example.com?q=haproxy': 'OK', 'https://example.com?rel=ddg': 'NotFound'}),
    ('QueryRegexp(`q`, `{value:(traefik|nginx)}`)', {'https://example.com?q=traefik': 'NotFound', 'https://example.com?q={value:traefik}': 'OK'}),
    ('ClientIP(`127.0.0.1`)', {'127.0.0.1': 'OK', '192.168.1.1': 'NotFound'}),
    ('ClientIP(`127.0.0.1`)', {'1': 'NotFound'}),
    ('ClientIP(`192.168.1.0/24`)', {'192.168.1.1': 'OK', '192.168.1.100': 'OK', '192.168.2.1': 'NotFound'}),
]

V3_REJECTED = [
    'ClientIP()',
    'ClientIP(`127.0.0.1`, `192.168.1.0/24`)',
    'ClientIP(`1`)',
    'ClientIP(``)',
    'Host()',
    'Host(``)',
    'Host(`example.com`, `example.org`)',
    'Host(`🦭.com`)',
    'HostRegexp()',
    'HostRegexp(`(example.com`)',
    'HostRegexp(``)',
    'HostRegexp(`example.com`, `example.org`)',
    'HostRegexp(`🦭.com`)',
    'Path()',
    'Path(`/css`, `/js`)',
    'Path(``)',
    'Path(`css`)',
    'PathPrefix()',
    'PathPrefix(`/css`, `/js`)',
    'PathPrefix(``)',
    'PathPrefix(`css`)',
    'PathRegexp()',
    'PathRegexp(`/(css`)',
    'PathRegexp(`/css`, `/js`)',
    'PathRegexp(``)',
    'Query()',
    'Query(``)',
    'Query(``, `traefik`)',
    'Query(`q`, ``)',
    'Query(`q`, `traefik`, `proxy`)',
    'QueryRegexp()',
    'QueryRegexp(``)',
    'QueryRegexp(`q`, `(traefik`)',
    'QueryRegexp(`q`, `traefik`, `proxy`)',
    'rulewithnotmatcher',
    'Host(example.com)',
]

V2_MATCH = [
    ('Host(`example.com`, `example.org`)', {'https://example.com': 'OK', 'https://example.com:8080': 'OK', 'https://example.com/path': 'OK', 'https://EXAMPLE.COM/path': 'OK', 'https://example.org': 'OK', 'https://example.org/path': 'OK'}),
    ('Host(`example.com`)', {'https://example.com': 'OK', 'https://example.com:8080': 'OK', 'https://example.com/path': 'OK', 'https://EXAMPLE.COM/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('Host(`example.com.`)', {'https://example.com': 'OK', 'https://example.com/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound', 'https://example.com.': 'OK', 'https://example.com./path': 'OK', 'https://example.org.': 'NotFound', 'https://example.org./path': 'NotFound'}),
    ('Host(`example.com`)', {'https://example.com.': 'OK', 'https://example.com./path': 'OK', 'https://example.org.': 'NotFound', 'https://example.org./path': 'NotFound'}),
    ('Host(`EXAMPLE.COM`)', {'https://example.com': 'OK', 'https://example.com/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('HostRegexp(`(example.com`)', {'https://example.com': 'NotFound', 'https://example.com:8080': 'NotFound', 'https://example.com/path': 'NotFound', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('HostRegexp(`example.com`, `example.org`)', {'https://example.com': 'OK', 'https://example.com:8080': 'OK', 'https://example.com/path': 'OK', 'https://example.org': 'OK', 'https://example.org/path': 'OK'}),
    ('HostRegexp(`^[A-Z]+\\.com$`)', {'https://example.com': 'NotFound', 'https://EXAMPLE.com': 'NotFound', 'https://example.com/path': 'NotFound', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('HostRegexp(`{domain:[a-zA-Z-]+\\.com}`)', {'https://example.com': 'OK', 'https://example.com/path': 'OK', 'https://example.org': 'NotFound', 'https://example.org/path': 'NotFound'}),
    ('Path(`/css`, `/js`)', {'https://example.com': 'NotFound', 'https://example.com/html': 'NotFound', 'https://example.org/css': 'OK', 'https://example.com/css': 'OK', 'https://example.com/css/': 'NotFound', 'https://example.com/css/main.css': 'NotFound', 'https://example.com/js': 'OK', 'https://example.com/js/main.js': 'NotFound'}),
    ('Path(`/css`)', {'https://example.com': 'NotFound', 'https://example.com/html': 'NotFound', 'https://example.org/css': 'OK', 'https://example.com/css': 'OK', 'https://example.com/css/': 'NotFound', 'https://example.com/css/main.css': 'NotFound'}),
    ('Path(`/css{path:(/.*)?}`)', {'https://example.com': 'NotFound', 'https://example.com/css/main.css': 'OK', 'https://example.org/css/main.css': 'OK', 'https://example.com/css/components/component.css': 'OK', 'https://example.com/css.css': 'NotFound', 'https://example.com/js/main.js': 'NotFound'}),
    ('PathPrefix(`/css`, `/js`)', {'https://example.com': 'NotFound', 'https://example.com/html': 'NotFound', 'https://example.org/css': 'OK', 'https://example.com/css': 'OK', 'https://example.com/css/': 'OK', 'https://example.com/css/main.css': 'OK', 'https://example.com/js/': 'OK', 'https://example.com/js/main.js': 'OK'}),
    ('PathPrefix(`/css-{name:[0-9]?}`)', {'https://example.com': 'NotFound', 'https://example.com/css-1/main.css': 'OK', 'https://example.org/css-222/main.css': 'OK', 'https://example.com/css-333333/components/component.css': 'OK', 'https://example.com/css.css': 'NotFound', 'https://example.com/js/main.js': 'NotFound'}),
    ('ClientIP(`127.0.0.1`, `192.168.1.0/24`)', {'127.0.0.1': 'OK', '192.168.1.1': 'OK'}),
    ('ClientIP(`127.0.0.1`)', {'127.0.0.1': 'OK', '192.168.1.1': 'NotFound'}),
    ('ClientIP(`127.0.0.1`)', {'1': 'NotFound'}),
    ('ClientIP(`192.168.1.0/24`)', {'192.168.1.1': 'OK', '192.168.1.100': 'OK', '192.168.2.1': 'NotFound'}),
]

V2_REJECTED = [
    'ClientIP()',
    'ClientIP(`1`)',
    'ClientIP(``)',
    'Host()',
    'Host(``)',
    'Host(`🦭.com`)',
    'HostRegexp()',
    'HostRegexp(``)',
    'HostRegexp(`🦭.com`)',
    'Path()',
    'Path(``)',
    'Path(`css`)',
    'PathPrefix()',
    'PathPrefix(``)',
    'PathPrefix(`css`)',
]

MUXER_MATCH: list[tuple[str, dict[str, str], str | None, dict[str, str]]] = [
    ('Host(`127.0.0.1`)', {}, None, {'http://127.0.0.1/foo': 'OK'}),
    ('Host(`10::10`)', {}, None, {'http://[10::10]/foo': 'OK'}),
    ('Host(`localhost`) && PathPrefix(`/css`)', {}, None, {'https://localhost/css': 'OK', 'https://localhost/js': 'NotFound'}),
    ('Host(`example.com`) || Host(`example.org`)', {}, None, {'https://example.com/css': 'OK', 'https://example.org/js': 'OK', 'https://example.eu/html': 'NotFound'}),
    ('Host("example.com") || (Host("example.org") && Path("/css"))', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'OK', 'https://example.org/css': 'OK', 'https://example.org/js': 'NotFound', 'https://example.eu/css': 'NotFound'}),
    ('Host("example.com") || Host("example.org") && Path("/css")', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'OK', 'https://example.org/css': 'OK', 'https://example.org/js': 'NotFound', 'https://example.eu/css': 'NotFound'}),
    ('(Host("example.com") || Host("example.org")) && Path("/css")', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'NotFound', 'https://example.org/css': 'OK', 'https://example.org/js': 'NotFound', 'https://example.eu/css': 'NotFound'}),
    ('(Host("example.com") && Path("/js")) || ((Host("example.org")) && Path("/css"))', {}, None, {'https://example.com/css': 'NotFound', 'https://example.com/js': 'OK', 'https://example.org/css': 'OK', 'https://example.org/js': 'NotFound', 'https://example.eu/css': 'NotFound'}),
    ('PATHPREFIX("/css")', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'NotFound'}),
    ('pathprefix("/css")', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'NotFound'}),
    ('PathPrefix("/css")', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'NotFound'}),
    ('Pathprefix("/css")', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'NotFound'}),
    ('!Host("example.com")', {}, None, {'https://example.org': 'OK', 'https://example.com': 'NotFound'}),
    ('!(Host("example.com") || Host("example.org"))', {}, None, {'https://example.eu/js': 'OK', 'https://example.com/css': 'NotFound', 'https://example.org/js': 'NotFound'}),
    ('!(Host("example.com") && Path("/css"))', {}, None, {'https://example.com/js': 'OK', 'https://example.eu/css': 'OK', 'https://example.com/css': 'NotFound'}),
    ('!(Host("example.com") && !Path("/css"))', {}, None, {'https://example.com/css': 'OK', 'https://example.org/css': 'OK', 'https://example.com/js': 'NotFound'}),
    ('!Host("example.com") || !Path("/css")', {}, None, {'https://example.com/js': 'OK', 'https://example.org/css': 'OK', 'https://example.com/css': 'NotFound'}),
    ('!(!(Host("example.com") && Pathprefix("/css")))', {}, None, {'https://example.com/css': 'OK', 'https://example.com/js': 'NotFound', 'https://example.org/css': 'NotFound'}),
    ('!Host("example.com") && Pathprefix("/css")', {}, None, {'https://example.org/css': 'OK', 'https://example.org/js': 'NotFound', 'https://example.com/css': 'NotFound', 'https://example.com/js': 'NotFound'}),
    ('!(Host("example.com") && Path("/js"))', {}, None, {'https://example.com/js': 'NotFound', 'https://example.com/html': 'OK', 'https://example.org/js': 'OK', 'https://example.com/css': 'OK', 'https://example.org/css': 'OK', 'https://example.org/html': 'OK', 'https://example.eu/images': 'OK'}),
]
# fmt: on


def _expand(table: list[tuple[str, dict[str, str]]]) -> list[tuple[str, str, bool]]:
    return [(rule, key, want == "OK") for rule, expected in table for key, want in expected.items()]


@pytest.mark.parametrize(("rule", "request_key", "expected"), _expand(V3_MATCH))
def test_v3_matchers_agree_with_traefik_tables(rule: str, request_key: str, expected: bool) -> None:
    assert matches(rule, request_scope(request_key)) is expected


@pytest.mark.parametrize(("rule", "request_key", "expected"), _expand(V2_MATCH))
def test_v2_matchers_agree_with_traefik_tables(rule: str, request_key: str, expected: bool) -> None:
    assert matches(rule, request_scope(request_key), syntax="v2") is expected


@pytest.mark.parametrize(
    ("rule", "headers", "remote", "request_key", "expected"),
    [
        (rule, headers, remote, key, want == "OK")
        for rule, headers, remote, expected in MUXER_MATCH
        for key, want in expected.items()
    ],
)
def test_combined_rules_agree_with_traefik_muxer_table(
    rule: str, headers: dict[str, str], remote: str | None, request_key: str, expected: bool
) -> None:
    scope = scope_for_url(request_key, headers=headers, client=remote or "192.0.2.1")
    assert matches(rule, scope) is expected


@pytest.mark.parametrize("rule", V3_REJECTED)
def test_v3_rejects_what_traefik_rejects(rule: str) -> None:
    with pytest.raises(RuleError):
        compile_rule(rule)


@pytest.mark.parametrize("rule", V2_REJECTED)
def test_v2_rejects_what_traefik_rejects(rule: str) -> None:
    with pytest.raises(RuleError):
        compile_rule(rule, syntax="v2")


# --------------------------------------------------------------------------- hand-written


def test_host_matching_ignores_case_and_port() -> None:
    assert matches("Host(`example.com`)", scope_for_url("http://EXAMPLE.com:8443/"))


@pytest.mark.parametrize(
    ("host_header", "expected"),
    [("[::1]:8080", True), ("[::1]", True), ("::1", True), ("[::2]:80", False)],
)
def test_host_matching_strips_ipv6_brackets_and_port(host_header: str, expected: bool) -> None:
    scope = scope_for_url("http://x/")
    scope["headers"] = [(b"host", host_header.encode())]
    assert matches("Host(`::1`)", scope) is expected


def test_host_never_matches_without_a_host_header_but_star_does() -> None:
    scope = scope_for_url("http://example.com/")
    scope["headers"] = []
    assert not matches("Host(`127.0.0.1`)", scope)  # no fallback to scope["server"]
    assert matches("Host(`*`)", scope)


def test_host_wildcard_replaces_only_the_first_label() -> None:
    rule = "Host(`*.example.com`)"
    assert matches(rule, scope_for_url("http://a.example.com/"))
    assert not matches(rule, scope_for_url("http://a.b.example.com/"))
    assert not matches(rule, scope_for_url("http://example.com/"))


def test_host_regexp_is_an_unanchored_search_on_the_canonical_host() -> None:
    assert matches("HostRegexp(`example`)", scope_for_url("http://www.EXAMPLE.com:80/"))
    assert not matches("HostRegexp(`^example`)", scope_for_url("http://www.example.com/"))


def test_host_regexp_matching_the_empty_string_matches_every_request() -> None:
    # Traefik also tries the CNAME-flattened host, "" when flattening is off.
    assert matches("HostRegexp(`^$`)", scope_for_url("http://example.com/"))


def test_v2_host_regexp_template_variables_default_to_one_label() -> None:
    rule = "HostRegexp(`{sub}.example.com`)"
    assert matches(rule, scope_for_url("http://api.Example.com:8080/"), syntax="v2")
    assert not matches(rule, scope_for_url("http://a.b.example.com/"), syntax="v2")


@pytest.mark.parametrize(
    ("raw_path", "routing_path"),
    [
        (b"/foo%20bar", "/foo bar"),
        (b"/foo%2Fbar", "/foo%2Fbar"),
        (b"/foo%2fbar", "/foo%2Fbar"),  # normalised to upper case, stays reserved
        (b"/foo%20bar%2Fbaz%23qux", "/foo bar%2Fbaz%23qux"),
        (b"/%7euser", "/~user"),
        (b"/a/./b/../c", "/a/c"),
        (b"//a//b/", "/a/b/"),
        (b"/a/%2e%2e/b", "/b"),  # decoded dots are sanitised too
        (b"/caf%C3%A9", "/caf\u00e9"),
        (b"/a%zz", None),
        (b"/a%", None),
    ],
)
def test_routing_path_follows_traefik_normalisation(raw_path: bytes, routing_path: str) -> None:
    scope = scope_for_url("http://x/")
    scope["raw_path"] = raw_path
    assert RequestView(scope).path == routing_path


def test_path_prefix_matches_percent_encoded_space() -> None:
    scope = scope_for_url("http://x/")
    scope["raw_path"] = b"/foo%20bar/baz"
    assert matches("PathPrefix(`/foo bar`)", scope)


def test_encoded_slash_does_not_match_a_literal_slash() -> None:
    scope = scope_for_url("http://x/")
    scope["raw_path"] = b"/api%2Fadmin"
    assert not matches("PathPrefix(`/api/`)", scope)


def test_missing_raw_path_falls_back_to_the_decoded_path() -> None:
    scope = scope_for_url("http://x/")
    del scope["raw_path"]
    scope["path"] = "/foo bar"
    assert RequestView(scope).path == "/foo bar"


def test_path_regexp_dollar_does_not_match_before_a_final_newline() -> None:
    scope = scope_for_url("http://x/")
    scope["raw_path"] = b"/css%0A"
    assert not matches("PathRegexp(`^/css$`)", scope)
    assert matches("PathRegexp(`(?m)^/css$`)", scope)


@pytest.mark.parametrize(
    ("rule", "headers", "expected"),
    [
        ("Header(`Content-Type`, `application/json`)", {"content-type": "application/json"}, True),
        ("Header(`content-type`, `application/json`)", {"Content-Type": "application/json"}, True),
        ("Header(`Content-Type`, `application/json`)", {"Content-Type": "Application/JSON"}, False),
        ("Header(`Content-Type`, `application/json`)", {}, False),
        ("HeaderRegexp(`Content-Type`, `^application/(json|yaml)$`)", {"x": "y"}, False),
        (
            "HeaderRegexp(`Content-Type`, `^application/(json|yaml)$`)",
            {"Content-Type": "application/yaml"},
            True,
        ),
        ("HeaderRegexp(`Content-Type`, `json`)", {"Content-Type": "text/json; x"}, True),
    ],
)
def test_header_matchers_use_canonical_names_and_exact_values(
    rule: str, headers: dict[str, str], expected: bool
) -> None:
    assert matches(rule, scope_for_url("http://x/", headers=headers)) is expected


def test_header_matcher_checks_every_value_of_a_repeated_header() -> None:
    scope = scope_for_url("http://x/")
    scope["headers"] += [(b"x-tag", b"a"), (b"x-tag", b"b")]
    assert matches("Header(`X-Tag`, `b`)", scope)
    assert not matches("Header(`X-Tag`, `a, b`)", scope)


def test_host_is_not_visible_as_a_header() -> None:
    assert not matches("Header(`Host`, `example.com`)", scope_for_url("http://example.com/"))


@pytest.mark.parametrize(
    ("rule", "query", "expected"),
    [
        ("Query(`foo`, `bar`)", "foo=bar", True),
        ("Query(`foo`, `bar`)", "foo=baz&foo=bar", True),
        ("Query(`foo`, `bar`)", "foo=baz", False),
        ("Query(`foo`)", "foo", True),
        ("Query(`foo`)", "foo=", True),
        ("Query(`foo`)", "foo=x", False),
        ("Query(`foo bar`, `a b`)", "foo+bar=a%20b", True),
        ("Query(`b`, `2`)", "a=1;b=2", True),  # AllowQuerySemicolons
        ("Query(`a`, `1`)", "a=1&bad=%zz", True),  # bad pairs are skipped
        ("Query(`bad`)", "bad=%zz", False),
        ("QueryRegexp(`foo`, `^b.r$`)", "foo=bar", True),
        ("QueryRegexp(`foo`, `^b.r$`)", "foo=bars", False),
        ("QueryRegexp(`foo`)", "foo", True),
    ],
)
def test_query_matchers_parse_like_go(rule: str, query: str, expected: bool) -> None:
    assert matches(rule, scope_for_url(f"http://x/?{query}")) is expected


@pytest.mark.parametrize(
    ("rule", "query", "expected"),
    [
        ("Query(`foo=bar`)", "foo=bar", True),
        ("Query(`foo=bar`)", "foo=baz&foo=bar", False),  # gorilla looks at the first value
        ("Query(`foo=`)", "foo=anything", True),
        ("Query(`id={id:[0-9]+}`)", "id=42", True),
        ("Query(`id={id:[0-9]+}`)", "id=4x", False),
        ("Query(`a=1`, `b=2`)", "a=1&b=2", True),
        ("Query(`a=1`, `b=2`)", "a=1", False),
    ],
)
def test_v2_query_uses_gorilla_templates(rule: str, query: str, expected: bool) -> None:
    assert matches(rule, scope_for_url(f"http://x/?{query}"), syntax="v2") is expected


def test_v2_headers_requires_every_pair() -> None:
    rule = "Headers(`X-A`, `1`) && HeadersRegexp(`X-B`, `^[0-9]+$`)"
    ok = scope_for_url("http://x/", headers={"X-A": "1", "X-B": "22"})
    bad = scope_for_url("http://x/", headers={"X-A": "1", "X-B": "2b"})
    assert matches(rule, ok, syntax="v2")
    assert not matches(rule, bad, syntax="v2")


def test_method_matcher_uppercases_the_rule_but_not_the_request() -> None:
    assert matches("Method(`post`)", scope_for_url("http://x/", method="POST"))
    assert not matches("Method(`POST`)", scope_for_url("http://x/", method="post"))


def test_v2_method_accepts_several_methods() -> None:
    rule = "Method(`GET`, `post`)"
    assert matches(rule, scope_for_url("http://x/", method="POST"), syntax="v2")
    assert not matches(rule, scope_for_url("http://x/", method="PUT"), syntax="v2")


def test_websocket_scope_matches_method_get() -> None:
    scope = scope_for_url("http://x/ws")
    scope["type"] = "websocket"
    del scope["method"]
    assert matches("Method(`GET`) && Path(`/ws`)", scope)


@pytest.mark.parametrize(
    ("rule", "client", "expected"),
    [
        ("ClientIP(`10.0.0.0/8`)", "10.1.2.3", True),
        ("ClientIP(`10.0.0.0/8`)", "::ffff:10.1.2.3", True),
        ("ClientIP(`::ffff:10.1.2.3`)", "10.1.2.3", True),
        ("ClientIP(`::ffff:10.0.0.0/104`)", "10.9.9.9", True),
        ("ClientIP(`::/0`)", "10.9.9.9", False),
        ("ClientIP(`2001:db8::/32`)", "2001:db8::1", True),
        ("ClientIP(`2001:db8::/32`)", "2001:db9::1", False),
        ("ClientIP(`fe80::1`)", "fe80::1%eth0", True),
        ("ClientIP(`10.0.0.1/8`)", "10.200.0.1", True),  # host bits are ignored
    ],
)
def test_client_ip_matches_ips_and_networks_like_go(rule: str, client: str, expected: bool) -> None:
    assert matches(rule, scope_for_url("http://x/", client=client)) is expected


def test_client_ip_without_a_client_never_matches() -> None:
    scope = scope_for_url("http://x/")
    scope["client"] = None
    assert not matches("ClientIP(`0.0.0.0/0`)", scope)


@pytest.mark.parametrize(
    "value", ["1.2.3", "01.2.3.4", "1.2.3.4/33", "1.2.3.4/", "fe80::1%eth0", "1.2.3.4/255.0.0.0"]
)
def test_client_ip_rejects_what_go_cannot_parse(value: str) -> None:
    with pytest.raises(RuleError, match="invalid IP or CIDR"):
        compile_rule(f"ClientIP(`{value}`)")


def test_request_view_computes_each_field_once() -> None:
    scope = scope_for_url("http://Example.com/a?x=1", headers={"X-A": "1"})
    view = RequestView(scope)
    first = (view.host, view.path, view.headers, view.query, view.client_ip)
    scope["headers"] = []  # a later change must not be seen: values are cached
    scope["raw_path"] = b"/changed"
    again = (view.host, view.path, view.headers, view.query, view.client_ip)
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert first[:2] == ("example.com", "/a")


def test_one_view_can_be_shared_by_many_rules() -> None:
    view = RequestView(scope_for_url("http://b.example.com/api/v1"))
    rules = [compile_rule(f"Host(`h{i}.example.com`) && PathPrefix(`/api`)") for i in range(20)]
    rules.append(compile_rule("Host(`b.example.com`) && PathPrefix(`/api`)"))
    assert [rule.matches(view) for rule in rules] == [False] * 20 + [True]


@pytest.mark.parametrize(
    ("raw_path", "hosts"),
    [
        (b"/x", [b"Example.COM:8080"]),
        (b"/x", [b"[::1]:80"]),
        (b"/x", [b"adm\xc4\xb0n.example"]),
        (b"/x", [b" example.com. "]),
        (b"/x", []),
        (b"http://Other.example:81/x", [b"example.com"]),
    ],
)
def test_a_view_given_the_entry_points_host_reads_what_it_would_find(
    raw_path: bytes, hosts: list[bytes]
) -> None:
    from traefikservice_asgi.entrypoint.forwarding import prepare

    scope = scope_for_url("http://placeholder/x")
    scope["raw_path"] = raw_path
    scope["headers"] = [(b"host", host) for host in hosts]
    forward = prepare(scope, check_host=False)
    for _ in range(2):  # the second time, the canonical host comes from the cache
        found, given = RequestView(scope), RequestView(scope, forward.host)
        assert given.host_header == found.host_header
        assert given.host == found.host
