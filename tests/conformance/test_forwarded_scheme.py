"""A documented difference, pinned on both targets: a client's ``X-Forwarded-Scheme``
and ``X-Scheme`` (from a peer that is not trusted) reach the backend through Traefik
3.7.15, which does not manage them yet, and are removed by the gateway, as Traefik's
main branch removes them (docs/differences.md, docs/guides/forwarded-headers.md)."""

from __future__ import annotations

import pytest

from tests.conformance.runner import BothRuns, Request, requires_traefik, run_both
from tests.conformance.test_forwarding import BACKENDS, SCENARIO

pytestmark = requires_traefik

SPOOFED = {"X-Forwarded-Scheme": "https", "X-Scheme": "https", "X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    script = [Request.make("fw.test", "/scheme", headers=SPOOFED)]
    return run_both([SCENARIO], script, BACKENDS, tmp_path=tmp_path_factory.mktemp("scheme"))


def test_traefik_3_7_15_passes_client_scheme_headers_through(runs: BothRuns) -> None:
    theirs = runs.traefik.by_index("fw-app")[0]
    assert theirs.header("X-Forwarded-Scheme") == "https"
    assert theirs.header("X-Scheme") == "https"
    assert theirs.header("X-Forwarded-Proto") == "http"  # managed: replaced


def test_the_gateway_removes_client_scheme_headers(runs: BothRuns) -> None:
    ours = runs.gateway.by_index("fw-app")[0]
    assert ours.header("X-Forwarded-Scheme") is None
    assert ours.header("X-Scheme") is None
    assert ours.header("X-Forwarded-Proto") == "http"
