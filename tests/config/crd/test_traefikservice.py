"""TraefikService: ``weighted``, ``mirroring``, ``failover`` and ``highestRandomWeight``
loaded as Traefik's CRD provider reads them, every mistake reported with file, line,
resource and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config import errors
from traefikservice_asgi import ConfigError, load_config, load_config_text
from traefikservice_asgi.config import FailoverService, HRWService, ServersService

# Traefik's own CRD fixtures, vendored (see traefik_fixtures/README.md).
FIXTURES = Path(__file__).parents[1] / "traefik_fixtures"


FAILOVER = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: fo, namespace: default}
spec:
  failover:
    service: {name: app-v1, port: 80}
    fallback: {name: spare, kind: TraefikService}
    errors:
      status: ["500-504", "404"]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: spare, namespace: default}
spec:
  weighted:
    services: [{name: app-v2, port: 80}]
"""


HRW = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: hrw, namespace: default}
spec:
  highestRandomWeight:
    services:
      - {name: app-v1, port: 80, weight: 10}
      - {name: fo, kind: TraefikService}
---
"""


def test_failover_loads_with_traefik_names_ranges_and_default_body_limit() -> None:
    config = load_config_text(FAILOVER)
    fo = config.services["default-fo"]
    assert isinstance(fo, FailoverService)
    assert (fo.main_name, fo.fallback_name) == ("default-app-v1-80", "default-spare")
    assert fo.status == ((500, 504), (404, 404))
    assert fo.max_request_body_bytes == -1
    assert isinstance(fo.main, ServersService)
    assert fo.fallback is config.services["default-spare"]


def test_failover_max_request_body_bytes_is_read() -> None:
    text = FAILOVER.replace('"404"]', '"404"]\n      maxRequestBodyBytes: 1048576')
    fo = load_config_text(text).services["default-fo"]
    assert isinstance(fo, FailoverService) and fo.max_request_body_bytes == 1048576


def test_hrw_loads_children_with_traefik_names_and_default_weight_1() -> None:
    config = load_config_text(HRW + FAILOVER)
    hrw = config.services["default-hrw"]
    assert isinstance(hrw, HRWService)
    assert [(c.name, c.weight) for c in hrw.children] == [
        ("default-app-v1-80", 10),
        ("default-fo", 1),
    ]
    assert hrw.children[1].service is config.services["default-fo"]


def test_traefiks_failover_with_errors_fixture_loads() -> None:
    config = load_config(FIXTURES / "with_failover_errors.yml")
    (route,) = config.routes
    assert isinstance(route.service, FailoverService)
    assert route.service.status == ((500, 504), (404, 404))
    assert route.service.max_request_body_bytes == 1048576


def test_traefiks_hrw_fixture_loads() -> None:
    (route,) = load_config(FIXTURES / "with_highest_random_weight.yml").routes
    assert isinstance(route.service, HRWService)
    assert [(c.name, c.weight) for c in route.service.children] == [
        ("default-whoami1-8080", 10),
        ("default-whoami2-8080", 20),
    ]


@pytest.mark.parametrize("fixture", ["with_failover.yml", "with_failover2.yml"])
def test_traefiks_failover_fixtures_without_status_are_refused_as_traefik_refuses_them(
    fixture: str,
) -> None:
    # Traefik 3.7.15 disables the router: "cannot register default-whoami5-8080 as
    # updater for default-failover1: healthCheck not enabled in config for this WRR service".
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / fixture)
    (issue,) = info.value.issues
    assert str(issue).endswith(
        "TraefikService default/failover1: spec.failover.errors: required field is missing: "
        'set the statuses to fail over on, e.g. ["500-599"] (without them Traefik fails '
        "over only when the main service is a Service reference with a healthCheck)"
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ('"5xx"', 'must be a status or a range like "500-599", got "5xx"'),
        ("502", 'must be a status or a range like "500-599", got 502'),
        ('"500-599-600"', 'must be a status or a range like "500-599", got "500-599-600"'),
        ('" 502"', 'must be a status or a range like "500-599", got " 502"'),
        ('"599-500"', 'range "599-500" is empty: write the lower status first'),
    ],
)
def test_bad_status_is_located_at_its_list_item(written: str, message: str) -> None:
    text = FAILOVER.replace('"404"]', f"{written}]")
    assert errors(text) == [f"routes.yaml:9: TraefikService default/fo: spec.failover.errors.status[1]: {message}"]  # fmt: skip


def test_missing_errors_status_is_required() -> None:
    text = FAILOVER.replace('status: ["500-504", "404"]', "maxRequestBodyBytes: 10")
    (message,) = errors(text)
    assert message.startswith(
        "routes.yaml:9: TraefikService default/fo: spec.failover.errors.status: "
        "required field is missing:"
    )


def test_empty_status_list_is_an_error() -> None:
    text = FAILOVER.replace('["500-504", "404"]', "[]")
    assert errors(text) == [
        "routes.yaml:9: TraefikService default/fo: spec.failover.errors.status: "
        "must list at least one status or range"
    ]


def test_max_request_body_bytes_below_minus_one_is_an_error() -> None:
    text = FAILOVER.replace('"404"]', '"404"]\n      maxRequestBodyBytes: -2')
    assert errors(text) == [
        "routes.yaml:10: TraefikService default/fo: spec.failover.errors.maxRequestBodyBytes: "
        "must be an integer >= -1, got -2"
    ]


def test_missing_fallback_and_unknown_failover_field_are_reported_together() -> None:
    text = FAILOVER.replace(
        "    fallback: {name: spare, kind: TraefikService}\n", "    healthCheck: {}\n"
    )
    assert errors(text) == [
        "routes.yaml:6: TraefikService default/fo: spec.failover.fallback: "
        "required field is missing",
        'routes.yaml:7: TraefikService default/fo: spec.failover.healthCheck: unknown field "healthCheck"',
    ]


def test_failover_references_are_checked_like_any_other() -> None:
    text = FAILOVER.replace(
        "{name: spare, kind: TraefikService}", "{name: ghost, kind: TraefikService}"
    )
    assert errors(text) == [
        "routes.yaml:7: TraefikService default/fo: spec.failover.fallback.name: "
        "TraefikService default/ghost not found"
    ]


def test_cross_namespace_fallback_is_refused_unless_allowed() -> None:
    text = FAILOVER.replace(
        "{name: app-v1, port: 80}", "{name: app-v1, port: 80, namespace: other}"
    )
    (message,) = errors(text)
    assert message.startswith(
        "routes.yaml:6: TraefikService default/fo: spec.failover.service.namespace:"
    )
    assert "service other/app-v1 not in the parent resource namespace default" in message
    assert load_config_text(text, allow_cross_namespace=True).services["default-fo"]


def test_a_cycle_through_failover_and_hrw_is_reported_with_the_chain() -> None:
    text = HRW + FAILOVER.replace(
        "{name: spare, kind: TraefikService}", "{name: hrw, kind: TraefikService}"
    )
    (message,) = errors(text)
    assert "reference cycle: default/hrw -> default/fo -> default/hrw" in message


def test_hrw_without_services_and_with_a_bad_weight_are_located() -> None:
    text = HRW.replace("weight: 10", "weight: -1")
    assert errors(text + FAILOVER) == [
        "routes.yaml:7: TraefikService default/hrw: spec.highestRandomWeight.services[0].weight: "
        "must be an integer >= 0, got -1"
    ]
    bare = "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: h}\nspec:\n  highestRandomWeight: {}\n"
    assert errors(bare) == [
        "routes.yaml:5: TraefikService default/h: spec.highestRandomWeight.services: "
        "required field is missing"
    ]


def test_two_service_types_in_one_spec_are_refused() -> None:
    text = FAILOVER.replace(
        "spec:\n  failover:", "spec:\n  highestRandomWeight: {services: []}\n  failover:", 1
    )
    assert errors(text) == [
        "routes.yaml:5: TraefikService default/fo: spec: only one service type may be set, "
        "got failover, highestRandomWeight"
    ]
