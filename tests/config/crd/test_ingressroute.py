"""IngressRoute: rules compiled where they are written; what Traefik routes do that this
package does not is refused, naming the field."""

from __future__ import annotations

import pytest

from tests.support.config import errors
from tests.support.manifests import one_route
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config.models import RouteObservability

ROUTE = one_route("{name: s, port: 80}")


def test_bad_match_rule_is_an_error_at_the_match_field() -> None:
    (message,) = errors(ROUTE.replace("Host(`x.test`)", "Hots(`x`)"))
    assert message.startswith(
        "routes.yaml:6: IngressRoute default/r: spec.routes[0].match: invalid rule:"
    )
    assert "Hots" in message


def test_a_route_middleware_that_does_not_exist_is_an_error_at_its_reference() -> None:
    text = ROUTE.replace(
        "      services:\n", "      middlewares: [{name: auth}]\n      services:\n"
    )
    (message,) = errors(text)
    assert message == (
        "routes.yaml:7: IngressRoute default/r: spec.routes[0].middlewares[0].name: "
        'middleware "default-auth@kubernetescrd" does not exist'
    )


def test_route_priority_defaults_to_the_rule_length_as_in_traefik() -> None:
    (route,) = load_config_text(ROUTE).routes
    assert route.priority == len("Host(`x.test`)")
    (route,) = load_config_text(
        ROUTE.replace("    - match:", "    - priority: 7\n      match:")
    ).routes
    assert route.priority == 7


def test_route_observability_is_kept_on_the_route_without_effect() -> None:
    text = ROUTE.replace(
        "      services:\n",
        "      observability: {accessLogs: false, tracing: true, traceVerbosity: detailed}\n"
        "      services:\n",
    )
    (route,) = load_config_text(text).routes
    assert route.observability == RouteObservability(
        access_logs=False, metrics=None, tracing=True, trace_verbosity="detailed"
    )
    (plain,) = load_config_text(ROUTE).routes
    assert plain.observability is None


def test_route_observability_flags_must_be_booleans() -> None:
    text = ROUTE.replace(
        "      services:\n", "      observability: {metrics: 'yes'}\n      services:\n"
    )
    (message,) = errors(text)
    assert message == (
        "routes.yaml:7: IngressRoute default/r: spec.routes[0].observability.metrics: "
        'must be true or false, got "yes"'
    )


def _classed(field: str = "", annotation: str = "") -> str:
    text = ROUTE
    if annotation:
        text = text.replace(
            "metadata: {name: r, namespace: default}",
            "metadata:\n  name: r\n  namespace: default\n  annotations:\n"
            f"    kubernetes.io/ingress.class: {annotation}",
        )
    if field:
        text = text.replace("spec:\n", f"spec:\n  ingressClassName: {field}\n")
    return text


@pytest.mark.parametrize(
    ("field", "annotation", "provider_class", "served"),
    [
        # Traefik's shouldProcessIngress(getIngressClassName(field, annotation)).
        ("", "", "", True),
        ("traefik", "", "", True),
        ("traefik-lb", "", "", False),
        ("traefik-lb", "", "traefik-lb", True),
        ("", "traefik-lb", "traefik-lb", True),
        ("", "", "traefik-lb", False),
        ("traefik-lb", "traefik", "traefik-lb", True),  # the field wins
        ("traefik-lb", "traefik", "", False),
        ("", "traefik", "", True),
    ],
)
def test_ingress_class_selects_routes_as_traefiks_crd_provider(
    field: str, annotation: str, provider_class: str, served: bool
) -> None:
    config = load_config_text(_classed(field, annotation), ingress_class=provider_class)
    assert bool(config.routes) is served
    skipped = [w for w in config.warnings if "ingress class" in w.message]
    assert bool(skipped) is not served


def test_the_deprecated_class_annotation_is_warned_about_as_in_traefik() -> None:
    config = load_config_text(_classed(annotation="traefik"))
    assert any("deprecated annotation" in w.message for w in config.warnings)
