"""Highest random weight picks the child Traefik 3.7.15 picks for each client IP
(scenarios/highest_random_weight.yaml).

Every loopback address reaches both targets, so the script sends from 127.0.0.2-31:
each address twice, in two rounds, to show that a client stays on its child.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conformance.runner import (
    BothRuns,
    Request,
    assert_same,
    requires_traefik,
    run_both,
)

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "highest_random_weight.yaml"
BACKENDS = {
    "default/app-v1:80": "app-v1",
    "default/app-v1:http": "app-v1",
    "default/app-v2:80": "app-v2",
    "default/app-v3:80": "app-v3",
}
SOURCES = [f"127.0.0.{i}" for i in range(2, 32)]
SCRIPT = [Request.make("hrw.test", source=ip) for _ in range(2) for ip in SOURCES]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both([SCENARIO], SCRIPT, BACKENDS, tmp_path=tmp_path_factory.mktemp("hrw"))


def test_each_client_ip_reaches_the_child_traefik_picks(runs: BothRuns) -> None:
    assert_same(runs.traefik, runs.gateway, headers=True)


def test_a_client_keeps_its_child_and_clients_spread_over_the_children(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        seen = run.backends_seen()
        first, second = seen[: len(SOURCES)], seen[len(SOURCES) :]
        assert first == second, run.target
        assert set(Counter(first)) == {"app-v1", "app-v2", "app-v3"}, run.target
