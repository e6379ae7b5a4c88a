"""A service reference (Traefik's LoadBalancerSpec): ``strategy``, ``nativeLB`` and
``sticky`` read as Traefik 3.7's CRD provider reads them (``buildServersLB``,
``loadServers``); options Traefik ignores on a TraefikService reference are refused."""

from __future__ import annotations

import pytest

from tests.support.config import errors, servers_of
from tests.support.manifests import APP_SERVICE_AND_SLICE, one_route
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config import (
    FailoverService,
    HRWService,
    MirroringService,
    ServersService,
    WeightedService,
)
from traefikservice_asgi.config.crd.serviceref import sanitize_cookie_name


@pytest.mark.parametrize("strategy", ["wrr", "p2c", "hrw", "leasttime"])
def test_strategy_is_carried_to_the_servers_balancer(strategy: str) -> None:
    service = servers_of(one_route(f"{{name: app, port: 80, strategy: {strategy}}}"))
    assert service.strategy == strategy


def test_strategy_defaults_to_wrr_and_empty_means_wrr_as_in_traefik() -> None:
    assert servers_of(one_route("{name: app, port: 80}")).strategy == "wrr"
    assert servers_of(one_route('{name: app, port: 80, strategy: ""}')).strategy == "wrr"


def test_round_robin_is_the_deprecated_wrr_and_warns_where_it_is_written() -> None:
    config = load_config_text(
        one_route("{name: app, port: 80, strategy: RoundRobin}"),
        filename="routes.yaml",
        backends={"default/app:80": "http://127.0.0.1:9"},
    )
    assert isinstance(config.routes[0].service, ServersService)
    assert config.routes[0].service.strategy == "wrr"
    assert [str(w) for w in config.warnings] == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].strategy: "
        "RoundRobin strategy value is deprecated, please use wrr value instead"
    ]


def test_unknown_strategy_is_an_error_quoting_the_value() -> None:
    assert errors(one_route("{name: app, port: 80, strategy: random}")) == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].strategy: "
        'unsupported load-balancer strategy "random" (one of wrr, p2c, hrw, leasttime)'
    ]


def test_strategy_is_case_sensitive_as_the_crd_enum() -> None:
    (message,) = errors(one_route("{name: app, port: 80, strategy: P2C}"))
    assert 'unsupported load-balancer strategy "P2C"' in message


def test_strategy_must_be_a_string() -> None:
    assert errors(one_route("{name: app, port: 80, strategy: [p2c]}")) == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].strategy: "
        "must be a string, got a list"
    ]


WEIGHTED = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: w, namespace: default}
spec:
  weighted:
    services:
      - {name: app, port: 80, strategy: leasttime}
      - {name: other, kind: TraefikService, %s}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: other, namespace: default}
spec:
  weighted:
    services: [{name: app, port: 81}]
"""


def test_a_strategy_on_a_traefik_service_reference_is_refused_not_ignored() -> None:
    assert errors(WEIGHTED % "strategy: p2c") == [
        "routes.yaml:8: TraefikService default/w: spec.weighted.services[1].strategy: "
        "applies to a Service reference only (Traefik ignores it on a TraefikService "
        "reference)"
    ]


def test_wrr_on_a_traefik_service_reference_changes_nothing_and_is_accepted() -> None:
    config = load_config_text(WEIGHTED % "strategy: wrr")
    w = config.services["default-w"]
    assert isinstance(w, WeightedService)
    first = w.children[0].service
    assert isinstance(first, ServersService) and first.strategy == "leasttime"


def test_sticky_with_hrw_is_ignored_as_in_traefik_with_a_warning() -> None:
    text = one_route("{name: app, port: 80, strategy: hrw, sticky: {cookie: {name: pin}}}")
    config = load_config_text(
        text, filename="routes.yaml", backends={"default/app:80": "http://127.0.0.1:9"}
    )
    assert [str(w) for w in config.warnings] == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].sticky: ignored: "
        "the hrw strategy keeps a client on its server by IP, without a cookie "
        "(Traefik ignores sticky with hrw too)"
    ]


def test_configured_cookie_name_is_sanitized_like_traefik() -> None:
    assert sanitize_cookie_name("cookie") == "cookie"
    assert sanitize_cookie_name("my cookie;x=1") == "my_cookie_x_1"
    assert sanitize_cookie_name("a.b-c~d|e`f") == "a.b-c~d|e`f"
    assert sanitize_cookie_name("ü") == "_"


def test_native_lb_is_accepted_wherever_traefik_reads_a_service_reference() -> None:
    text = (
        APP_SERVICE_AND_SLICE % "10.96.0.10"
        + """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: all, namespace: default}
spec:
  weighted:
    services:
      - {name: app, port: 80, nativeLB: true, weight: 2}
      - {name: mirror, kind: TraefikService}
      - {name: fo, kind: TraefikService}
      - {name: hrw, kind: TraefikService}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: mirror, namespace: default}
spec:
  mirroring:
    name: app
    port: http
    nativeLB: true
    mirrors: [{name: app, port: https-api, nativeLB: true, percent: 10}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: fo, namespace: default}
spec:
  failover:
    service: {name: app, port: 80, nativeLB: true}
    fallback: {name: app, port: https-api, nativeLB: true}
    errors: {status: ["500-599"]}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: hrw, namespace: default}
spec:
  highestRandomWeight:
    services: [{name: app, port: 80, nativeLB: true, strategy: p2c}]
"""
    )
    services = load_config_text(text).services
    weighted, mirror = services["default-all"], services["default-mirror"]
    fo, hrw = services["default-fo"], services["default-hrw"]
    assert isinstance(weighted, WeightedService) and isinstance(mirror, MirroringService)
    assert isinstance(fo, FailoverService) and isinstance(hrw, HRWService)
    leaves = [
        weighted.children[0].service,
        mirror.main,
        mirror.mirrors[0].service,
        fo.main,
        fo.fallback,
        hrw.children[0].service,
    ]
    assert [s.servers for s in leaves if isinstance(s, ServersService)] == [
        ("http://10.96.0.10:80",),
        ("http://10.96.0.10:80",),
        ("https://10.96.0.10:443",),
        ("http://10.96.0.10:80",),
        ("https://10.96.0.10:443",),
        ("http://10.96.0.10:80",),
    ]
    assert isinstance(hrw.children[0].service, ServersService)
    assert hrw.children[0].service.strategy == "p2c"


def test_native_lb_on_a_traefik_service_reference_is_refused_not_ignored() -> None:
    assert errors(WEIGHTED % "nativeLB: true") == [
        "routes.yaml:8: TraefikService default/w: spec.weighted.services[1].nativeLB: "
        "applies to a Service reference only (Traefik ignores it on a TraefikService "
        "reference)"
    ]


def test_native_lb_must_be_a_boolean() -> None:
    assert errors(one_route('{name: app, port: 80, nativeLB: "yes"}')) == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].nativeLB: "
        'must be true or false, got "yes"'
    ]
