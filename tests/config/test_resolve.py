"""From resources to the service graph: Traefik's names, servers found as Kubernetes and
Traefik find them (backends, endpoints, ExternalName, cluster DNS, nativeLB), references
followed and cycles refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config import errors, servers_of
from tests.support.manifests import (
    APP_SERVICE_AND_SLICE,
    CYCLE,
    SHOP_ROUTE,
    SHOP_SERVICE,
    WRR,
    one_route,
)
from traefikservice_asgi import ConfigError, load_config, load_config_text
from traefikservice_asgi.config import MirroringService, ServersService, WeightedService, normalize
from traefikservice_asgi.config.resolve import default_cookie_name

BLOG = Path(__file__).resolve().parents[2] / "examples" / "blog"


def test_blog_services_resolve_to_traefiks_names_and_endpoints() -> None:
    config = load_config(BLOG)
    wrr = config.services["default-wrr"]
    assert isinstance(wrr, WeightedService)
    assert [(c.name, c.weight) for c in wrr.children] == [
        ("default-app-v1-80", 1),
        ("default-app-v2-80", 2),
    ]
    v1 = wrr.children[0].service
    assert isinstance(v1, ServersService)
    assert v1.servers == ("http://127.0.0.1:9001",) and v1.source == "endpoints"
    sticky = config.services["default-cokie"]
    assert isinstance(sticky, WeightedService) and sticky.sticky is not None
    assert sticky.sticky.name == "cookie"
    copy = config.services["default-copy"]
    assert isinstance(copy, MirroringService)
    assert [(m.name, m.percent) for m in copy.mirrors] == [("default-app-v2-80", 10)]


def test_explicit_backend_mapping_wins_over_endpoints() -> None:
    config = load_config(BLOG, backends={"default/app-v1:80": "http://127.0.0.1:7001"})
    v1 = config.services["default-app-v1-80"]
    assert isinstance(v1, ServersService) and v1.servers == ("http://127.0.0.1:7001",)


def test_backend_mapping_accepts_the_port_name_for_a_numbered_reference() -> None:
    config = load_config(BLOG, backends={"default/app-v2:http": "http://127.0.0.1:7002"})
    v2 = config.services["default-app-v2-80"]
    assert isinstance(v2, ServersService) and v2.servers == ("http://127.0.0.1:7002",)


def test_without_endpoints_a_service_falls_back_to_cluster_dns() -> None:
    config = load_config(sorted(BLOG.glob("app-*.yaml")))
    v1 = config.services["default-app-v1-80"]
    assert isinstance(v1, ServersService)
    assert v1.servers == ("http://app-v1.default.svc:80",) and v1.source == "cluster DNS"


def test_external_name_service_resolves_to_its_host() -> None:
    text = (
        """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: ExternalName, externalName: example.org, ports: [{port: 443}]}
---
"""
        + SHOP_ROUTE % "443"
    )
    (route,) = load_config_text(text, allow_external_name_services=True).routes
    assert isinstance(route.service, ServersService)
    assert route.service.servers == ("https://example.org:443",)


def test_external_name_service_is_refused_without_the_option_as_in_traefik() -> None:
    text = (
        """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: ExternalName, externalName: example.org, ports: [{port: 443}]}
---
"""
        + SHOP_ROUTE % "443"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename="r.yaml")
    (issue,) = info.value.issues
    assert str(issue).endswith(
        "services[0].name: externalName services not allowed: shop/web "
        "(enable allow_external_name_services, --allow-external-name-services, to allow it)"
    )


def test_route_key_and_priority_follow_traefik() -> None:
    (route,) = load_config_text(SHOP_SERVICE + SHOP_ROUTE % "80").routes
    assert route.name.startswith("shop-r-") and len(route.name) == len("shop-r-") + 20
    assert route.priority == len("Host(`shop.test`)")


def test_normalize_joins_runs_of_non_alphanumerics_with_dashes() -> None:
    assert normalize("default-app.v1-80") == "default-app-v1-80"
    assert normalize("a__b--c") == "a-b-c"


def test_default_cookie_name_hashes_the_provider_qualified_service() -> None:
    assert default_cookie_name("/my/BACKEND-v1.0~rc1") == "_5f7bc"  # cookie_test.go
    assert default_cookie_name("wrr-sticky-default@file") == "_964af"  # observed
    assert default_cookie_name("lb2@file") == "_93e29"  # observed


def test_unknown_traefik_service_reference_is_an_error() -> None:
    text = (
        WRR.replace("weight: -2", "weight: 2")
        + """\
      - name: ghost
        kind: TraefikService
