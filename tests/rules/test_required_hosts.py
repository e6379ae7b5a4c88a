"""The hosts a rule requires (``Rule.hosts``), and the router's index built on them: for
any request, the first route found through the index is the first route whose rule
matches among all of them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traefikservice_asgi.rules import RequestView, compile_rule
from traefikservice_asgi.runtime import Route, RouteIndex


@pytest.mark.parametrize(
    ("rule", "hosts"),
    [
        ("Host(`a.test`)", {"a.test"}),
        ("Host(`A.Test.`)", {"a.test"}),
        ("Host(`a.test`) && PathPrefix(`/x`)", {"a.test"}),
        ("PathPrefix(`/x`) && (Host(`a.test`) || Host(`b.test`))", {"a.test", "b.test"}),
        ("Host(`a.test`) || Host(`b.test`)", {"a.test", "b.test"}),
        ("Host(`a.test`) && Host(`b.test`)", set()),  # never matches: listed nowhere
        ("Host(`a.test`) || PathPrefix(`/`)", None),
        ("Host(`*.a.test`)", None),
        ("Host(`*`)", None),
        ("HostRegexp(`^a\\.test$`)", None),
        ("!Host(`a.test`)", None),
        ("PathPrefix(`/`)", None),
    ],
)
def test_the_hosts_a_rule_requires(rule: str, hosts: set[str] | None) -> None:
    required = compile_rule(rule).hosts
    assert (None if required is None else set(required)) == hosts


def test_v2_host_lists_every_host_it_names() -> None:
    assert compile_rule("Host(`a.test`, `B.test`)", "v2").hosts == {"a.test", "b.test"}


RULES = [
    "Host(`a.test`)",
    "Host(`a.test.`)",
    "Host(`A.TEST`) && PathPrefix(`/x`)",
    "Host(`b.test`) || Host(`a.test`)",
    "Host(`*.a.test`)",
    "HostRegexp(`^b`)",
    "!Host(`b.test`)",
    "Host(`c.test`) && Host(`a.test`)",
    "PathPrefix(`/y`)",
    "Host(`b.test`) || PathPrefix(`/z`)",
]
HOSTS = ["a.test", "A.test", "a.test.", "a.test..", "b.test", "x.a.test", "c.test", "", "d"]


def scope(host: str, path: str) -> dict[str, Any]:
    headers = [(b"host", host.encode())] if host else []
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "http_version": "1.1",
    }


@settings(max_examples=300, deadline=None)
@given(
    order=st.permutations(range(len(RULES))),
    count=st.integers(min_value=1, max_value=len(RULES)),
    host=st.sampled_from(HOSTS),
    path=st.sampled_from(["/", "/x", "/y", "/z"]),
)
def test_the_index_finds_the_first_matching_route(
    order: list[int], count: int, host: str, path: str
) -> None:
    routes = tuple(
        Route(f"r{i}", compile_rule(RULES[i]), handler=lambda *_: None) for i in order[:count]
    )
    view = RequestView(scope(host, path))
    expected = next((r.name for r in routes if r.rule.matches(view)), None)
    indexed = RouteIndex(routes).candidates(RequestView(scope(host, path)))
    assert next((r.name for r in indexed if r.rule.matches(view)), None) == expected
