"""Namespaces of references behave as in Traefik 3.7.15 (scenarios/namespaces.yaml and
scenarios/namespaces_cross.yaml)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conformance.runner import (
    BothRuns,
    assert_same,
    assert_same_received,
    assert_same_responses,
    repeat,
    requires_traefik,
    run_both,
    run_traefik,
)

pytestmark = requires_traefik

SCENARIOS = Path(__file__).with_name("scenarios")
BACKENDS = {
    "shop/app:80": "shop-app",
    "shop/app-next:80": "shop-next",
    "blog/app:80": "blog-app",
    "blog/app-next:80": "blog-next",
}
SCRIPT = [
    *repeat(6, "shop.test"),  # 0..5
    *repeat(8, "blog.test"),  # 6..13
    *repeat(2, "direct.test"),  # 14, 15
    *repeat(2, "explicit.test"),  # 16, 17
]
CROSS_SCRIPT = [
    *repeat(2, "cross-route.test"),
    *repeat(2, "cross-child.test"),
    *repeat(2, "local.test"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both(
        [SCENARIOS / "namespaces.yaml"], SCRIPT, BACKENDS, tmp_path=tmp_path_factory.mktemp("ns")
    )


def test_references_without_namespace_stay_in_the_parents_namespace(runs: BothRuns) -> None:
    seen = runs.traefik.backends_seen()
    assert Counter(seen[0:6]) == {"shop-app": 2, "shop-next": 4}  # shop/canary is 1:2
    assert Counter(seen[6:14]) == {"blog-app": 6, "blog-next": 2}  # blog/canary is 3:1
    assert seen[14:18] == ["shop-app"] * 4
    assert_same(runs.traefik, runs.gateway, headers=True)


def test_cross_namespace_reference_is_refused_at_load_time_naming_the_fields() -> None:
    """A documented difference: Traefik drops the offending route (see the next test)."""
    from traefikservice_asgi import ConfigError, create_app

    with pytest.raises(ConfigError) as caught:
        create_app(
            config=[SCENARIOS / "namespaces_cross.yaml"],
            backends={"shop/app:80": "http://127.0.0.1:9", "blog/app:80": "http://127.0.0.1:9"},
        )
    messages = [str(issue) for issue in caught.value.issues]
    assert len(messages) == 2, messages
    assert "IngressRoute shop/cross: spec.routes[0].services[0]" in messages[0]
    assert "TraefikService shop/mixed: spec.weighted.services[1]" in messages[1]
    assert all("not in the parent resource namespace shop" in m for m in messages)


def test_traefik_answers_404_for_routes_with_a_cross_namespace_reference(
    tmp_path: Path,
) -> None:
    theirs = run_traefik(
        [SCENARIOS / "namespaces_cross.yaml"],
        CROSS_SCRIPT,
        BACKENDS,
        tmp_path=tmp_path,
        allow_router_errors=True,
    )
    assert [(o.status, o.body) for o in theirs.observations[:4]] == [
        (404, b"404 page not found\n")
    ] * 4
    assert theirs.backends_seen()[4:] == ["shop-app", "shop-app"]


def test_with_allow_cross_namespace_both_serve_the_cross_namespace_references(
    tmp_path: Path,
) -> None:
    runs = run_both(
        [SCENARIOS / "namespaces_cross.yaml"],
        CROSS_SCRIPT,
        BACKENDS,
        tmp_path=tmp_path,
        allow_cross_namespace=True,
    )
    assert runs.traefik.backends_seen()[:2] == ["blog-app", "blog-app"]
    assert Counter(runs.traefik.backends_seen()[2:4]) == {"shop-app": 1, "blog-app": 1}
    for run in (runs.traefik, runs.gateway):
        assert Counter(run.backends_seen()[2:4]) == {"shop-app": 1, "blog-app": 1}, run.target
    deterministic = [0, 1, 4, 5]  # 2 and 3: a 1:1 weighted starts at random
    assert_same_responses(runs.traefik, runs.gateway, deterministic)
    assert_same_received(runs.traefik.without([2, 3]), runs.gateway.without([2, 3]))
