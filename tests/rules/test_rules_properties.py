"""Properties: no input string makes ``compile_rule`` raise anything but ``RuleError``,
and no request makes a compiled rule raise at all."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from traefikservice_asgi.rules import RequestView, RuleError, compile_rule

_FRAGMENTS = [
    "Host", "HostRegexp", "Path", "PathPrefix", "PathRegexp", "Method", "Header",
    "HeaderRegexp", "Query", "QueryRegexp", "ClientIP", "Headers", "HeadersRegexp",
    "HostHeader", "host", "PATH", "(", ")", ",", "&&", "||", "!", "...", " ", "\n",
    "`", '"', "\\", "/*", "*/", "//", "`a.com`", "`/api`", "`^/a+$`", "`{id:[0-9]+}`",
    "`10.0.0.0/8`", "`::1`", "`k=v`", '"\\x41"', '"\\u00e9"', "`(?i)x`", "`[[:alpha:]]`",
    "`a{2,3}`", "`\\Qa.b\\E`", "`(?P<n>x)`", "`*.a.com`", "`*`", "1", "'",
]  # fmt: skip

rule_like = st.lists(st.sampled_from(_FRAGMENTS), max_size=14).map("".join)
regex_like = st.text(
    alphabet=st.sampled_from(list("ab.*+?|()[]{}^$\\-:,0123456789PpQEdwsbBAz<>=!i-mU")),
    max_size=20,
)


def _compile_only_raises_rule_error(text: str, syntax: str) -> None:
    try:
        rule = compile_rule(text, syntax=syntax)  # type: ignore[arg-type]
    except RuleError as exc:
        position: int | None = exc.position
    else:
        position = None
        assert rule.priority == len(text.encode("utf-8"))
    assert position is None or 0 <= position <= len(text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(), st.sampled_from(["v3", "v2"]))
@example("Host(`a`", "v3")
@example("\x00", "v3")
def test_any_text_compiles_or_raises_rule_error(text: str, syntax: str) -> None:
    _compile_only_raises_rule_error(text, syntax)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(rule_like, st.sampled_from(["v3", "v2"]))
def test_rule_shaped_text_compiles_or_raises_rule_error(text: str, syntax: str) -> None:
    _compile_only_raises_rule_error(text, syntax)


@settings(max_examples=600)
@given(regex_like, st.sampled_from(["PathRegexp", "HostRegexp", "Path", "PathPrefix"]))
def test_any_regex_or_template_compiles_or_raises_rule_error(pattern: str, matcher: str) -> None:
    if "`" in pattern:
        return
    for syntax in ("v3", "v2"):
        if syntax == "v2" and matcher == "PathRegexp":
            continue
        _compile_only_raises_rule_error(f"{matcher}(`{pattern}`)", syntax)


_RULES = [
    compile_rule("Host(`a.com`) && PathPrefix(`/api`) || !Method(`GET`)"),
    compile_rule("HostRegexp(`^a`) || PathRegexp(`b$`) || Header(`X-A`, `1`)"),
    compile_rule("Query(`k`, `v`) || QueryRegexp(`k`, `^v`) || ClientIP(`10.0.0.0/8`)"),
    compile_rule("HeaderRegexp(`X-A`, `.`) && Host(`*.a.com`)"),
    compile_rule("Host(`a.com`, `b.com`) && Path(`/{x}`) && Query(`k={v}`)", syntax="v2"),
    compile_rule("HostRegexp(`{s}.a.com`) || Headers(`X-A`, `1`) || ClientIP(`::1`)", syntax="v2"),
]

scopes = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["http", "websocket"]),
        "method": st.sampled_from(["GET", "POST", "get"]),
        "raw_path": st.binary(max_size=30),
        "path": st.text(max_size=20),
        "query_string": st.binary(max_size=30),
        "headers": st.lists(
            st.tuples(st.sampled_from([b"host", b"x-a", b"Host", b"\xff"]), st.binary(max_size=20)),
            max_size=4,
        ),
        "client": st.one_of(
            st.none(),
            st.tuples(st.one_of(st.ip_addresses().map(str), st.text(max_size=8)), st.just(1)),
        ),
    }
)


@settings(max_examples=500)
@given(scopes)
def test_matching_never_raises_for_any_request(scope: dict[str, Any]) -> None:
    view = RequestView(scope)
    results = [rule.matches(view) for rule in _RULES]
    assert all(isinstance(result, bool) for result in results)


@settings(max_examples=300)
@given(scopes)
def test_negation_follows_de_morgan_like_traefiks_rewrite(scope: dict[str, Any]) -> None:
    a, b = "Host(`a.com`)", "PathPrefix(`/api`)"
    view = RequestView(scope)
    assert compile_rule(f"!({a} && {b})").matches(view) == compile_rule(f"!{a} || !{b}").matches(
        view
    )
    assert compile_rule(f"!({a} || {b})").matches(view) == compile_rule(f"!{a} && !{b}").matches(
        view
    )


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_routing_path_is_stable_under_a_second_pass(raw: bytes) -> None:
    """Re-routing the routing path gives the same path (the pipeline is idempotent)."""
    first = RequestView({"type": "http", "raw_path": raw}).path
    if first is None or not first.isascii() or any(c in first for c in ' "<>\\^`{|}'):
        return
    second = RequestView({"type": "http", "raw_path": first.encode()}).path
    assert second == first


@settings(max_examples=500, deadline=None)
@given(path=st.binary(max_size=40))
def test_escaping_a_path_leaves_safe_bytes_and_escapes_every_other(path: bytes) -> None:
    """Go's ``url.escape(s, encodePath)``, byte by byte, whichever way it is computed
    (the all-safe fast path returns the same bytes)."""
    from traefikservice_asgi.rules._request import _PATH_SAFE, _escape_path

    expected = b"".join(bytes((c,)) if c in _PATH_SAFE else b"%%%02X" % c for c in path)
    assert _escape_path(path) == expected
