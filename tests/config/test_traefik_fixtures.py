"""Traefik's own CRD fixtures (``shared/reference/traefik-crd-fixtures`` beside the checkout, copied
from traefik/traefik at fd5a576d): each one's outcome pinned, so that a regression shows.
The table in ``docs/reference/traefik-fixtures.md`` says why each refusal is one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from traefikservice_asgi import ConfigError, load_config, load_config_text
from traefikservice_asgi.config.middlewares import (
    AddPrefix,
    BasicAuth,
    ErrorPage,
    RateLimit,
    StripPrefix,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "traefik-crd-fixtures"

# "loads N": N routes; "refused TEXT": the load fails and TEXT is in one of its issues.
OUTCOMES = {
    "basic_auth_secrets.yml": "loads 0",
    "parent_refs_cross_namespace_allowed.yml": "refused cross-namespace reference to parent",
    "parent_refs_cross_namespace_denied.yml": "refused cross-namespace reference to parent",
    "parent_refs_default_namespace.yml": "loads 1",
    "parent_refs_missing_parent.yml": "refused does not exist",
    "parent_refs_multiple_parents.yml": "loads 2",
    "parent_refs_services.yml": "loads 0",
    "parent_refs_single_parent_multiple_routes.yml": "loads 2",
    "parent_refs_single_parent_single_route.yml": "loads 1",
    "services.yml": "loads 0",
    "simple.yml": "loads 1",
    "with_auth.yml": "loads 0",
    "with_bad_tls_options.yml": "refused got null",
    "with_cross_namespace.yml": "refused not in the parent resource",
    "with_default_tls_options.yml": "loads 1",
    "with_default_tls_options_default_namespace.yml": "loads 1",
    "with_default_tls_store.yml": "loads 1",
    "with_deprecated_annotation_only.yml": "loads 0",
    "with_duplicated_endpointaddresses.yml": "loads 1",
    "with_empty_rule_kind.yml": "refused invalid rule",
    "with_empty_services.yml": "loads 1",
    "with_empty_services_ts.yml": "loads 1",
    "with_error_page.yml": "loads 0",
    "with_error_page_traefik_service.yml": "loads 0",
    "with_externalname.yml": "loads 1",
    "with_externalname_with_http.yml": "loads 1",
    "with_externalname_with_https.yml": "loads 1",
    "with_externalname_without_ports.yml": "refused port: required",
    "with_failover.yml": "refused statuses to fail over",
    "with_failover2.yml": "refused statuses to fail over",
    "with_failover_errors.yml": "loads 1",
    "with_global_native_service_lb.yml": "loads 1",
    "with_highest_random_weight.yml": "loads 1",
    "with_https_default.yml": "loads 1",
    "with_https_scheme.yml": "loads 1",
    "with_ingressclassname.yml": "loads 0",
    "with_ingressclassname_and_deprecated_annotation.yml": "loads 0",
    "with_ipv6.yml": "loads 1",
    "with_leasttime_strategy.yml": "loads 1",
    "with_middleware.yml": "refused cross-namespace are disallowed",
    "with_middleware_cross_namespace.yml": "refused cross-namespace are disallowed",
    "with_middleware_cross_provider.yml": "refused cross-namespace are disallowed",
    "with_middleware_multiple_hyphens.yml": "loads 1",
    "with_mirroring.yml": "loads 1",
    "with_mirroring2.yml": "loads 1",
    "with_multiple_endpointaddresses.yml": "loads 1",
    "with_multiple_endpointslices.yml": "loads 1",
    "with_namespaces.yml": "refused not in the parent resource",
    "with_native_service_lb.yml": "loads 1",
    "with_native_service_lb_disabled.yml": "loads 1",
    "with_nil_endpointslice_port_name.yml": "loads 1",
    "with_nil_endpointslice_port_value.yml": "loads 1",
    "with_no_rule_value.yml": "refused non-empty string",
    "with_node_port_lb.yml": "loads 1",
    "with_one_external_service_and_health_check.yml": "refused healthCheck allowed",
    "with_one_external_svc_and_regular_svc_health_check.yml": "refused healthCheck allowed",
    "with_options.yml": "loads 1",
    "with_plugin_deep_read_secret.yml": "loads 0",
    "with_plugin_read_array_of_map_contain_secret.yml": "loads 0",
    "with_plugin_read_array_of_secret.yml": "loads 0",
    "with_plugin_read_not_exist_secret.yml": "loads 0",
    "with_plugin_read_secret.yml": "loads 0",
    "with_ratelimit.yml": "refused creating redis limiter: creating TLS config: failed to parse CA",
    "with_servers_transport.yml": "refused SPIFFE",
    "with_servers_transport_cross_namespace.yml": "refused crossnamespace is disallowed",
    "with_servers_transport_cross_provider.yml": "refused 'file' provider",
    "with_service_cross_provider.yml": "refused 'file' provider",
    "with_services_lb0.yml": "loads 1",
    "with_services_lb1.yml": "loads 1",
    "with_services_lb2.yml": "loads 1",
    "with_services_lb3.yml": "loads 1",
    "with_services_only.yml": "loads 0",
    "with_sticky.yml": "loads 2",
    "with_tls.yml": "loads 1",
    "with_tls_acme.yml": "loads 1",
    "with_tls_option_cross_provider.yml": "loads 1",
    "with_tls_options.yml": "loads 1",
    "with_tls_options_and_specific_namespace.yml": "loads 1",
    "with_tls_options_cross_namespace.yml": "loads 1",
    "with_tls_store.yml": "loads 1",
    "with_tls_store_certificates.yml": "loads 1",
    "with_traefik_service_middleware.yml": "loads 1",
    "with_two_external_services_and_health_check.yml": "refused healthCheck allowed",
    "with_two_rules.yml": "loads 2",
    "with_two_services.yml": "loads 1",
    "with_two_services_weight.yml": "loads 1",
    "with_unknown_tls_options.yml": "loads 1",
    "with_unknown_tls_options_namespace.yml": "loads 1",
}


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_traefik_fixture_outcome_is_pinned(name: str) -> None:
    outcome, _, detail = OUTCOMES[name].partition(" ")
    if outcome == "refused":
        with pytest.raises(ConfigError) as info:
            load_config(FIXTURES / name)
        assert detail in str(info.value)
        assert "unknown field" not in str(info.value)
    else:
        assert len(load_config(FIXTURES / name).routes) == int(detail)


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_every_fixture_is_pinned() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.yml")) == sorted(OUTCOMES)


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_the_ingress_class_fixtures_load_with_traefiks_test_ingress_class() -> None:
    for name in (
        "with_ingressclassname.yml",
        "with_ingressclassname_and_deprecated_annotation.yml",
        "with_deprecated_annotation_only.yml",
    ):
        config = load_config(FIXTURES / name, ingress_class="traefik-lb")
        assert len(config.routes) == 1


def _issues(name: str, **options: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / name, **options)  # type: ignore[arg-type]
    return [f"{issue.path}: {issue.message}" for issue in info.value.issues]


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_with_middleware_loads_with_traefiks_test_allow_cross_namespace() -> None:
    # kubernetes_test.go "Simple Ingress Route with middleware" (allowCrossNamespace):
    # one router, Middlewares default-stripprefix, default-ratelimit, foo-addprefix.
    config = load_config(FIXTURES / "with_middleware.yml", allow_cross_namespace=True)
    (route,) = config.routes
    assert [m.name for m in route.middlewares] == [
        "default-stripprefix",
        "default-ratelimit",
        "foo-addprefix",
    ]
    strip, limit, add = (m.spec for m in route.middlewares)
    assert isinstance(strip, StripPrefix) and strip.prefixes == ("/tobestripped",)
    assert isinstance(limit, RateLimit)
    assert (limit.average, limit.burst, limit.period) == (6, 12, 60.0)
    assert limit.source_criterion.ip_strategy is not None
    assert limit.source_criterion.ip_strategy.excluded_ips == ("127.0.0.1/32", "192.168.1.7")
    assert add == AddPrefix("/tobeadded")


# Traefik's "other-middleware@kubernetescrd" (a chain of with_middleware_cross_namespace
# names it) is the Middleware other/middleware, which no fixture defines.
OTHER_MIDDLEWARE = (
    "\n---\napiVersion: traefik.io/v1alpha1\nkind: Middleware\n"
    "metadata: {name: middleware, namespace: other}\nspec: {addPrefix: {prefix: /other}}\n"
)


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_with_middleware_cross_namespace_as_traefiks_test_allow_cross_namespace() -> None:
    # kubernetes_test.go "HTTP middleware cross namespace allowed": 4 routers; the /chain
    # one names test-chain-cross-provider, whose other-middleware@kubernetescrd does not
    # exist: Traefik keeps the router in its dynamic configuration and fails to build it
    # (not served); a reference to no Middleware is a load error here.
    name = "with_middleware_cross_namespace.yml"
    assert _issues(name, allow_cross_namespace=True) == [
        'spec.chain.middlewares[0].name: middleware "other-middleware@kubernetescrd" does not exist'
    ]
    text = (FIXTURES / name).read_text() + OTHER_MIDDLEWARE
    config = load_config_text(text, allow_cross_namespace=True)
    # Traefik's router Middlewares, chains expanded as its BuildMiddlewareChain does.
    assert {str(r.rule.text): [m.name for m in r.middlewares] for r in config.routes} == {
        "Host(`foo.com`) && PathPrefix(`/bar`)": ["cross-ns-stripprefix"],
        "Host(`foo.com`) && PathPrefix(`/bir`)": ["default-test-errorpage"],
        "Host(`foo.com`) && PathPrefix(`/bur`)": ["cross-ns-stripprefix"],
        "Host(`foo.com`) && PathPrefix(`/chain`)": ["cross-ns-stripprefix", "other-middleware"],
    }
    (errors,) = [r for r in config.routes if "/bir" in r.rule.text]
    page = errors.middlewares[0].spec
    assert isinstance(page, ErrorPage) and page.query == "/{status}.html"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_with_middleware_cross_provider_is_refused_for_its_file_provider_references() -> None:
    # kubernetes_test.go "Simple Ingress Route with middleware crossprovider" keeps the
    # names basicauth@file and redirect@file in the router; its file provider defines
    # them. There is no file provider here: Traefik alone would not serve that router
    # (the middlewares do not exist), and each reference is a load error.
    name = "with_middleware_cross_provider.yml"
    found = _issues(name, allow_cross_namespace=True)
    assert found == [
        f"spec.routes[0].middlewares[{i}].name: invalid reference to middleware {ref}: there "
        "is no 'file' provider here, only Kubernetes CRD resources (kubernetescrd)"
        for i, ref in ((2, "basicauth@file"), (3, "redirect@file"))
    ]
    assert len(_issues(name)) == 3  # and, by default, the cross-namespace foo/addprefix


# The 4 middleware fixtures a strict load refuses, loaded with skip_invalid: (fixture,
# allowCrossNamespace) -> (the routers Traefik serves, the routes left out by index).
# kubernetes_test.go's TestLoadIngressRoutes gives Traefik's dynamic configuration:
# "HTTP middleware cross namespace disallowed" keeps the /bir and /chain routers but not
# their middlewares (default-test-errorpage, default-test-chain*: skipped), so neither is
# served; the other default-option outcomes follow from its makeMiddlewareKeys (a route
# with a cross-namespace reference is skipped). The routers with a middleware that does
# not exist (other-middleware@kubernetescrd, basicauth@file with no file provider) or
# cannot be built (with_ratelimit's Redis CA) are kept there and not served:
# test_traefik_fixtures_vs_traefik.py checks every one of these on the real Traefik.
SKIPPED = {
    ("with_middleware.yml", False): (set(), {0}),
    ("with_middleware.yml", True): ({"default-test2-route-23c7f4c450289ee29016"}, set()),
    ("with_middleware_cross_namespace.yml", False): (set(), {0, 1, 2, 3}),
    ("with_middleware_cross_namespace.yml", True): (
        {
            "default-test-crossnamespace-route-6b204d94623b3df4370c",  # /bar
            "default-test-crossnamespace-route-9313b71dbe6a649d5049",  # /bir
            "default-test-crossnamespace-route-a1963878aac7331b7950",  # /bur
        },
        {3},  # /chain: its chain names other-middleware@kubernetescrd, which no one defines
    ),
    ("with_middleware_cross_provider.yml", False): (set(), {0}),
    ("with_middleware_cross_provider.yml", True): (set(), {0}),  # basicauth@file: no file provider
    ("with_ratelimit.yml", False): (set(), {0}),
    ("with_ratelimit.yml", True): (set(), {0}),
}
_ROUTE = re.compile(r"spec\.routes\[(\d+)\]")


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
@pytest.mark.parametrize(("name", "allow_cross_namespace"), sorted(SKIPPED))
def test_refused_middleware_fixture_loads_traefiks_routers_with_skip_invalid(
    name: str, allow_cross_namespace: bool
) -> None:
    routers, left_out = SKIPPED[name, allow_cross_namespace]
    config = load_config(
        FIXTURES / name, allow_cross_namespace=allow_cross_namespace, skip_invalid=True
    )
    assert {route.name for route in config.routes} == routers
    routes = {
        int(match.group(1))
        for issue in config.skipped
        if (match := _ROUTE.match(issue.path or "")) and (issue.resource or "").startswith("Ingr")
    }
    assert routes == left_out
    assert all(issue.file == str(FIXTURES / name) and issue.line for issue in config.skipped)
    if not allow_cross_namespace:  # the default load stays refused
        with pytest.raises(ConfigError):
            load_config(FIXTURES / name)


def _with_route(middleware: str) -> str:
    return (FIXTURES / "with_auth.yml").read_text() + (
        "\n---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\n"
        "metadata: {name: shop, namespace: default}\nspec:\n  routes:\n"
        f"    - {{match: Host(`a.test`), middlewares: [{{name: {middleware}}}], "
        "services: [{name: app, port: 80}]}\n"
    )


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_with_auth_loads_as_traefik_reads_it_and_its_unbuildable_middlewares_warn() -> None:
    warnings = [str(w) for w in load_config(FIXTURES / "with_auth.yml").warnings]
    assert [w.split(": ", 3)[2] for w in warnings] == [
        "spec.forwardAuth.address",  # test.com: not http(s)://
        "spec.digestAuth.secret",  # htpasswd lines: not htdigest's three fields
        "spec.forwardAuth.tls.caSecret",  # an empty CERTIFICATE block
    ]
    backends = {"default/app:80": "http://127.0.0.1:9"}
    config = load_config_text(_with_route("basicauth"), backends=backends)
    spec = config.routes[0].middlewares[0].spec
    assert isinstance(spec, BasicAuth)  # kubernetes_test.go's expected users
    assert spec.users == (
        "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/",
        "test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0",
    )
    for name, message in [
        ("digestauth", "error parsing DigestUser: test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"),
        ("forwardauth", "unable to create client TLS configuration: failed to parse CA"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_config_text(_with_route(name), backends=backends)
        assert message in str(info.value)


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine")
def test_every_fixture_loads_with_skip_invalid_and_what_loaded_strictly_skips_nothing() -> None:
    # Traefik's provider refuses no file. Only the routers of the 4 middleware fixtures
    # (SKIPPED) are compared with Traefik's; the others' refusals are listed above.
    for path in sorted(FIXTURES.glob("*.yml")):
        config = load_config(path, skip_invalid=True)
        assert bool(config.skipped) == OUTCOMES[path.name].startswith("refused"), path.name
