"""What the regexp and redirect middlewares refuse at load time (Traefik refuses to
build them, and drops the router), each error at its field."""

from __future__ import annotations

import pytest

from tests.support.config import errors, unbuilt

MIDDLEWARE = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: mw, namespace: default}}
spec:
  {spec}
"""


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("stripPrefixRegex: {regex: [/ok, '/(a']}", "spec.stripPrefixRegex.regex[1]",
         "invalid regexp \"/(a\": error parsing regexp: missing closing ): `(a`"),
        ("replacePathRegex: {regex: '(?<n', replacement: /x}", "spec.replacePathRegex.regex",
         "invalid regexp"),
        ("redirectRegex: {regex: '[z-a]', replacement: /x}", "spec.redirectRegex.regex",
         "invalid character class range"),
        ("redirectScheme: {port: '443'}", "spec.redirectScheme.scheme",
         "you must provide a target scheme"),
        ("addPrefix: {}", "spec.addPrefix.prefix", "prefix cannot be empty"),
    ],
)  # fmt: skip
def test_a_middleware_traefik_cannot_build_warns_unused_and_refuses_the_route_using_it(
    spec: str, field: str, message: str
) -> None:
    # Traefik compiles the regexps (and checks the scheme, the prefix) in each kind's
    # New, when it builds the middleware for a router: that router is not served.
    (warning,), (issue,) = unbuilt(spec)
    assert f"{field}: " in warning and message in warning
    assert f"{field}: " in issue and message in issue and "(used by routes.yaml:" in issue


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("redirectScheme: {scheme: https, port: 443}", "spec.redirectScheme.port",
         "must be a string, got 443"),
        ("addPrefix: {prefix: ''}", "spec.addPrefix.prefix", "prefix cannot be empty"),
    ],
)  # fmt: skip
def test_a_middleware_the_kubernetes_api_refuses_is_a_load_error_at_its_field(
    spec: str, field: str, message: str
) -> None:
    (issue,) = errors(MIDDLEWARE.format(spec=spec))
    assert f"{field}: " in issue
    assert message in issue
