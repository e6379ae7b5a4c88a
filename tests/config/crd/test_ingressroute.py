"""IngressRoute: rules compiled where they are written; what Traefik routes do that this
package does not is refused, naming the field."""

from __future__ import annotations

from tests.support.config import errors
from tests.support.manifests import one_route
from traefikservice_asgi import load_config_text

ROUTE = one_route("{name: s, port: 80}")


def test_bad_match_rule_is_an_error_at_the_match_field() -> None:
    (message,) = errors(ROUTE.replace("Host(`x.test`)", "Hots(`x`)"))
    assert message.startswith(
        "routes.yaml:6: IngressRoute default/r: spec.routes[0].match: invalid rule:"
    )
    assert "Hots" in message


def test_route_middlewares_are_reported_as_not_supported() -> None:
    text = ROUTE.replace(
        "      services:\n", "      middlewares: [{name: auth}]\n      services:\n"
    )
    (message,) = errors(text)
    assert message == (
        "routes.yaml:7: IngressRoute default/r: spec.routes[0].middlewares: "
        "not supported by traefikservice-asgi: Traefik middlewares are not implemented"
    )


def test_route_priority_defaults_to_the_rule_length_as_in_traefik() -> None:
    (route,) = load_config_text(ROUTE).routes
    assert route.priority == len("Host(`x.test`)")
    (route,) = load_config_text(
        ROUTE.replace("    - match:", "    - priority: 7\n      match:")
    ).routes
    assert route.priority == 7
