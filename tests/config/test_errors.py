"""Every config error names the file, line, resource and field path; all are reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from traefikservice_asgi import ConfigError, load_config, load_config_text


def errors(text: str, filename: str = "routes.yaml", **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename=filename, **kwargs)  # type: ignore[arg-type]
    return [str(issue) for issue in info.value.issues]


WRR = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: wrr
  namespace: default
spec:
  weighted:
    services:
      - name: app-v1
        port: 80
        weight: 1
      - name: app-v2
        port: 80
        weight: -2
"""


def test_negative_weight_names_file_line_resource_and_path() -> None:
    assert errors(WRR) == [
        "routes.yaml:14: TraefikService default/wrr: spec.weighted.services[1].weight: "
        "must be an integer >= 0, got -2"
    ]


def test_unknown_field_is_an_error_with_a_suggestion() -> None:
    assert errors(WRR.replace("weight: -2", "wieght: 2")) == [
        "routes.yaml:14: TraefikService default/wrr: spec.weighted.services[1].wieght: "
        "unknown field \"wieght\" (did you mean 'weight'?)"
    ]


def test_unknown_traefik_service_reference_is_an_error() -> None:
    text = (
        WRR.replace("weight: -2", "weight: 2")
        + """\
      - name: ghost
        kind: TraefikService
"""
    )
    assert errors(text) == [
        "routes.yaml:15: TraefikService default/wrr: spec.weighted.services[2].name: "
        "TraefikService default/ghost not found"
    ]


CYCLE = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: a, namespace: default}
spec:
  weighted:
    services:
      - {name: b, kind: TraefikService}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: b, namespace: default}
spec:
  mirroring:
    name: a
    kind: TraefikService
"""


def test_reference_cycle_is_reported_with_the_chain() -> None:
    (message,) = errors(CYCLE)
    assert "reference cycle: default/a -> default/b -> default/a" in message
    assert message.startswith("routes.yaml:14: TraefikService default/b: spec.mirroring.name: ")


def test_yaml_syntax_error_reports_its_line() -> None:
    (message,) = errors("apiVersion: v1\nkind: Service\nmetadata: {name: x\n")
    assert message.startswith("routes.yaml:4: YAML syntax error:")


def test_bad_match_rule_is_an_error_at_the_match_field() -> None:
    text = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Hots(`x`)
      services: [{name: s, port: 80}]
"""
    (message,) = errors(text)
    assert message.startswith(
        "routes.yaml:6: IngressRoute default/r: spec.routes[0].match: invalid rule:"
    )
    assert "Hots" in message


def test_cross_namespace_reference_is_refused_unless_allowed() -> None:
    text = WRR.replace("weight: -2", "weight: 2\n        namespace: other")
    (message,) = errors(text)
    assert "service other/app-v2 not in the parent resource namespace default" in message
    assert load_config_text(text, allow_cross_namespace=True).services


def test_route_middlewares_are_reported_as_not_supported() -> None:
    text = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`x`)
      middlewares: [{name: auth}]
      services: [{name: s, port: 80}]
"""
    (message,) = errors(text)
    assert message == (
        "routes.yaml:7: IngressRoute default/r: spec.routes[0].middlewares: "
        "not supported by traefikservice-asgi: Traefik middlewares are not implemented"
    )


def test_percent_over_100_and_wrong_types_are_errors() -> None:
    text = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: m, namespace: default}
spec:
  mirroring:
    name: main
    port: 80
    mirrorBody: "yes"
    mirrors:
      - {name: copy, port: 80, percent: 120}
"""
    assert errors(text) == [
        'routes.yaml:8: TraefikService default/m: spec.mirroring.mirrorBody: must be true or false, got "yes"',
        "routes.yaml:10: TraefikService default/m: spec.mirroring.mirrors[0].percent: "
        "must be an integer from 0 to 100, got 120",
    ]


def test_duplicate_keys_are_errors() -> None:
    (message,) = errors("apiVersion: v1\nkind: Service\nkind: Service\nmetadata: {name: x}\n")
    assert message == "routes.yaml:3: duplicate key 'kind'"


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(
            f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]"
        )
    (message,) = errors("\n".join(lines))
    assert "alias bomb" in message


def test_every_error_of_every_file_is_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(WRR)
    (tmp_path / "b.yaml").write_text(CYCLE)
    (tmp_path / "c.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = str(info.value)
    assert f"{tmp_path / 'a.yaml'}:14:" in text
    assert "reference cycle" in text
    assert f"{tmp_path / 'c.yaml'}:2: YAML syntax error" in text
    assert len(info.value.issues) == 3
