"""Series of routers and services a live reload removed disappear from ``/metrics`` as
Traefik's do: the first scrape after the reload still exports them, the next one does
not; what the new configuration keeps stays. The same files and requests through
Traefik 3.7.15 (file provider watching its file) and ``serve --admin-port`` (watching
its own), compared at each scrape.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.runner import BackendSpec, _recording_backends, requires_traefik
from tests.conformance.translate import translate_all
from tests.observability.test_vs_traefik import Sample, _answers, _renames, parse, scrape
from tests.support.gateway import serve_cli
from tests.support.traefik import TraefikProcess, free_port
from tests.support.wait import until

pytestmark = requires_traefik

BEFORE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: app, namespace: default}
spec:
  routes:
    - match: Host(`kept.test`)
      kind: Rule
      services: [{name: app-v1, port: 80}]
    - match: Host(`split.test`)
      kind: Rule
      services: [{name: split, kind: TraefikService}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: split, namespace: default}
spec:
  weighted:
    services:
      - {name: app-v2, port: 80, weight: 3}
      - {name: app-v3, port: 80, weight: 1}
"""
AFTER = BEFORE.split("    - match: Host(`split.test`)")[0]  # the kept route alone
BACKENDS: dict[str, Any] = {
    "default/app-v1:80": "v1",
    "default/app-v2:80": "v2",
    "default/app-v3:80": BackendSpec("v3", status=201),
}
REMOVED = {"default-app-v2-80@kubernetescrd", "default-app-v3-80@kubernetescrd"}
KEPT = "default-app-03d858f86015227f2030@kubernetescrd"  # the kept route's own service
Scrapes = tuple[set[Sample], set[Sample], set[Sample]]


def services_of(series: set[Sample]) -> set[str]:
    return {dict(labels)["service"] for _, labels in series if "service" in dict(labels)}


def traffic(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for host in ["kept.test"] * 2 + ["split.test"] * 4:
            assert client.get("/", headers={"Host": host}).status_code in (200, 201)


def reloads(text: str) -> float:
    return parse(text, {}).get(("traefik_config_reloads_total", ()), 0.0)


def scenario(
    base_url: str, metrics_url: str, rewrite: Callable[[], None], renames: dict[str, str]
) -> Scrapes:
    """Traffic on both routes, one scrape, the rewrite, then two scrapes once the
    reload is counted: the series of each scrape."""
    traffic(base_url)
    first = set(parse(scrape(metrics_url), renames))
    count = reloads(scrape(metrics_url))
    rewrite()
    until(lambda: reloads(scrape(metrics_url)) > count, "the reload")
    # The scrape that saw the reload counted may already have been the "next" one: a
    # fresh request (on the kept route) then two scrapes, and the second is compared.
    after_reload = set(parse(scrape(metrics_url), renames))
    settled = set(parse(scrape(metrics_url), renames))
    return first, after_reload, settled


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scrapes, Scrapes]]:
    with _recording_backends(BACKENDS) as (by_name, urls):
        renames = _renames(by_name)
        flat = {k: v if isinstance(v, str) else v[0] for k, v in urls.items()}

        tmp = tmp_path_factory.mktemp("traefik")
        before, after = tmp / "before.yaml", tmp / "after.yaml"
        before.write_text(BEFORE)
        after.write_text(AFTER)
        static = {
            "metrics": {"prometheus": {"addRoutersLabels": True}},
            "providers": {
                "file": {"filename": str(tmp / "dynamic.yml"), "watch": True},
                "providersThrottleDuration": "100ms",
            },
        }
        dynamic = translate_all([before], flat).dynamic
        with TraefikProcess(dynamic, tmp_path=tmp, extra_static=static) as traefik:
            theirs = scenario(
                traefik.url,
                f"{traefik.api_url}/metrics",
                lambda: traefik.rewrite_dynamic(translate_all([after], flat).dynamic),
                renames,
            )

        tmp = tmp_path_factory.mktemp("gateway")
        config = tmp / "routes.yaml"
        config.write_text(BEFORE)
        admin = free_port()
        args = ("--admin-port", str(admin), "--metrics-routers", "--throttle", "0.1")

        def rewrite() -> None:
            temporary = config.with_suffix(".tmp")
            temporary.write_text(AFTER)
            os.replace(temporary, config)

        with serve_cli([str(config)], flat, *args) as base_url:
            metrics_url = f"http://127.0.0.1:{admin}/metrics"
            until(lambda: _answers(metrics_url), "the admin port")
            ours = scenario(base_url, metrics_url, rewrite, renames)
        yield theirs, ours


def test_removed_services_had_series_before_the_reload(runs: tuple[Scrapes, Scrapes]) -> None:
    theirs, ours = runs
    assert services_of(theirs[0]) >= REMOVED
    assert services_of(ours[0]) >= REMOVED


def test_removed_router_and_services_series_are_gone_after_the_next_scrape(
    runs: tuple[Scrapes, Scrapes],
) -> None:
    (_, _, theirs), (_, _, ours) = runs
    assert services_of(theirs) & REMOVED == set()
    assert services_of(ours) & REMOVED == set()
    assert not any("split" in dict(labels).get("router", "") for _, labels in ours)
    assert services_of(ours) == services_of(theirs) == {KEPT}


def test_same_series_as_traefik_at_each_scrape(runs: tuple[Scrapes, Scrapes]) -> None:
    theirs, ours = runs

    def ours_like_theirs(series: set[Sample]) -> set[Sample]:
        # Series only one side has whatever the reloads: the readiness probes' 404 and
        # the open connections of each side's own entry points.
        return {
            s for s in series
            if not s[0].startswith(("traefik_entrypoint", "traefik_open_connections"))
        }  # fmt: skip

    for index in (0, 2):
        mine, their = ours_like_theirs(ours[index]), ours_like_theirs(theirs[index])
        assert (index, sorted(mine - their), sorted(their - mine)) == (index, [], [])