"""
    )
    assert errors(text) == [
        "routes.yaml:15: TraefikService default/wrr: spec.weighted.services[2].name: "
        "TraefikService default/ghost not found"
    ]


def test_reference_cycle_is_reported_with_the_chain() -> None:
    (message,) = errors(CYCLE)
    assert "reference cycle: default/a -> default/b -> default/a" in message
    assert message.startswith("routes.yaml:14: TraefikService default/b: spec.mirroring.name: ")


def test_cross_namespace_reference_is_refused_unless_allowed() -> None:
    text = WRR.replace("weight: -2", "weight: 2\n        namespace: other")
    (message,) = errors(text)
    assert "service other/app-v2 not in the parent resource namespace default" in message
    assert load_config_text(text, allow_cross_namespace=True).services


# ------------------------------------------------------------------------ nativeLB


def test_native_lb_uses_the_cluster_ip_and_the_service_port_not_the_endpoints() -> None:
    service = servers_of(
        APP_SERVICE_AND_SLICE % "10.96.0.10" + one_route("{name: app, port: 80, nativeLB: true}")
    )
    assert service.servers == ("http://10.96.0.10:80",)
    assert service.source == "nativeLB (clusterIP)"


def test_without_native_lb_the_same_service_balances_its_endpoints() -> None:
    service = servers_of(
        APP_SERVICE_AND_SLICE % "10.96.0.10" + one_route("{name: app, port: 80, nativeLB: false}")
    )
    assert service.servers == ("http://10.0.0.1:8080", "http://10.0.0.2:8080")


def test_native_lb_by_port_name_keeps_the_port_scheme_rule() -> None:
    text = APP_SERVICE_AND_SLICE % "10.96.0.10" + one_route(
        "{name: app, port: https-api, nativeLB: true}"
    )
    assert servers_of(text).servers == ("https://10.96.0.10:443",)


def test_native_lb_brackets_an_ipv6_cluster_ip() -> None:
    text = APP_SERVICE_AND_SLICE % '"fd00::a"' + one_route("{name: app, port: 80, nativeLB: true}")
    assert servers_of(text).servers == ("http://[fd00::a]:80",)


def test_native_lb_on_a_headless_service_is_an_error_as_in_traefik() -> None:
    assert errors(
        APP_SERVICE_AND_SLICE % '"None"' + one_route("{name: app, port: 80, nativeLB: true}")
    ) == [
        "routes.yaml:27: IngressRoute default/r: spec.routes[0].services[0].nativeLB: "
        "getting native Kubernetes Service address: no clusterIP on headless service: "
        "default/app"
    ]


def test_native_lb_without_a_cluster_ip_is_an_error_as_in_traefik() -> None:
    text = APP_SERVICE_AND_SLICE.replace("  clusterIP: %s\n", "") + one_route(
        "{name: app, port: 80, nativeLB: true}"
    )
    assert errors(text) == [
        "routes.yaml:26: IngressRoute default/r: spec.routes[0].services[0].nativeLB: "
        "getting native Kubernetes Service address: no clusterIP found for service: "
        "default/app"
    ]


def test_an_explicit_backend_still_wins_over_native_lb() -> None:
    text = APP_SERVICE_AND_SLICE % "10.96.0.10" + one_route("{name: app, port: 80, nativeLB: true}")
    service = servers_of(text, backends={"default/app:http": "http://127.0.0.1:9001"})
    assert service.servers == ("http://127.0.0.1:9001",)


def test_native_lb_without_a_service_document_is_the_cluster_dns_name_of_the_cluster_ip() -> None:
    service = servers_of(one_route("{name: app, port: 80, nativeLB: true}"))
    assert service.servers == ("http://app.default.svc:80",)
    assert service.source == "cluster DNS"


def test_native_lb_on_an_external_name_service_keeps_the_external_name() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {type: ExternalName, externalName: example.org, ports: [{port: 80}]}
---
""" + one_route("{name: app, port: 80, nativeLB: true}")
    assert servers_of(text, allow_external_name_services=True).servers == ("http://example.org:80",)


NODE_PORT = """\
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {type: NodePort, clusterIP: 10.0.0.1, ports: [{name: web, port: 80, nodePort: 32456}]}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  addresses:
  - {type: Hostname, address: n1}
  - {type: InternalIP, address: 172.16.4.4}
  - {type: InternalIP, address: "fd00::4"}
---
"""


def test_node_port_lb_sends_to_every_nodes_internal_ip_at_the_node_port() -> None:
    text = NODE_PORT + one_route("{name: app, port: 80, nodePortLB: true}")
    assert servers_of(text).servers == ("http://172.16.4.4:32456", "http://[fd00::4]:32456")


def test_node_port_lb_without_node_documents_is_traefiks_error() -> None:
    text = (
        NODE_PORT.split("---")[0] + "---\n" + one_route("{name: app, port: 80, nodePortLB: true}")
    )
    (message,) = errors(text)
    assert message.endswith("nodePortLB: nodes not found for NodePort service default/app")


def test_node_port_lb_on_a_cluster_ip_service_uses_the_endpoints_as_traefik() -> None:
    text = NODE_PORT.replace("type: NodePort", "type: ClusterIP") + one_route(
        "{name: app, port: 80, nodePortLB: true}"
    )
    assert servers_of(text).source == "cluster DNS"


OWN_WRR = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: wrr, namespace: default}
spec: {weighted: {services: [{name: app, port: 80}]}}
---
"""


@pytest.mark.parametrize("name", ["wrr@kubernetescrd", "default-wrr@kubernetescrd"])
def test_a_kubernetescrd_reference_is_this_providers_traefik_service(name: str) -> None:
    (route,) = load_config_text(
        OWN_WRR + one_route(f"{{name: {name}, kind: TraefikService}}")
    ).routes
    assert route.service.name == "default-wrr"


def test_a_reference_to_another_provider_is_refused() -> None:
    (message,) = errors(OWN_WRR + one_route("{name: wrr@file, kind: TraefikService}"))
    assert message.endswith(
        "services[0].name: cross-provider reference \"wrr@file\": there is no 'file' "
        "provider here, only Kubernetes CRD resources (kubernetescrd)"
    )
