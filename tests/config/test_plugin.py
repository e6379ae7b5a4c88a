"""The ``plugin`` middleware's configuration: read as JSON, its ``urn:k8s:secret:``
values resolved as Traefik's CRD provider resolves them (the values pinned are those of
Traefik's own ``kubernetes_test.go`` for its ``with_plugin_*.yml`` fixtures), and a
route's plugin checked against what the runtime provides."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config import errors, middleware_errors, middleware_route
from traefikservice_asgi import load_config_text
from traefikservice_asgi.config.middlewares import Plugin

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "traefik-crd-fixtures"
BACKENDS = {"default/app:80": "http://127.0.0.1:9"}
ROUTE = (
    "\n---\n{apiVersion: traefik.io/v1alpha1, kind: IngressRoute, metadata: {name: shop}, "
    "spec: {routes: [{match: Host(`a.test`), middlewares: [{name: test-secret}], "
    "services: [{name: app, port: 80}]}]}}\n"
)


def plugin_of(text: str, **options: object) -> Plugin:
    config = load_config_text(text, backends=BACKENDS, **options)  # type: ignore[arg-type]
    spec = config.routes[0].middlewares[0].spec
    assert isinstance(spec, Plugin)
    return spec


# kubernetes_test.go's expected dynamic configuration, fixture by fixture.
TRAEFIK_EXPECTED = {
    "with_plugin_read_secret.yml": {"user": "admin", "secret": "this_is_the_secret"},
    "with_plugin_deep_read_secret.yml": {
        "secret_0": {
            "secret_1": {"secret_2": {"user": "admin", "secret": "this_is_the_very_deep_secret"}}
        }
    },
    "with_plugin_read_array_of_secret.yml": {"secret": ["secret_data1", "secret_data2"]},
    "with_plugin_read_array_of_map_contain_secret.yml": {
        "users": [
            {"name": "admin", "secret": "admin_password"},
            {"name": "user", "secret": "user_password"},
        ]
    },
}


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
@pytest.mark.parametrize("name", sorted(TRAEFIK_EXPECTED))
def test_traefiks_plugin_fixtures_resolve_their_secrets_as_traefik_does(name: str) -> None:
    spec = plugin_of((FIXTURES / name).read_text() + ROUTE)
    assert spec.name == "test-secret"
    assert spec.config == TRAEFIK_EXPECTED[name]


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_a_secret_that_does_not_exist_skips_the_middleware_as_traefiks_provider_does() -> None:
    # kubernetes.go logs "Error while reading plugins middleware" and skips it
    # (kubernetes_test.go: no middleware at all); a router using it is not served.
    text = (FIXTURES / "with_plugin_read_not_exist_secret.yml").read_text()
    config = load_config_text(text, filename="routes.yaml")
    assert config.routes == () and [str(w) for w in config.warnings] == [
        "routes.yaml:1: Middleware default/test-secret: spec.plugin.test-secret.secret: "
        "secret default/notfound is not found: no route uses this Middleware; one that does "
        "is refused (Traefik's provider skips this Middleware, and a router using it is not "
        "served: the middleware does not exist)"
    ]
    (issue,) = errors(text + ROUTE)
    assert issue.startswith(
        "routes.yaml:1: Middleware default/test-secret: spec.plugin.test-secret.secret: "
        "secret default/notfound is not found (used by routes.yaml:"
    )
    assert issue.endswith(
        " (IngressRoute default/shop spec.routes[0].middlewares[0]); Traefik's provider skips "
        "this Middleware, and a router using it is not served: the middleware does not exist)"
    )


SECRET = (
    "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n"
    "stringData: {k: v}\n"
)


def test_a_malformed_urn_and_a_missing_key_are_traefiks_errors() -> None:
    spec = "{plugin: {p: {a: [x, 'urn:k8s:secret:s:k:extra']}}}"
    assert (
        'spec.plugin.p.a[1]: malformed secret URN "urn:k8s:secret:s:k:extra" (used by '
        in errors(middleware_route(spec) + SECRET)[0]
    )
    spec = "{plugin: {p: {a: {b: 'urn:k8s:secret:s:nokey'}}}}"
    assert (
        'spec.plugin.p.a.b: key "nokey" not found in secret default/s (used by '
        in errors(middleware_route(spec) + SECRET)[0]
    )


def test_only_values_are_resolved_and_every_json_type_is_kept() -> None:
    spec = (
        "{plugin: {p: {'urn:k8s:secret:s:k': 'urn:k8s:secret:s:k', n: 3, f: 1.5, t: true, "
        "z: null, 1: one, l: [urn:k8s:secret:s:k, 2], text: 'urn:k8s:secretx'}}}"
    )
    spec_ = plugin_of(middleware_route(spec) + SECRET)
    assert spec_.config == {
        "urn:k8s:secret:s:k": "v",
        "n": 3,
        "f": 1.5,
        "t": True,
        "z": None,
        "1": "one",
        "l": ["v", 2],
        "text": "urn:k8s:secretx",
    }


def test_each_caller_gets_its_own_copy_and_secrets_stay_out_of_repr() -> None:
    spec = plugin_of(middleware_route("{plugin: {p: {s: 'urn:k8s:secret:s:k'}}}") + SECRET)
    first = spec.config
    first["s"] = "changed"
    assert spec.config == {"s": "v"}
    assert "v" not in repr(spec).replace("Plugin", "")


def test_a_null_configuration_is_an_empty_one() -> None:
    assert plugin_of(middleware_route("{plugin: {p: null}}")).config == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "{plugin: {}}",
            "spec.plugin: names 0 plugins: a plugin middleware names exactly one (Traefik: "
            "invalid configuration: no configuration or too many plugin definition)",
        ),
        ("{plugin: {a: {}, b: {}}}", "spec.plugin: names 2 plugins"),
        ("{plugin: [a]}", "spec.plugin: must be a mapping of a plugin's name to its"),
        ("{plugin: {'': {}}}", "a plugin's name must be a non-empty string"),
        ("{plugin: {p: [1]}}", "spec.plugin.p: the plugin's configuration must be a mapping"),
        ("{plugin: {p: {x: .nan}}}", "spec.plugin.p.x: nan is not a JSON number"),
        ("{plugin: {p: {x: !!binary aGk=}}}", "spec.plugin.p.x: b'hi' is not a JSON value"),
    ],
)
def test_what_traefik_refuses_before_the_plugin_is_a_located_error(spec: str, message: str) -> None:
    found = middleware_errors(spec)
    assert any(message in line for line in found), found


def lookup(name: str) -> str | None:
    return None if name == "known" else f"unknown plugin type: {name}"


def test_a_route_using_a_plugin_the_runtime_lacks_is_an_error_at_its_reference() -> None:
    text = middleware_route("{plugin: {missing: {}}}")
    assert errors(text, backends=BACKENDS, plugins=lookup) == [
        "routes.yaml:12: IngressRoute default/shop: spec.routes[0].middlewares[0].name: "
        'middleware "default-auth@kubernetescrd": plugin: unknown plugin type: missing'
    ]
    assert plugin_of(middleware_route("{plugin: {known: {}}}"), plugins=lookup).name == "known"


def test_a_plugin_no_route_uses_is_not_checked_and_without_a_lookup_none_is() -> None:
    alone = (
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: m}\n"
        "spec: {plugin: {missing: {}}}\n"
    )
    assert load_config_text(alone, plugins=lookup).warnings == ()
    assert plugin_of(middleware_route("{plugin: {missing: {}}}")).name == "missing"
