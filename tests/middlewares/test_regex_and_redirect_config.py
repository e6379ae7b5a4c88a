"""What the regexp and redirect middlewares refuse at load time (Traefik refuses to
build them, and drops the router), each error at its field."""

from __future__ import annotations

import pytest

from tests.support.config import errors

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
        ("redirectScheme: {scheme: https, port: 443}", "spec.redirectScheme.port",
         "must be a string, got 443"),
    ],
)  # fmt: skip
def test_a_middleware_traefik_cannot_build_is_a_load_error_at_its_field(
    spec: str, field: str, message: str
) -> None:
    (issue,) = errors(MIDDLEWARE.format(spec=spec))
    assert f"{field}: " in issue
    assert message in issue
