"""What a reload removed: its series are exported by one more scrape, then dropped; a
name the new configuration still has (or brings back before the scrape) keeps its
series; the names are read from a Config as the metrics label them."""

from __future__ import annotations

from prometheus_client.core import Metric

from traefikservice_asgi import load_config_text
from traefikservice_asgi.observability import ObservabilityOptions
from traefikservice_asgi.observability.metrics import Metrics, MetricsCollector, Row
from traefikservice_asgi.observability.outdated import configured

TWO_ROUTES = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: app, namespace: default}
spec:
  routes:
    - {match: Host(`kept.test`), kind: Rule, services: [{name: split, kind: TraefikService}]}
    - {match: Host(`gone.test`), kind: Rule, services: [{name: c, port: 80}]}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: split, namespace: default}
spec:
  weighted:
    services: [{name: a, port: 80, weight: 1}, {name: b, port: 80, weight: 1}]
"""
ONE_ROUTE = TWO_ROUTES.replace(
    "    - {match: Host(`gone.test`), kind: Rule, services: [{name: c, port: 80}]}\n", ""
).replace("{name: b, port: 80, weight: 1}", "{name: a2, port: 80, weight: 1}")
BACKENDS = {
    "default/a:80": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
    "default/a2:80": "http://127.0.0.1:9003",
    "default/b:80": "http://127.0.0.1:9004",
    "default/c:80": "http://127.0.0.1:9005",
}


def series(metrics: Metrics) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    out = set()
    family: Metric
    for family in MetricsCollector(metrics).collect():
        for sample in family.samples:
            out.add((sample.name, tuple(sorted(sample.labels.items()))))
    return out


def services(found: set[tuple[str, tuple[tuple[str, str], ...]]]) -> set[str]:
    return {dict(labels)["service"] for _, labels in found if "service" in dict(labels)}


def routers(found: set[tuple[str, tuple[tuple[str, str], ...]]]) -> set[str]:
    return {dict(labels)["router"] for _, labels in found if "router" in dict(labels)}


def counted(text: str) -> Metrics:
    """Metrics with one request counted on every router and leaf service of ``text``,
    and every server up."""
    metrics = Metrics(ObservabilityOptions(add_routers_labels=True))
    names = configured(load_config_text(text, backends=BACKENDS))
    metrics.outdated.set_configuration(names)
    routers_, services_ = names
    row_key = (200, "GET", "http")
    for router in routers_:
        metrics.router_rows[(router, "default-split@kubernetescrd")] = {row_key: Row(5)}
    for service, urls in services_.items():
        if urls:
            metrics.service(service).rows[row_key] = Row(5)
        for url in urls:
            metrics.server_up[(service, url)] = 1.0
    return metrics


def test_configured_names_routers_services_and_server_urls() -> None:
    routers_, services_ = configured(load_config_text(TWO_ROUTES, backends=BACKENDS))
    assert len(routers_) == 2
    assert all(r.startswith("default-app-") and r.endswith("@kubernetescrd") for r in routers_)
    assert services_["default-split@kubernetescrd"] == frozenset()
    assert services_["default-a-80@kubernetescrd"] == {
        "http://127.0.0.1:9001",
        "http://127.0.0.1:9002",
    }
    assert services_["default-b-80@kubernetescrd"] == {"http://127.0.0.1:9004"}


def test_removed_series_are_exported_once_more_then_gone() -> None:
    metrics = counted(TWO_ROUTES)
    before = series(metrics)
    assert {"default-b-80@kubernetescrd", "default-split@kubernetescrd"} <= services(before)
    assert len(routers(before)) == 2

    metrics.outdated.set_configuration(configured(load_config_text(ONE_ROUTE, backends=BACKENDS)))
    assert series(metrics) == before  # the scrape after the reload: as Traefik, once more
    after = series(metrics)
    assert "default-b-80@kubernetescrd" not in services(after)
    assert not any(s.endswith("-c-80@kubernetescrd") for s in services(after))
    assert "default-a-80@kubernetescrd" in services(after)
    assert len(routers(after)) == 1
    assert series(metrics) == after  # nothing more goes


def test_a_name_brought_back_before_the_scrape_keeps_its_series() -> None:
    metrics = counted(TWO_ROUTES)
    before = series(metrics)
    config = configured(load_config_text(TWO_ROUTES, backends=BACKENDS))
    metrics.outdated.set_configuration(configured(load_config_text(ONE_ROUTE, backends=BACKENDS)))
    metrics.outdated.set_configuration(config)  # back before any scrape
    series(metrics)
    assert series(metrics) == before


def test_a_removed_server_url_loses_its_server_up_series_only() -> None:
    metrics = counted(TWO_ROUTES)
    fewer = {**BACKENDS, "default/a:80": "http://127.0.0.1:9001"}
    metrics.outdated.set_configuration(configured(load_config_text(TWO_ROUTES, backends=fewer)))
    series(metrics)
    up = {
        dict(labels)["url"]
        for name, labels in series(metrics)
        if name == "traefik_service_server_up"
        and dict(labels)["service"] == "default-a-80@kubernetescrd"
    }
    assert up == {"http://127.0.0.1:9001"}
    assert "default-a-80@kubernetescrd" in services(series(metrics))
