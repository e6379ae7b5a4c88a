"""``strategy`` and ``nativeLB`` on a Service reference, read as Traefik 3.7's CRD
provider reads them (``buildServersLB``, ``loadServers``, ``getNativeServiceAddress``),
every mistake reported with file, line, resource and field path."""

from __future__ import annotations

import pytest

from traefikservice_asgi import ConfigError, load_config_text
from traefikservice_asgi.config import (
    FailoverService,
    HRWService,
    MirroringService,
    ServersService,
    WeightedService,
)


def errors(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename="routes.yaml", **kwargs)  # type: ignore[arg-type]
    return [str(issue) for issue in info.value.issues]


def route(service: str) -> str:
    return f"""\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes:
    - match: Host(`x.test`)
      services:
        - {service}
"""


def servers_of(text: str, **kwargs: object) -> ServersService:
    (only,) = load_config_text(text, **kwargs).routes  # type: ignore[arg-type]
    assert isinstance(only.service, ServersService)
    return only.service


# ------------------------------------------------------------------------ strategy


@pytest.mark.parametrize("strategy", ["wrr", "p2c", "hrw", "leasttime"])
def test_strategy_is_carried_to_the_servers_balancer(strategy: str) -> None:
    service = servers_of(route(f"{{name: app, port: 80, strategy: {strategy}}}"))
    assert service.strategy == strategy


def test_strategy_defaults_to_wrr_and_empty_means_wrr_as_in_traefik() -> None:
    assert servers_of(route("{name: app, port: 80}")).strategy == "wrr"
    assert servers_of(route('{name: app, port: 80, strategy: ""}')).strategy == "wrr"


def test_round_robin_is_the_deprecated_wrr_and_warns_where_it_is_written() -> None:
    config = load_config_text(
        route("{name: app, port: 80, strategy: RoundRobin}"), filename="routes.yaml"
    )
    assert isinstance(config.routes[0].service, ServersService)
    assert config.routes[0].service.strategy == "wrr"
    assert [str(w) for w in config.warnings] == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].strategy: "
        "RoundRobin strategy value is deprecated, please use wrr value instead"
    ]


def test_unknown_strategy_is_an_error_quoting_the_value() -> None:
    assert errors(route("{name: app, port: 80, strategy: random}")) == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].strategy: "
        'unsupported load-balancer strategy "random" (one of wrr, p2c, hrw, leasttime)'
    ]


def test_strategy_is_case_sensitive_as_the_crd_enum() -> None:
    (message,) = errors(route("{name: app, port: 80, strategy: P2C}"))
    assert 'unsupported load-balancer strategy "P2C"' in message


def test_strategy_must_be_a_string() -> None:
    assert errors(route("{name: app, port: 80, strategy: [p2c]}")) == [
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
    text = route("{name: app, port: 80, strategy: hrw, sticky: {cookie: {name: pin}}}")
    config = load_config_text(text, filename="routes.yaml")
    assert [str(w) for w in config.warnings] == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].sticky: ignored: "
        "the hrw strategy keeps a client on its server by IP, without a cookie "
        "(Traefik ignores sticky with hrw too)"
    ]


# ------------------------------------------------------------------------ nativeLB

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec:
  clusterIP: %s
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: https-api, port: 443, targetPort: 8443}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-1
  namespace: default
  labels: {kubernetes.io/service-name: app}
ports: [{name: http, port: 8080}, {name: https-api, port: 8443}]
endpoints:
  - addresses: [10.0.0.1, 10.0.0.2]
---
"""


def test_native_lb_uses_the_cluster_ip_and_the_service_port_not_the_endpoints() -> None:
    service = servers_of(SERVICE % "10.96.0.10" + route("{name: app, port: 80, nativeLB: true}"))
    assert service.servers == ("http://10.96.0.10:80",)
    assert service.source == "nativeLB (clusterIP)"


def test_without_native_lb_the_same_service_balances_its_endpoints() -> None:
    service = servers_of(SERVICE % "10.96.0.10" + route("{name: app, port: 80, nativeLB: false}"))
    assert service.servers == ("http://10.0.0.1:8080", "http://10.0.0.2:8080")


def test_native_lb_by_port_name_keeps_the_port_scheme_rule() -> None:
    text = SERVICE % "10.96.0.10" + route("{name: app, port: https-api, nativeLB: true}")
    assert servers_of(text).servers == ("https://10.96.0.10:443",)


def test_native_lb_brackets_an_ipv6_cluster_ip() -> None:
    text = SERVICE % '"fd00::a"' + route("{name: app, port: 80, nativeLB: true}")
    assert servers_of(text).servers == ("http://[fd00::a]:80",)


def test_native_lb_on_a_headless_service_is_an_error_as_in_traefik() -> None:
    assert errors(SERVICE % '"None"' + route("{name: app, port: 80, nativeLB: true}")) == [
        "routes.yaml:27: IngressRoute default/r: spec.routes[0].services[0].nativeLB: "
        "getting native Kubernetes Service address: no clusterIP on headless service: "
        "default/app"
    ]


def test_native_lb_without_a_cluster_ip_is_an_error_as_in_traefik() -> None:
    text = SERVICE.replace("  clusterIP: %s\n", "") + route("{name: app, port: 80, nativeLB: true}")
    assert errors(text) == [
        "routes.yaml:26: IngressRoute default/r: spec.routes[0].services[0].nativeLB: "
        "getting native Kubernetes Service address: no clusterIP found for service: "
        "default/app"
    ]


def test_an_explicit_backend_still_wins_over_native_lb() -> None:
    text = SERVICE % "10.96.0.10" + route("{name: app, port: 80, nativeLB: true}")
    service = servers_of(text, backends={"default/app:http": "http://127.0.0.1:9001"})
    assert service.servers == ("http://127.0.0.1:9001",)


def test_native_lb_without_a_service_document_is_the_cluster_dns_name_of_the_cluster_ip() -> None:
    service = servers_of(route("{name: app, port: 80, nativeLB: true}"))
    assert service.servers == ("http://app.default.svc:80",)
    assert service.source == "cluster DNS"


def test_native_lb_on_an_external_name_service_keeps_the_external_name() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {type: ExternalName, externalName: example.org, ports: [{port: 80}]}
---
""" + route("{name: app, port: 80, nativeLB: true}")
    assert servers_of(text).servers == ("http://example.org:80",)


def test_native_lb_is_accepted_wherever_traefik_reads_a_service_reference() -> None:
    text = (
        SERVICE % "10.96.0.10"
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
    assert errors(route('{name: app, port: 80, nativeLB: "yes"}')) == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].nativeLB: "
        'must be true or false, got "yes"'
    ]


def test_cluster_ip_of_a_service_must_be_a_string() -> None:
    (message,) = errors(SERVICE % "[10.0.0.1]" + route("{name: app, port: 80}"))
    assert message.startswith("routes.yaml:5: Service default/app: spec.clusterIP: ")
