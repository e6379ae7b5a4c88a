"""What Traefik refuses only when it builds a regexp, redirect, addPrefix or forwardAuth
middleware for a router (that router is not served): a located warning when no route
uses the Middleware, an error naming the route that does; what the CRD's schema refuses
is a load error at its field either way."""

from __future__ import annotations

import pytest

from tests.support.config import assert_unbuilt, errors

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
         "invalid regexp \"(?<n\": error parsing regexp: invalid named capture: `(?<n`"),
        ("redirectRegex: {regex: '[z-a]', replacement: /x}", "spec.redirectRegex.regex",
         "invalid regexp \"[z-a]\": error parsing regexp: invalid character class range: `z-a`"),
        ("redirectScheme: {port: '443'}", "spec.redirectScheme.scheme",
         "you must provide a target scheme"),
        ("addPrefix: {}", "spec.addPrefix.prefix", "prefix cannot be empty"),
        ("forwardAuth: {address: 'http://a.test', authResponseHeadersRegex: '(a'}",
         "spec.forwardAuth.authResponseHeadersRegex",
         "invalid regexp \"(a\": error parsing regexp: missing closing ): `(a`"),
    ],
)  # fmt: skip
def test_a_middleware_traefik_cannot_build_warns_unused_and_refuses_the_route_using_it(
    spec: str, field: str, message: str
) -> None:
    # Traefik compiles the regexps (and checks the scheme, the prefix) in each kind's
    # New, when it builds the middleware for a router: that router is not served.
    assert_unbuilt(spec, f"{field}: {message}")


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
