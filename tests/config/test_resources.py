"""Documents dispatched by apiVersion and kind: both Traefik API groups, a resource in both
is the traefik.io one, one defined twice in a group is an error."""

from __future__ import annotations

import pytest

from tests.support.manifests import SHOP_ROUTE, SHOP_SERVICE
from traefikservice_asgi import ConfigError, load_config_text


def test_both_api_groups_are_read() -> None:
    text = (SHOP_ROUTE % "80").replace("traefik.io/v1alpha1", "traefik.containo.us/v1alpha1")
    assert len(load_config_text(SHOP_SERVICE + text).routes) == 1


@pytest.mark.parametrize("io_first", [True, False])
def test_a_resource_in_both_api_groups_is_the_traefik_io_one(io_first: bool) -> None:
    io = (SHOP_ROUTE % "80").replace("shop.test", "io.test")
    legacy = (SHOP_ROUTE % "80").replace("traefik.io/", "traefik.containo.us/")
    documents = [io, legacy] if io_first else [legacy, io]
    config = load_config_text(
        SHOP_SERVICE + "---\n".join(documents), backends={"shop/web:80": "http://127.0.0.1:9"}
    )
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
