"""Acceptance: the walkthrough's three experiments behave exactly as under the real Traefik.

One script runs against Traefik 3.7 (on the file-provider translation of the blog's
manifests) and against our gateway (``create_app`` on the same manifests), each with its own
recording ``app-v1``/``app-v2`` backends:

    index        host                               requests
    0..999       traefikservice-wrr.kubesre.lc      1000   weighted 1:2
    1000..1999   traefikservice-cokie.kubesre.lc    1000   sticky, no cookie
    2000..2009   traefikservice-cokie.kubesre.lc      10   cookie=default-app-v1-80
    2010..2019   traefikservice-cokie.kubesre.lc      10   cookie=default-app-v2-80
    2020..3019   traefikservice-copy.kubesre.lc     1000   mirroring 10 % to app-v2
    3020..3029   traefikservice-copy.kubesre.lc       10   spoofed X-Forwarded-*, hop-by-hop

The module-scoped fixture runs the script once; each test compares one aspect.
"""

from __future__ import annotations

import pytest

from tests.conformance.runner import (
    BothRuns,
    Observation,
    Request,
    assert_same_headers,
    assert_same_received,
    assert_same_responses,
    blog_manifests,
    repeat,
    requires_traefik,
    run_both,
)

pytestmark = requires_traefik

WRR_HOST = "traefikservice-wrr.kubesre.lc"
COOKIE_HOST = "traefikservice-cokie.kubesre.lc"
COPY_HOST = "traefikservice-copy.kubesre.lc"
BACKENDS = {"default/app-v1:80": "app-v1", "default/app-v2:80": "app-v2"}

WRR = range(0, 1000)
STICKY = range(1000, 2000)
PINNED_V1 = range(2000, 2010)
PINNED_V2 = range(2010, 2020)
COPY = range(2020, 3020)
PROBES = range(3020, 3030)

SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Real-Ip": "203.0.113.7",
    "X-Forwarded-Host": "evil.test",
    "X-Forwarded-Proto": "https",
    "Connection": "keep-alive, X-Hop",
    "X-Hop": "must be removed",
}

SCRIPT: list[Request] = [
    *repeat(len(WRR), WRR_HOST),
    *repeat(len(STICKY), COOKIE_HOST),
    *repeat(len(PINNED_V1), COOKIE_HOST, cookies={"cookie": "default-app-v1-80"}),
    *repeat(len(PINNED_V2), COOKIE_HOST, cookies={"cookie": "default-app-v2-80"}),
    *repeat(len(COPY), COPY_HOST),
    Request.make(COPY_HOST, "/probe?a=1&b=2", method="POST", headers=SPOOFED, body=b"x" * 1024),
    *repeat(len(PROBES) - 1, COPY_HOST, "/probe", headers=SPOOFED),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    # The gateway runs as the issue states it: `traefikservice-asgi serve examples/blog/`.
    return run_both(
        blog_manifests(),
        SCRIPT,
        BACKENDS,
        tmp_path=tmp_path_factory.mktemp("traefik"),
        gateway_via_cli=True,
    )


def _responses(runs: BothRuns, indexes: range) -> list[Observation]:
    return runs.traefik.observations[indexes.start : indexes.stop]


def test_weighted_host_picks_the_same_backend_for_every_request(runs: BothRuns) -> None:
    traefik = _responses(runs, WRR)
    assert [o.backend for o in traefik[:6]] == ["app-v2", "app-v1", "app-v2"] * 2  # oracle
    assert_same_responses(runs.traefik, runs.gateway, WRR)


def test_sticky_host_without_cookie_sets_the_same_cookie_for_every_request(
    runs: BothRuns,
) -> None:
    assert all(len(o.set_cookies) == 1 for o in _responses(runs, STICKY))  # oracle
    assert_same_responses(runs.traefik, runs.gateway, STICKY)


@pytest.mark.parametrize(
    ("indexes", "backend"), [(PINNED_V1, "app-v1"), (PINNED_V2, "app-v2")], ids=["v1", "v2"]
)
def test_sticky_host_with_walkthrough_cookie_is_pinned(
    runs: BothRuns, indexes: range, backend: str
) -> None:
    assert {o.backend for o in _responses(runs, indexes)} == {backend}  # oracle
    assert_same_responses(runs.traefik, runs.gateway, indexes)


def test_mirroring_host_answers_from_app_v1_and_mirrors_the_same_requests(
    runs: BothRuns,
) -> None:
    copies = range(COPY.start, PROBES.stop)
    assert {(o.status, o.body) for o in _responses(runs, copies)} == {(200, b"Hello app-v1\n")}
    # Traefik mirrors the 1st, 11th, 21st, ... request of the mirroring service (and 1001st).
    mirrored = [i for i in runs.traefik.indexes("app-v2") if i in copies]
    assert mirrored == [*range(COPY.start, COPY.stop, 10), PROBES.start]
    assert_same_responses(runs.traefik, runs.gateway, copies)
    assert_same_received(runs.traefik, runs.gateway)  # indexes, methods, targets, bodies


def test_backends_receive_the_same_forwarded_headers(runs: BothRuns) -> None:
    probe = runs.traefik.by_index("app-v2")[PROBES.start]  # the mirrored POST
    assert probe.header("X-Forwarded-For") == "127.0.0.1"
    assert probe.header("X-Hop") is None
    assert probe.body == b"x" * 1024
    assert_same_headers(runs.traefik, runs.gateway)
