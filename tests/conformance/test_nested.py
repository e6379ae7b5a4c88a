"""Nested TraefikServices keep their own state, exactly as in Traefik 3.7.15.

Scenario: ``scenarios/nested_weighted_mirror.yaml``. Equal weights are added in a random
order by Traefik (and by us), so where the first pick is a tie the comparison is on
counts and cycle structure, not on order.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from tests.conformance.runner import (
    BothRuns,
    TargetRun,
    assert_same_responses,
    repeat,
    requires_traefik,
    run_both,
)

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "nested_weighted_mirror.yaml"
BACKENDS = {
    "default/app-v1:80": "app-v1",
    "default/app-v2:80": "app-v2",
    "default/app-v3:80": "app-v3",
}

NESTED = range(0, 20)
CANARY_MIRROR = range(20, 50)
IMPLICIT = range(50, 70)
SCRIPT = [
    *repeat(len(NESTED), "nested.test"),
    *repeat(len(CANARY_MIRROR), "canary-mirror.test"),
    *repeat(len(IMPLICIT), "implicit.test"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both([SCENARIO], SCRIPT, BACKENDS, tmp_path=tmp_path_factory.mktemp("nested"))


def mirrored_positions(run: TargetRun, indexes: range) -> list[int]:
    """Which of the mirroring service's own requests (1-based) reached app-v2."""
    own = [i for i in indexes if run.observations[i].backend == "app-v1"]
    return [own.index(i) + 1 for i in run.indexes("app-v2") if i in own]


def test_weighted_of_mirroring_alternates_and_counts_only_its_own_requests(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        seen = [o.backend for o in run.observations[NESTED.start : NESTED.stop]]
        assert Counter(seen) == {"app-v1": 10, "app-v3": 10}, run.target
        assert all(a != b for a, b in itertools.pairwise(seen)), run.target  # strict alternation
        # The mirror saw the mirroring service's 1st, 3rd, 5th, ... request, not every other global one.
        assert mirrored_positions(run, NESTED) == [1, 3, 5, 7, 9], run.target


def test_mirroring_of_weighted_follows_the_inner_schedule_and_its_own_counter(
    runs: BothRuns,
) -> None:
    assert_same_responses(runs.traefik, runs.gateway, CANARY_MIRROR)
    for run in (runs.traefik, runs.gateway):
        copies = [i - CANARY_MIRROR.start + 1 for i in run.indexes("app-v2") if i in CANARY_MIRROR]
        assert copies == [1, 5, 9, 13, 17, 21, 25, 29], run.target


def test_route_with_two_services_is_an_implicit_weighted_service(runs: BothRuns) -> None:
    assert_same_responses(runs.traefik, runs.gateway, IMPLICIT)
    assert Counter(
        o.backend for o in runs.gateway.observations[IMPLICIT.start : IMPLICIT.stop]
    ) == {"app-v1": 5, "app-v3": 15}
