"""What the headers, contentType and encodedCharacters readers take and refuse: each
refusal at its field, Traefik's deprecated options read with a warning."""

from __future__ import annotations

import pytest

from tests.support.config import assert_unbuilt, errors
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config.middlewares import ContentType, EncodedCharacters, Headers

CONFIG = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: mw, namespace: default}}
spec:
  {spec}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes:
    - match: Host(`a.test`)
      middlewares: [{{name: mw}}]
      services: [{{name: app, port: 80}}]
"""


BACKENDS = {"default/app:80": "http://127.0.0.1:9"}


def spec_of(spec: str) -> object:
    config = load_config_text(CONFIG.format(spec=spec), filename="routes.yaml", backends=BACKENDS)
    (route,) = config.routes
    (middleware,) = route.middlewares
    return middleware.spec


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("headers: {stsSeconds: -1}", "spec.headers.stsSeconds", "must be an integer >= 0"),
        ("headers: {customRequestHeaders: {X-A: 1}}", "spec.headers.customRequestHeaders.X-A",
         'must be a string ("" removes the header), got 1'),
        ("headers: {customResponseHeaders: {'X A': b}}", "spec.headers.customResponseHeaders.X A",
         "not a valid HTTP header name"),
        ("headers: {customRequestHeaders: {X-A: \"a\\nb\"}}",
         "spec.headers.customRequestHeaders.X-A", "cannot hold CR, LF or NUL"),
        ("headers: {frameDeny: yes-please, contentTypeNosniff: true}", "spec.headers.frameDeny", "must be true or false"),
        ("headers: {frameDeny: true, sslRedirects: true}", "spec.headers.sslRedirects",
         "unknown field \"sslRedirects\" (did you mean 'sslRedirect'?)"),
        ("contentType: {autoDetect: 1}", "spec.contentType.autoDetect", "must be true or false"),
        ("encodedCharacters: {allowEncodedSlashes: true}",
         "spec.encodedCharacters.allowEncodedSlashes", "unknown field"),
    ],
)  # fmt: skip
def test_a_spec_refused_at_load_used_or_not_is_an_error_at_its_field(
    spec: str, field: str, message: str
) -> None:
    (issue,) = errors(CONFIG.format(spec=spec))
    assert f"{field}: " in issue
    assert message in issue


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("headers: {}", "spec.headers", "headers configuration not valid (it sets no header)"),
        ("headers: {stsIncludeSubdomains: false, sslRedirect: false}", "spec.headers",
         "headers configuration not valid (it sets no header)"),
        ("headers: {accessControlAllowOriginListRegex: ['(a']}",
         "spec.headers.accessControlAllowOriginListRegex[0]",
         "error occurred during origin parsing: error parsing regexp: missing closing ): `(a`"),
    ],
)  # fmt: skip
def test_a_spec_traefik_cannot_build_warns_unused_and_refuses_the_route_using_it(
    spec: str, field: str, message: str
) -> None:
    # headers.New / NewHeader: the provider keeps it, the router using it is not served.
    assert_unbuilt(spec, f"{field}: {message}")


def test_headers_keep_every_field_and_the_header_maps_in_order() -> None:
    spec = spec_of(
        "headers: {customRequestHeaders: {X-B: '2', X-A: ''}, accessControlMaxAge: 0,"
        " accessControlAllowOriginList: ['*'], stsSeconds: 0, permissionsPolicy: p}"
    )
    assert spec == Headers(
        custom_request_headers=(("X-B", "2"), ("X-A", "")),
        access_control_allow_origin_list=("*",),
        access_control_max_age=0,
        permissions_policy="p",
    )
    assert spec.has_custom_headers and spec.has_cors_headers


@pytest.mark.parametrize("spec", ["headers: {stsSeconds: 0}", "headers: {accessControlMaxAge: 0}"])
def test_a_zero_that_is_given_counts_as_configured(spec: str) -> None:
    assert isinstance(spec_of(spec), Headers)


def test_removed_secure_options_are_read_with_a_warning_and_still_count() -> None:
    config = load_config_text(
        CONFIG.format(spec="headers: {sslRedirect: true, featurePolicy: camera}"),
        filename="routes.yaml",
        backends=BACKENDS,
    )
    warnings = sorted(str(w) for w in config.warnings)
    assert len(warnings) == 2
    assert "spec.headers.featurePolicy: deprecated and without effect" in warnings[0]
    assert "use permissionsPolicy" in warnings[0]
    assert "spec.headers.sslRedirect: deprecated and without effect" in warnings[1]
    assert config.routes[0].middlewares[0].spec == Headers()


def test_content_type_defaults_to_detection_and_warns_on_auto_detect() -> None:
    assert spec_of("contentType: {}") == ContentType(auto_detect=True)
    config = load_config_text(
        CONFIG.format(spec="contentType: {autoDetect: false}"),
        filename="routes.yaml",
        backends=BACKENDS,
    )
    assert config.routes[0].middlewares[0].spec == ContentType(auto_detect=False)
    (warning,) = config.warnings
    assert "spec.contentType.autoDetect: deprecated" in str(warning)


def test_encoded_characters_deny_everything_by_default() -> None:
    assert spec_of("encodedCharacters: {}") == EncodedCharacters()
    assert spec_of("encodedCharacters: {allowEncodedHash: true}") == EncodedCharacters(
        allow_encoded_hash=True
    )
