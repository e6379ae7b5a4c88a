"""Failover on status codes behaves as in Traefik 3.7.15 (scenarios/failover_status.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.runner import (
    BackendSpec,
    BothRuns,
    Request,
    assert_same,
    assert_same_responses,
    repeat,
    requires_traefik,
    run_both,
)

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "failover_status.yaml"
BACKENDS: dict[str, str | BackendSpec] = {
    "default/app-down:80": BackendSpec("app-down", status=503, body=b"main is down\n"),
    "default/app-v1:80": "app-v1",
    "default/app-v2:80": "app-v2",
    "default/app-v3:80": "app-v3",
}

SCRIPT = [
    Request.make("down.test"),  # 0
    Request.make("down.test", "/form", method="POST", body=b"exactly 16 bytes"),  # 1
    Request.make("down.test", "/form", method="POST", body=b"seventeen bytes!!"),  # 2
    Request.make("up.test", "/form", method="POST", body=b"x" * 100),  # 3
    Request.make("other-status.test"),  # 4
    *repeat(9, "half.test"),  # 5..13
]
HALF = range(5, 14)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both([SCENARIO], SCRIPT, BACKENDS, tmp_path=tmp_path_factory.mktemp("failover"))


def test_failover_serves_the_fallback_and_the_client_never_sees_the_main_answer(
    runs: BothRuns,
) -> None:
    for run in (runs.traefik, runs.gateway):
        first = run.observations[0]
        assert (first.status, first.backend, first.body) == (200, "app-v2", b"Hello app-v2\n")
        assert 0 in run.indexes("app-down"), run.target  # the main was asked first
    assert_same_responses(runs.traefik, runs.gateway, [0])


def test_post_body_is_replayed_to_the_fallback_identically(runs: BothRuns) -> None:
    assert_same(runs.traefik, runs.gateway, headers=True)  # bodies and headers received
    for run in (runs.traefik, runs.gateway):
        main, fallback = run.by_index("app-down")[1], run.by_index("app-v2")[1]
        assert main.body == fallback.body == b"exactly 16 bytes", run.target


def test_body_over_max_request_body_bytes_is_refused_with_413_before_any_backend(
    runs: BothRuns,
) -> None:
    theirs = runs.traefik.observations[2]
    assert (theirs.status, theirs.body) == (413, b"Request body too large\n")  # the oracle
    assert_same_responses(runs.traefik, runs.gateway, [2])
    for run in (runs.traefik, runs.gateway):
        assert all(2 not in run.indexes(name) for name in run.received), run.target


def test_a_main_answer_outside_the_ranges_is_served_as_is(runs: BothRuns) -> None:
    assert_same_responses(runs.traefik, runs.gateway, [3, 4])
    assert runs.traefik.observations[3].backend == "app-v1"
    assert (runs.traefik.observations[4].status, runs.traefik.observations[4].body) == (
        503,
        b"main is down\n",
    )


def test_only_requests_a_weighted_main_sends_to_its_failing_child_fail_over(
    runs: BothRuns,
) -> None:
    assert_same_responses(runs.traefik, runs.gateway, HALF)
    seen = [o.backend for o in runs.gateway.observations[HALF.start : HALF.stop]]
    # 1:2 gives down v1 down, down v1 down, ...; each "down" is served by the fallback.
    assert seen == ["app-v3", "app-v1", "app-v3"] * 3
