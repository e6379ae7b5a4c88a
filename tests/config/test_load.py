"""Loading the walkthrough's YAML and resolving backends as Kubernetes and Traefik do."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from traefikservice_asgi import ConfigError, ConfigWarning, load_config, load_config_text
from traefikservice_asgi.cli import main
from traefikservice_asgi.config import MirroringService, ServersService, WeightedService, normalize

ROOT = Path(__file__).resolve().parents[2]
BLOG = ROOT / "examples" / "blog"


def test_blog_folder_loads_as_published_and_skips_deployments() -> None:
    config = load_config(BLOG)
    hosts = sorted(r.rule.text for r in config.routes)
    assert hosts == [
        "Host(`traefikservice-cokie.kubesre.lc`)",
        "Host(`traefikservice-copy.kubesre.lc`)",
        "Host(`traefikservice-wrr.kubesre.lc`)",
    ]


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


SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: https-api, port: 8443}
---
"""

ROUTE = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: shop}
spec:
  routes:
    - match: Host(`shop.test`)
      services:
        - {name: web, port: %s}
"""


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
    config = load_config_text(SERVICE + slices + ROUTE % "80")
    (route,) = config.routes
    assert isinstance(route.service, ServersService)
    assert route.service.servers == (
        "http://10.0.0.1:8080",
        "http://10.0.0.3:8080",
        "http://10.0.0.4:8080",
    )
    config = load_config_text(SERVICE + slices + ROUTE % "https-api")
    assert isinstance(config.routes[0].service, ServersService)
    assert config.routes[0].service.servers == (
        "https://10.0.0.1:9443",
        "https://10.0.0.3:9443",
        "https://10.0.0.4:9443",
    )


def test_external_name_service_resolves_to_its_host() -> None:
    text = (
        """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: ExternalName, externalName: example.org, ports: [{port: 443}]}
---
"""
        + ROUTE % "443"
    )
    (route,) = load_config_text(text).routes
    assert isinstance(route.service, ServersService)
    assert route.service.servers == ("https://example.org:443",)


def test_route_key_and_priority_follow_traefik() -> None:
    (route,) = load_config_text(SERVICE + ROUTE % "80").routes
    assert route.name.startswith("shop-r-") and len(route.name) == len("shop-r-") + 20
    assert route.priority == len("Host(`shop.test`)")


def test_both_api_groups_are_read() -> None:
    text = (ROUTE % "80").replace("traefik.io/v1alpha1", "traefik.containo.us/v1alpha1")
    assert len(load_config_text(SERVICE + text).routes) == 1


@pytest.mark.parametrize("io_first", [True, False])
def test_a_resource_in_both_api_groups_is_the_traefik_io_one(io_first: bool) -> None:
    io = (ROUTE % "80").replace("shop.test", "io.test")
    legacy = (ROUTE % "80").replace("traefik.io/", "traefik.containo.us/")
    documents = [io, legacy] if io_first else [legacy, io]
    config = load_config_text(SERVICE + "---\n".join(documents))
    (route,) = config.routes
    assert route.rule.text == "Host(`io.test`)"
    (warning,) = map(str, config.warnings)
    assert (
        "IngressRoute shop/r: defined in both" in warning and "traefik.io/v1alpha1 one" in warning
    )


def test_a_resource_defined_twice_in_one_api_group_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"TraefikService shop/t: defined twice \(first at"):
        load_config_text(
            "---\n".join(
                [
                    "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\n"
                    "metadata: {name: t, namespace: shop}\n"
                    "spec: {weighted: {services: [{name: web, port: 80}]}}\n"
                ]
                * 2
            )
        )


def test_normalize_joins_runs_of_non_alphanumerics_with_dashes() -> None:
    assert normalize("default-app.v1-80") == "default-app-v1-80"
    assert normalize("a__b--c") == "a-b-c"


def test_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file or folder"):
        load_config(tmp_path / "nope.yaml")


SKIPPED_AND_IGNORED = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: mw}
spec: {}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: shop}
spec:
  tls: {}
  routes:
    - match: Host(`shop.test`)
      services: [{name: web, port: 80}]
"""


def test_warnings_are_located_like_errors_and_print_as_before() -> None:
    config = load_config_text(SKIPPED_AND_IGNORED, filename="routes.yaml")
    assert all(isinstance(w, ConfigWarning) for w in config.warnings)
    skipped, tls = config.warnings
    assert (skipped.file, skipped.line, skipped.resource, skipped.path) == (
        "routes.yaml",
        1,
        "Middleware",
        None,
    )
    assert (tls.line, tls.resource, tls.path) == (10, "IngressRoute shop/r", "spec.tls")
    assert [str(w) for w in config.warnings] == [
        "routes.yaml:1: Middleware: skipped, not supported by traefikservice-asgi: "
        "Traefik middlewares are not implemented",
        "routes.yaml:10: IngressRoute shop/r: spec.tls: ignored: TLS is terminated by the "
        "ASGI server (uvicorn --ssl-certfile), not by this package",
    ]


def test_check_prints_each_warning_on_stderr_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(SKIPPED_AND_IGNORED)
    result = CliRunner().invoke(main, ["check", str(tmp_path / "routes.yaml")])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'routes.yaml'}:1: Middleware: skipped, not supported by "
        "traefikservice-asgi: Traefik middlewares are not implemented",
        f"warning: {tmp_path / 'routes.yaml'}:10: IngressRoute shop/r: spec.tls: ignored: "
        "TLS is terminated by the ASGI server (uvicorn --ssl-certfile), not by this package",
    ]
