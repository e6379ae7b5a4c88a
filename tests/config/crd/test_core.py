"""Core Kubernetes kinds (Service, EndpointSlice...): read leniently, the fields used for
routing checked."""

from __future__ import annotations

from tests.support.config import errors
from tests.support.manifests import APP_SERVICE_AND_SLICE, SHOP_ROUTE, SHOP_SERVICE, one_route
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config import ServersService


def test_endpoint_slices_map_the_service_port_through_its_name() -> None:
    slices = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels: {kubernetes.io/service-name: web}
ports: [{name: http, port: 8080}, {name: https-api, port: 9443}]
endpoints:
  - addresses: [10.0.0.1]
    conditions: {ready: true}
  - addresses: [10.0.0.2]
    conditions: {serving: false}
  - addresses: [10.0.0.3, 10.0.0.1]
  - addresses: [10.0.0.4]
    conditions: {ready: false}  # no `serving`: Traefik counts it as serving
---
"""
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
