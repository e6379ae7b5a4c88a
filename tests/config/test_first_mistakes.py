"""A newcomer's first mistakes are reported, located, with the fix: an unused backends key,
a name that falls back to cluster DNS, an unknown apiVersion or kind, an empty file, a
bad rule beside a missing service, unquoted matcher arguments, a URL without a scheme."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.manifests import one_route
from traefikservice_asgi import ConfigError, load_config, load_config_text

V1 = {"default/app-v1:80": "http://127.0.0.1:9001"}


def _errors(text: str, **options: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, filename="routes.yaml", **options)  # type: ignore[arg-type]
    return [str(issue) for issue in caught.value.issues]


def test_a_backends_key_no_reference_uses_is_a_warning_with_the_closest_reference() -> None:
    config = load_config_text(
        one_route("{name: app-v1, port: 80}"),
        backends={**V1, "default/app-v3:80": "http://127.0.0.1:9003"},
    )
    assert [str(w) for w in config.warnings] == [
        "backends 'default/app-v3:80' matches no Service reference in the configuration and "
        'is ignored (references: default/app-v1:80); did you mean "default/app-v1:80"?'
    ]


def test_a_backends_key_shadowed_by_another_spelling_of_the_port_is_a_warning() -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: app-v1, namespace: default}\n"
        "spec: {ports: [{name: http, port: 80}]}\n---\n" + one_route("{name: app-v1, port: 80}")
    )
    config = load_config_text(text, backends={**V1, "default/app-v1:http": "http://127.0.0.1:9009"})
    assert [str(w) for w in config.warnings] == [
        "backends 'default/app-v1:http' is not used: the reference default/app-v1:80 is "
        "served by backends 'default/app-v1:80', another spelling of the same port"
    ]


def test_references_falling_back_to_cluster_dns_are_listed_in_one_warning() -> None:
    text = one_route("{name: app-v3, port: 80}")
    (warning,) = load_config_text(text, filename="routes.yaml").warnings
    assert "1 Service reference(s) have no backends entry" in str(warning)
    assert "default/app-v3:80 -> http://app-v3.default.svc:80 (routes.yaml:8)" in str(warning)
    assert "--backend NS/NAME:PORT=URL" in str(warning) and "--no-cluster-dns" in str(warning)


def test_cluster_dns_off_makes_the_fallback_a_located_error_with_did_you_mean() -> None:
    text = one_route("{name: app-v3, port: 80}")
    assert _errors(text, backends=V1, cluster_dns=False) == [
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].name: Service "
        'default/app-v3 (did you mean "default/app-v1"?) has no backends entry, Endpoints or '
        "ExternalName Service, and the cluster DNS fallback (http://app-v3.default.svc:80) is "
        "off (--no-cluster-dns): add --backend default/app-v3:80=URL "
        "(backends={'default/app-v3:80': URL})"
    ]


def test_cluster_dns_off_accepts_a_reference_with_a_backend() -> None:
    config = load_config_text(one_route("{name: app-v1, port: 80}"), backends=V1, cluster_dns=False)
    assert config.warnings == ()


def test_an_unknown_traefik_api_version_is_a_located_error_naming_the_known_ones() -> None:
    text = one_route("{name: app-v1, port: 80}").replace("traefik.io/v1alpha1", "traefik.io/v1")
    assert _errors(text, backends=V1) == [
        'routes.yaml:1: IngressRoute: apiVersion: unknown apiVersion "traefik.io/v1": '
        "Traefik's resources are traefik.io/v1alpha1 and traefik.containo.us/v1alpha1"
    ]


def test_a_kind_typo_gets_a_did_you_mean() -> None:
    text = one_route("{name: app-v1, port: 80}").replace("IngressRoute", "IngresRoute")
    assert _errors(text, backends=V1) == [
        'routes.yaml:2: kind: unknown kind "IngresRoute" in traefik.io/v1alpha1 (did you mean '
        '"IngressRoute"?); the kinds read are IngressRoute, TraefikService, ServersTransport, Middleware'
    ]


def test_a_core_kind_typo_is_a_warning_with_did_you_mean() -> None:
    text = "apiVersion: v1\nkind: Servce\nmetadata: {name: app-v1}\n---\n" + one_route(
        "{name: app-v1, port: 80}"
    )
    config = load_config_text(text, filename="routes.yaml", backends=V1)
    assert [str(w) for w in config.warnings] == [
        'routes.yaml:2: kind: skipped: kind "Servce" is not read (did you mean "Service"?)'
    ]


def test_an_empty_file_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    (tmp_path / "routes.yaml").write_text(one_route("{name: app-v1, port: 80}"))
    config = load_config(tmp_path, backends=V1)
    assert [str(w) for w in config.warnings] == [
        f"{tmp_path / 'empty.yaml'}: no YAML document in this file (empty, or only comments)"
    ]


def test_an_invalid_rule_does_not_hide_the_errors_of_its_services() -> None:
    text = one_route("{name: ghost, kind: TraefikService}").replace("`x.test`", "x.test")
    errors = _errors(text)
    assert len(errors) == 2
    assert errors[0].startswith(
        "routes.yaml:6: IngressRoute default/r: spec.routes[0].match: invalid rule:"
    )
    assert errors[1] == (
        "routes.yaml:8: IngressRoute default/r: spec.routes[0].services[0].name: "
        "TraefikService default/ghost not found"
    )


def test_an_unquoted_host_suggests_the_backquotes() -> None:
    text = one_route("{name: app-v1, port: 80}").replace("`x.test`", "example.com")
    (error,) = _errors(text, backends=V1)
    assert "operator '.' is not supported (use &&, || and !); did you mean " in error
    assert "Host(`example.com`)?" in error


def test_a_yaml_syntax_error_is_listed_before_the_errors_it_causes() -> None:
    text = (
        one_route("{name: wrr, kind: TraefikService}")
        + "---\napiVersion: traefik.io/v1alpha1\nkind: TraefikService\n"
        "metadata: {name: wrr, namespace: default}\nspec:\n  weighted: [x\n"
    )
    errors = _errors(text)
    assert errors[0].startswith("routes.yaml:15: YAML syntax error:")
    assert errors[0].endswith("; the rest of this file is not read")
    assert errors[1].endswith("TraefikService default/wrr not found")


def test_a_backend_url_without_scheme_shows_the_value_and_suggests_http_once() -> None:
    text = one_route("{name: app-v1, port: 80}") + one_route("{name: app-v1, port: 80}").replace(
        "name: r,", "name: r2,"
    ).replace("apiVersion", "---\napiVersion", 1)
    assert _errors(text, backends={"default/app-v1:80": "127.0.0.1:9001"}) == [
        "backends 'default/app-v1:80': \"127.0.0.1:9001\" is not an http://, https:// or "
        'h2c:// URL with a host and port and no path; did you mean "http://127.0.0.1:9001"?'
    ]
