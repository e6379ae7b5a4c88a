"""ipAllowList, ipWhiteList, inFlightReq and circuitBreaker as the reader gives them:
Traefik's defaults; what Traefik refuses only when building one for a router (and
retry's) as a located warning when no route uses it, an error naming the route that
does; the rest as a located load error."""

from __future__ import annotations

import http

import pytest

from tests.support.config import assert_unbuilt, errors
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config.middlewares import (
    CircuitBreaker,
    InFlightReq,
    IPAllowList,
    IPStrategy,
    IPWhiteList,
    MiddlewareSpec,
    SourceCriterion,
)
from traefikservice_asgi.responses import GO_STATUS_TEXT

MIDDLEWARE = """\
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


def spec_of(spec: str) -> MiddlewareSpec:
    (route,) = load_config_text(MIDDLEWARE.format(spec=spec)).routes
    (middleware,) = route.middlewares
    return middleware.spec


def test_defaults_are_traefiks() -> None:
    assert spec_of("ipAllowList: {sourceRange: [10.0.0.0/8]}") == IPAllowList(
        ("10.0.0.0/8",), None, 403
    )
    assert spec_of("inFlightReq: {amount: 3}") == InFlightReq(3, SourceCriterion(request_host=True))
    assert spec_of("circuitBreaker: {expression: NetworkErrorRatio() > 0.5}") == CircuitBreaker(
        "NetworkErrorRatio() > 0.5", 0.1, 10.0, 10.0, 503
    )


def test_options_are_read() -> None:
    spec = "ipAllowList: {sourceRange: ['::1'], ipStrategy: {depth: 2}, rejectStatusCode: 404}"
    assert spec_of(spec) == IPAllowList(("::1",), IPStrategy(depth=2), 404)
    spec = "inFlightReq: {amount: 0, sourceCriterion: {requestHeaderName: X-User}}"
    assert spec_of(spec) == InFlightReq(0, SourceCriterion(request_header_name="X-User"))
    spec = (
        "circuitBreaker: {expression: 'LatencyAtQuantileMS(50.0) > 100', checkPeriod: 2,"
        " fallbackDuration: 1m, recoveryDuration: 0s, responseCode: 429}"
    )
    # A bare number is seconds (Traefik's Duration); a zero duration keeps oxy's default.
    assert spec_of(spec) == CircuitBreaker("LatencyAtQuantileMS(50.0) > 100", 2.0, 60.0, 10.0, 429)


def test_ip_white_list_is_the_deprecated_allow_list_with_a_warning() -> None:
    assert spec_of("ipWhiteList: {sourceRange: [127.0.0.1]}") == IPWhiteList(("127.0.0.1",))
    config = load_config_text(MIDDLEWARE.format(spec="ipWhiteList: {sourceRange: ['::1']}"))
    assert [str(w) for w in config.warnings][:1] == [
        "<string>:5: Middleware default/mw: spec.ipWhiteList: deprecated (Traefik: use ipAllowList)"
    ]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("inFlightReq: {amount: -1}", "spec.inFlightReq.amount", "must be an integer >= 0"),
        ("circuitBreaker: {expression: 'NetworkErrorRatio() > 0.5', checkPeriod: soon}",
         "spec.circuitBreaker.checkPeriod", "soon"),
        ("circuitBreaker: {expression: 'NetworkErrorRatio() > 0.5', responseCode: 99}",
         "spec.circuitBreaker.responseCode", "from 100 to 599"),
        ("circuitBreaker: {expression: 'NetworkErrorRatio() > 0.5', threshold: 3}",
         "spec.circuitBreaker.threshold", ""),
    ],
)  # fmt: skip
def test_a_middleware_refused_at_load_used_or_not_is_an_error_at_its_field(
    spec: str, field: str, message: str
) -> None:
    (issue,) = errors(MIDDLEWARE.format(spec=spec))
    assert issue.startswith(f"routes.yaml:5: Middleware default/mw: {field}: ")
    assert message in issue


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("ipAllowList: {}", "spec.ipAllowList.sourceRange",
         "sourceRange is empty, IPAllowLister not created"),
        ("ipWhiteList: {sourceRange: []}", "spec.ipWhiteList.sourceRange",
         "sourceRange is empty, IPWhiteLister not created"),
        ("ipAllowList: {sourceRange: [10.0.0.0/08]}", "spec.ipAllowList.sourceRange[0]",
         "cannot parse CIDRs [10.0.0.0/08]: parsing CIDR trusted IPs <nil>: invalid CIDR "
         "address: 10.0.0.0/08"),
        ("ipAllowList: {sourceRange: [10.0.0.1, 10.0.0.0/255.0.0.0]}",
         "spec.ipAllowList.sourceRange[1]",
         "cannot parse CIDRs [10.0.0.1 10.0.0.0/255.0.0.0]: parsing CIDR trusted IPs <nil>: "
         "invalid CIDR address: 10.0.0.0/255.0.0.0"),
        ("ipAllowList: {sourceRange: [10.0.0.1], rejectStatusCode: 299}",
         "spec.ipAllowList.rejectStatusCode", "invalid HTTP status code 299"),
        ("ipAllowList: {sourceRange: [10.0.0.1], ipStrategy: {ipv6Subnet: 129}}",
         "spec.ipAllowList.ipStrategy.ipv6Subnet",
         "invalid IPv6 subnet 129 value, should be greater to 0 and lower or equal to 128"),
        ("ipAllowList: {sourceRange: [10.0.0.1], ipStrategy: {excludedIPs: [x]}}",
         "spec.ipAllowList.ipStrategy.excludedIPs[0]", 'not an IP or a CIDR, got "x"'),
        ("inFlightReq: {amount: 1, sourceCriterion: {requestHost: true, requestHeaderName: X}}",
         "spec.inFlightReq.sourceCriterion",
         "requestHeaderName and requestHost are mutually exclusive (Traefik)"),
        ("circuitBreaker: {expression: 'RequestThreshold() > 10'}",
         "spec.circuitBreaker.expression",
         'invalid expression "RequestThreshold() > 10": unsupported function: RequestThreshold'),
        ("circuitBreaker: {}", "spec.circuitBreaker.expression",
         "invalid expression \"\": 1:1: expected operand, found 'EOF'"),
        ("retry: {}", "spec.retry.attempts", "incorrect (or empty) value for attempt (0)"),
        ("retry: {attempts: 2, disableRetryOnNetworkError: true}",
         "spec.retry.disableRetryOnNetworkError",
         "retry middleware requires at least HTTP status codes or retry on TCP"),
    ],
)  # fmt: skip
def test_what_traefik_checks_only_when_building_warns_unused_and_refuses_the_route_using_it(
    spec: str, field: str, message: str
) -> None:
    # ipallowlist.New / ipwhitelist.New / retry.New: the provider keeps the Middleware,
    # the router using it is not served.
    assert_unbuilt(spec, f"{field}: {message}")


def test_a_negative_retry_attempts_is_refused_by_the_crd_used_or_not() -> None:
    (issue,) = errors(MIDDLEWARE.split("---")[0].format(spec="retry: {attempts: -1}"))
    assert "spec.retry.attempts: must be an integer >= 0, got -1" in issue


def test_every_error_of_a_load_is_reported_at_once() -> None:
    spec = "circuitBreaker: {expression: 'X > 1', checkPeriod: x, responseCode: 700}"
    issues = errors(MIDDLEWARE.format(spec=spec))
    assert [issue.split(": ")[2] for issue in issues] == [
        "spec.circuitBreaker.checkPeriod",
        "spec.circuitBreaker.responseCode",
        "spec.circuitBreaker.expression",
    ]


def test_the_status_codes_the_reader_accepts_are_those_go_names() -> None:
    # The config layer checks rejectStatusCode with Python's table; Go's is the runtime's.
    assert {s.value for s in http.HTTPStatus} == set(GO_STATUS_TEXT)
