"""The field reader: every problem names the file, line, resource and field path, and
quotes the value as written."""

from __future__ import annotations

from tests.support.config import errors
from tests.support.manifests import WRR
from traefikservice_asgi import load_config_text


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


def test_a_5000_digit_weight_is_a_located_error_not_a_traceback() -> None:
    assert errors(WRR.replace("weight: -2", "weight: " + "9" * 5000)) == [
        "routes.yaml:14: TraefikService default/wrr: spec.weighted.services[1].weight: "
        "must be an integer >= 0, got 99999999999999999999... (5000 characters)"
    ]


def test_a_weight_beyond_go_s_int64_is_an_error() -> None:
    assert errors(WRR.replace("weight: -2", f"weight: {2**63}")) == [
        "routes.yaml:14: TraefikService default/wrr: spec.weighted.services[1].weight: "
        f"must be an integer of at most 64 bits ({2**63 - 1}), got {2**63}"
    ]
    load_config_text(WRR.replace("weight: -2", f"weight: {2**63 - 1}"))  # the largest


def test_a_yaml_1_1_sexagesimal_weight_is_a_string_as_in_go_s_yaml() -> None:
    assert errors(WRR.replace("weight: -2", "weight: 1:30")) == [
        "routes.yaml:14: TraefikService default/wrr: spec.weighted.services[1].weight: "
        'must be an integer >= 0, got "1:30"'
    ]
