"""IngressRoute ``parentRefs`` (Traefik 3.7's multi-layer routing): the router tree, and
the references Traefik's provider skips, refused here with their location."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config import errors
from traefikservice_asgi import load_config, load_config_text
from traefikservice_asgi._describe import describe
from traefikservice_asgi.config import ServersService

FIXTURES = Path(__file__).parents[1] / "traefik_fixtures"
SERVICES = FIXTURES / "parent_refs_services.yml"

PARENT = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: parent, namespace: default}
spec:
  routes:
    - match: Host(`shop.test`)
---
"""

CHILD = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: child, namespace: %s}
spec:
  parentRefs: [%s]
  routes:
    - match: PathPrefix(`/api`)
      services: [{name: api, port: 80}]
    - match: PathPrefix(`/api/v2`)
      services: [{name: api2, port: 80}]
"""


def test_children_hang_under_their_parent_highest_priority_first() -> None:
    (parent,) = load_config_text(PARENT + CHILD % ("default", "{name: parent}")).routes
    assert parent.service is None
    assert parent.name == "default-parent-050afe4592933941521c"
    assert [c.rule.text for c in parent.children] == ["PathPrefix(`/api/v2`)", "PathPrefix(`/api`)"]
    assert all(isinstance(c.service, ServersService) for c in parent.children)


def test_a_missing_parent_is_an_error_at_the_parent_ref() -> None:
    (message,) = errors(CHILD % ("default", "{name: gone}"))
    assert message == (
        "routes.yaml:5: IngressRoute default/child: spec.parentRefs[0].name: "
        "parent IngressRoute default/gone does not exist"
    )


def test_a_parent_in_another_namespace_needs_allow_cross_namespace() -> None:
    text = PARENT + CHILD % ("team", "{name: parent, namespace: default}")
    (message,) = errors(text)
    assert message == (
        "routes.yaml:12: IngressRoute team/child: spec.parentRefs[0].namespace: "
        "cross-namespace reference to parent IngressRoute default/parent not allowed "
        "(enable allow_cross_namespace to allow it)"
    )
    (parent,) = load_config_text(text, allow_cross_namespace=True).routes
    assert len(parent.children) == 2


def test_the_parent_namespace_defaults_to_the_childs() -> None:
    text = PARENT.replace("default}", "team}") + CHILD % ("team", "{name: parent}")
    (parent,) = load_config_text(text).routes
    assert len(parent.children) == 2


def test_a_route_without_services_that_nobody_names_as_parent_is_an_error() -> None:
    (message,) = errors(PARENT)
    assert message.startswith(
        "routes.yaml:6: IngressRoute default/parent: spec.routes[0].services: "
        "required field is missing: a route without services must be a parent"
    )


def test_a_parent_route_with_services_is_an_error() -> None:
    text = PARENT.replace(
        "Host(`shop.test`)", "Host(`shop.test`)\n      services: [{name: s, port: 80}]"
    )
    (message,) = errors(text + CHILD % ("default", "{name: parent}"))
    assert "spec.routes[0].services: a parent route cannot have services" in message


def test_a_child_with_its_own_entry_points_is_an_error() -> None:
    child = CHILD.replace("spec:\n", "spec:\n  entryPoints: [web]\n")
    (message,) = errors(PARENT + child % ("default", "{name: parent}"))
    assert "spec.entryPoints: a child IngressRoute (with parentRefs)" in message


def test_a_parent_refs_cycle_is_an_error() -> None:
    a = (CHILD % ("default", "{name: b}")).replace("name: child", "name: a")
    b = (CHILD % ("default", "{name: a}")).replace("name: child", "name: b")
    messages = errors(a + "---\n" + b)
    assert any("parentRefs cycle: default/a -> default/b -> default/a" in m for m in messages)


@pytest.mark.parametrize("bad", ["[{namespace: default}]", "[{name: p, kind: x}]", "{name: p}"])
def test_malformed_parent_refs_are_located_errors(bad: str) -> None:
    messages = errors(PARENT + (CHILD % ("default", "")).replace("[]", bad))
    assert any("IngressRoute default/child: spec.parentRefs" in m for m in messages)


def test_a_child_with_two_parents_is_matched_under_both() -> None:
    config = load_config([FIXTURES / "parent_refs_multiple_parents.yml", SERVICES])
    assert [r.rule.text for r in config.routes] == [
        "Host(`a.example.com`)",
        "Host(`b.example.com`)",
    ]
    assert config.routes[0].children == config.routes[1].children


@pytest.mark.parametrize(
    ("fixture", "options", "hosts"),
    [
        ("parent_refs_single_parent_single_route.yml", {}, 1),
        ("parent_refs_single_parent_multiple_routes.yml", {}, 2),
        ("parent_refs_default_namespace.yml", {}, 1),
        ("parent_refs_multiple_parents.yml", {}, 2),
        ("parent_refs_cross_namespace_allowed.yml", {"allow_cross_namespace": True}, 1),
    ],
)
def test_traefiks_parent_refs_fixtures_load(
    fixture: str, options: dict[str, bool], hosts: int
) -> None:
    config = load_config([FIXTURES / fixture, SERVICES], **options)  # type: ignore[arg-type]
    assert len(config.routes) == hosts
    assert all(len(r.children) == 1 for r in config.routes)
    assert "child routers, in matching order" in describe(config)


@pytest.mark.parametrize(
    ("fixture", "text"),
    [
        ("parent_refs_cross_namespace_denied.yml", "cross-namespace reference"),
        ("parent_refs_missing_parent.yml", "does not exist"),
    ],
)
def test_traefiks_refused_parent_refs_fixtures_are_errors(fixture: str, text: str) -> None:
    messages = errors((FIXTURES / fixture).read_text() + "\n---\n" + SERVICES.read_text())
    assert len(messages) == 1 and text in messages[0]
