"""Core Kubernetes kinds (Service, EndpointSlice...): read leniently, the fields used for
routing checked."""

from __future__ import annotations

from tests.support.config import errors
from tests.support.manifests import APP_SERVICE_AND_SLICE, SHOP_ROUTE, SHOP_SERVICE, one_route
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config import ServersService


def web_slice(name: str, endpoints: str, ports: str = "[{name: http, port: 8080}]") -> str:
    """An EndpointSlice of Service ``shop/web`` with these ``endpoints`` (YAML items)."""
    return f"""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: shop
  labels: {{kubernetes.io/service-name: web}}
ports: {ports}
endpoints:{endpoints}---
"""


def test_endpoint_slices_map_the_service_port_through_its_name() -> None:
    slices = web_slice(
        "web-abc",
        """
  - addresses: [10.0.0.1]
    conditions: {ready: true}
  - addresses: [10.0.0.2]
    conditions: {serving: false}
  - addresses: [10.0.0.3, 10.0.0.1]
  - addresses: [10.0.0.4]
    conditions: {ready: false}  # no `serving`: Traefik counts it as serving
""",
        ports="[{name: http, port: 8080}, {name: https-api, port: 9443}]",
    )
    config = load_config_text(SHOP_SERVICE + slices + SHOP_ROUTE % "80")
    (route,) = config.routes
    assert isinstance(route.service, ServersService)
    assert route.service.servers == (
        "http://10.0.0.1:8080",
        "http://10.0.0.3:8080",
        "http://10.0.0.4:8080",
    )
    config = load_config_text(SHOP_SERVICE + slices + SHOP_ROUTE % "https-api")
    assert isinstance(config.routes[0].service, ServersService)
    assert config.routes[0].service.servers == (
        "https://10.0.0.1:9443",
        "https://10.0.0.3:9443",
        "https://10.0.0.4:9443",
    )


def test_cluster_ip_of_a_service_must_be_a_string() -> None:
    (message,) = errors(APP_SERVICE_AND_SLICE % "[10.0.0.1]" + one_route("{name: app, port: 80}"))
    assert message.startswith("routes.yaml:5: Service default/app: spec.clusterIP: ")


TERMINATING_SLICES = web_slice(
    "web-abc",
    """
  - addresses: [10.0.0.1]
    conditions: {ready: true, serving: true, terminating: false}
  - addresses: [10.0.0.2]
    conditions: {ready: false, serving: true, terminating: true}
  - addresses: [10.0.0.3]
    conditions: {ready: false, serving: false, terminating: true}
  - addresses: [10.0.0.4]
    conditions: {ready: false}
  - addresses: [10.0.0.1, 10.0.0.5]
    conditions: {serving: true, terminating: true}
""",
) + web_slice("web-def", "\n  - addresses: [10.0.0.2, 10.0.0.6]\n    conditions: {ready: true}\n")


def test_a_terminating_endpoint_still_serving_is_a_fenced_server() -> None:
    # Traefik 3.7 (crd/kubernetes_http.go, loadServers): `serving: false` is left out,
    # `terminating: true` is `Fenced`, whatever `ready` says; the first endpoint naming
    # an address decides (10.0.0.1 is not fenced, 10.0.0.2 stays fenced).
    config = load_config_text(SHOP_SERVICE + TERMINATING_SLICES + SHOP_ROUTE % "80")
    (route,) = config.routes
    service = route.service
    assert isinstance(service, ServersService)
    assert service.servers == tuple(f"http://10.0.0.{n}:8080" for n in (1, 2, 4, 5, 6))
    assert service.fenced == ("http://10.0.0.2:8080", "http://10.0.0.5:8080")


def test_without_a_terminating_endpoint_nothing_is_fenced() -> None:
    text = SHOP_SERVICE + TERMINATING_SLICES.replace("terminating: true", "terminating: false")
    service = load_config_text(text + SHOP_ROUTE % "80").routes[0].service
    assert isinstance(service, ServersService) and service.fenced == ()


def test_endpoint_conditions_must_be_a_mapping_of_booleans() -> None:
    slices = TERMINATING_SLICES.replace(
        "{ready: false, serving: true, terminating: true}", "{serving: yes!, terminating: 1}"
    ).replace("conditions: {ready: false}", "conditions: [ready]")
    messages = errors(SHOP_SERVICE + slices + SHOP_ROUTE % "80")
    where = "routes.yaml:%d: EndpointSlice shop/web-abc: endpoints"
    assert messages == [
        where % 22 + '[1].conditions.serving: must be true or false, got "yes!"',
        where % 22 + "[1].conditions.terminating: must be true or false, got 1",
        where % 26 + "[3].conditions: must be a mapping, got a list",
    ]
