"""ServersTransport timeouts give Traefik's 504 (scenarios/servers_transport_timeouts.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.runner import (
    BackendSpec,
    BothRuns,
    Request,
    assert_same,
    requires_traefik,
    run_both,
)

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "servers_transport_timeouts.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    backends = {"default/slow:80": BackendSpec("slow", delay=3.0), "default/quick:80": "quick"}
    script = [
        Request.make("slow.test"),
        Request.make("quick.test"),
        Request.make("quick.test", "/x"),
    ]
    return run_both(
        [SCENARIO], script, backends, tmp_path=tmp_path_factory.mktemp("st"), settle_cap=6.0
    )


def test_response_header_timeout_gives_the_same_504_and_quick_requests_pass(runs: BothRuns) -> None:
    first = runs.traefik.observations[0]
    assert (first.status, first.body) == (504, b"Gateway Timeout")  # the oracle
    assert [o.status for o in runs.traefik.observations[1:]] == [200, 200]
    assert_same(runs.traefik, runs.gateway, headers=True)
