"""Weighted round robin picks what Traefik 3.7.15 picks (scenarios/weighted.yaml).

Unequal weights give one sequence whatever order Traefik shuffles the children into, so
those are compared request by request. Equal weights depend on that random order: there
the comparison is on counts and on the cycle structure (the sequence with each child
renamed by its first appearance), which the shuffle does not change.
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

SCENARIO = Path(__file__).with_name("scenarios") / "weighted.yaml"
BACKENDS = {f"default/app-v{i}:80": f"app-v{i}" for i in (1, 2, 3)}

W357 = range(0, 45)
W113 = range(45, 101)
ZERO = range(101, 131)
W11 = range(131, 151)
W111 = range(151, 181)
OUTER = range(181, 217)
SCRIPT = [
    *repeat(len(W357), "w357.test"),
    *repeat(len(W113), "w113.test"),
    *repeat(len(ZERO), "zero.test"),
    *repeat(len(W11), "w11.test"),
    *repeat(len(W111), "w111.test"),
    *repeat(len(OUTER), "outer.test"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both([SCENARIO], SCRIPT, BACKENDS, tmp_path=tmp_path_factory.mktemp("weighted"))


def seen(run: TargetRun, indexes: range) -> list[str | None]:
    return run.backends_seen()[indexes.start : indexes.stop]


def cycle_structure(backends: list[str | None]) -> list[int]:
    """The sequence with each backend replaced by the rank of its first appearance."""
    first: dict[str | None, int] = {}
    return [first.setdefault(name, len(first)) for name in backends]


def test_weights_3_5_7_give_traefiks_exact_sequence_float_drift_included(runs: BothRuns) -> None:
    short = [(b or "?")[-1] for b in seen(runs.traefik, W357)]
    # traefik-source-semantics.md §1.3: request 44 is A, not B (float drift), oracle check.
    assert "".join(short[30:]) == "323123321323312"
    assert_same_responses(runs.traefik, runs.gateway, W357)


def test_weights_11_3_give_traefiks_exact_sequence(runs: BothRuns) -> None:
    assert Counter(seen(runs.traefik, W113)) == {"app-v1": 44, "app-v2": 12}
    assert_same_responses(runs.traefik, runs.gateway, W113)


def test_a_weight_zero_child_is_never_picked(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        assert Counter(seen(run, ZERO)) == {"app-v1": 10, "app-v3": 20}, run.target
    assert_same_responses(runs.traefik, runs.gateway, ZERO)


def test_equal_weights_1_1_alternate_strictly(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        backends = seen(run, W11)
        assert Counter(backends) == {"app-v1": 10, "app-v2": 10}, run.target
        assert all(a != b for a, b in itertools.pairwise(backends)), run.target


def test_equal_weights_1_1_1_have_traefiks_cycle_structure(runs: BothRuns) -> None:
    theirs = seen(runs.traefik, W111)
    assert Counter(theirs) == {"app-v1": 10, "app-v2": 10, "app-v3": 10}
    # Each block of three serves every child once (the rotation order changes).
    assert all(len(set(theirs[i : i + 3])) == 3 for i in range(0, 30, 3))
    assert cycle_structure(seen(runs.gateway, W111)) == cycle_structure(theirs)


def test_weighted_of_weighted_keeps_one_schedule_per_level(runs: BothRuns) -> None:
    assert Counter(seen(runs.traefik, OUTER)) == {"app-v1": 6, "app-v2": 18, "app-v3": 12}
    assert_same_responses(runs.traefik, runs.gateway, OUTER)


def test_each_request_reaches_exactly_one_backend(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        received = sorted(i for name in run.received for i in run.indexes(name))
        assert received == list(range(len(SCRIPT))), run.target
