"""``skip_invalid``: a load that leaves out what Traefik's kubernetesCRD provider leaves
out (a resource with a problem, or only the routes of an IngressRoute that have one, and
what then names something left out) and loads the rest, each left-out thing reported
with its file, line, resource and field path, as the strict load reports it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.manifests import HALF_VALID
from traefikservice_asgi import ConfigError, load_config, load_config_text

BACKENDS = {"default/app:80": "http://127.0.0.1:9"}


def test_skip_invalid_leaves_out_the_bad_routes_and_resources_and_loads_the_rest() -> None:
    config = load_config_text(
        HALF_VALID, filename="routes.yaml", backends=BACKENDS, skip_invalid=True
    )
    assert sorted(r.rule.text for r in config.routes) == ["Host(`ok.test`)", "Host(`other.test`)"]
    # The second round's issue (the route naming the Middleware left out in the first)
    # has the line and route index of the file as written, not of the trimmed document.
    assert [str(issue) for issue in config.skipped] == [
        "routes.yaml:4: Middleware default/bad: spec.stripPrefix.prefixs: unknown field "
        "\"prefixs\" (did you mean 'prefixes'?)",
        "routes.yaml:11: IngressRoute default/multi: spec.routes[0].services[0].weight: "
        "must be an integer >= 0, got -1",
        "routes.yaml:13: IngressRoute default/multi: spec.routes[2].middlewares[0].name: "
        'middleware "default-bad@kubernetescrd" does not exist',
    ]


def test_without_skip_invalid_the_same_text_is_refused_with_the_first_round_issues() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(HALF_VALID, filename="routes.yaml", backends=BACKENDS)
    assert [issue.line for issue in info.value.issues] == [4, 11]


def test_skip_invalid_still_refuses_a_file_that_does_not_parse(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HALF_VALID)
    (tmp_path / "b.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, backends=BACKENDS, skip_invalid=True)
    # every issue, as without skip_invalid: the syntax error first, nothing left out
    assert [(Path(i.file or "").name, i.line) for i in info.value.issues] == [
        ("b.yaml", 2),
        ("a.yaml", 4),
        ("a.yaml", 11),
    ]


def test_skip_invalid_leaves_an_ingress_route_out_whole_when_every_route_fails() -> None:
    text = HALF_VALID.replace(
        "Host(`ok.test`), services: [{name: app, port: 80}]",
        "Host(`ok.test`), services: [{name: nope, port: 80}]",
    )
    config = load_config_text(
        text, filename="routes.yaml", backends=BACKENDS, cluster_dns=False, skip_invalid=True
    )
    assert [r.rule.text for r in config.routes] == ["Host(`other.test`)"]
    assert {issue.resource for issue in config.skipped} == {
        "Middleware default/bad",
        "IngressRoute default/multi",
    }
