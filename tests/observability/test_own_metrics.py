"""The ``traefikservice_asgi_*`` balancer metrics, read at scrape time: picks per child
of every balancer kind (each equal to what its backends received), the weights of the
current configuration, sticky cookie hits and legacy-value rewrites; a reload that
keeps a service keeps its counts. Real backends on loopback; the gateway in process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.backends import RecordingBackend
from traefikservice_asgi import create_app, load_config_text
from traefikservice_asgi.loadbalancer.sticky import cookie_value
from traefikservice_asgi.observability import ObservabilityOptions

CONFIG = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: own, namespace: default}
spec:
  routes:
    - {match: Host(`w.test`), kind: Rule, services: [{name: split, kind: TraefikService}]}
    - {match: Host(`h.test`), kind: Rule, services: [{name: byip, kind: TraefikService}]}
    - {match: Host(`p.test`), kind: Rule, services: [{name: pool, port: 80, strategy: p2c}]}
    - match: Host(`l.test`)
      kind: Rule
      services: [{name: pool2, port: 80, strategy: leasttime}]
    - {match: Host(`f.test`), kind: Rule, services: [{name: fo, kind: TraefikService}]}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: split, namespace: default}
spec:
  weighted:
    services: [{name: a, port: 80, weight: 3}, {name: b, port: 80, weight: 1}]
    sticky: {cookie: {name: pin}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: byip, namespace: default}
spec:
  highestRandomWeight:
    services: [{name: a, port: 80, weight: 2}, {name: b, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: fo, namespace: default}
spec:
  failover:
    service: {name: broken, port: 80}
    fallback: {name: b, port: 80}
    errors: {status: ["500-599"]}
"""
SPLIT = "default-split@kubernetescrd"
WRR_CHILDREN = ("default-a-80", "default-b-80")


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, RecordingBackend]]:
    started = {
        "a": RecordingBackend("a", host="127.0.0.2").start(),
        "b": RecordingBackend("b", host="127.0.0.3").start(),
        "c": RecordingBackend("c", host="127.0.0.4").start(),
        "d": RecordingBackend("d", host="127.0.0.5").start(),
        "broken": RecordingBackend("broken", status=503, host="127.0.0.6").start(),
    }
    try:
        yield started
    finally:
        for backend in started.values():
            backend.stop()


def urls(backends: dict[str, RecordingBackend]) -> dict[str, Any]:
    return {
        "default/a:80": backends["a"].url,
        "default/b:80": backends["b"].url,
        "default/pool:80": [backends["c"].url, backends["d"].url],
        "default/pool2:80": [backends["c"].url, backends["d"].url],
        "default/broken:80": backends["broken"].url,
    }


Scraped = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def drive(app: Any, requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = []
        for _, headers in requests:
            answers.append(await client.get("/", headers=headers))
            client.cookies.clear()  # each request carries only the cookie it is given
        return answers


def scrape(app: Any) -> Scraped:
    async def get() -> str:
        transport = httpx.ASGITransport(app=app.admin_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/metrics")).text

    out: Scraped = {}
    for family in text_string_to_metric_families(asyncio.run(get())):
        for sample in family.samples:
            if sample.name.startswith("traefikservice_asgi_"):
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def picks(scraped: Scraped, service: str) -> dict[str, float]:
    return {
        dict(labels)["child"]: value
        for (name, labels), value in scraped.items()
        if name == "traefikservice_asgi_balancer_picks_total" and dict(labels)["service"] == service
    }


def value(scraped: Scraped, name: str, **labels: str) -> float:
    return scraped[(name, tuple(sorted(labels.items())))]


def service_of(app: Any, host: str) -> str:
    """The (leaf) service of the route for ``host``: named after its route."""
    (route,) = [r for r in app.routes if host in r.rule.text]
    return str(route.observed[1])


def requests(host: str, n: int, **headers: str) -> list[tuple[str, dict[str, str]]]:
    return [(host, {"Host": host, **headers})] * n


@pytest.fixture
def app(backends: dict[str, RecordingBackend]) -> Any:
    for backend in backends.values():
        backend.clear()
    gateway = create_app(
        load_config_text(CONFIG, backends=urls(backends)),
        observability=ObservabilityOptions(metrics=True),
    )
    return gateway


def test_every_balancer_kind_counts_its_picks_per_child_as_its_backends_saw_them(
    app: Any, backends: dict[str, RecordingBackend]
) -> None:
    asyncio.run(drive(app, requests("w.test", 8)))
    asyncio.run(drive(app, requests("h.test", 3)))
    scraped = scrape(app)
    assert picks(scraped, SPLIT) == {"default-a-80": 6.0, "default-b-80": 2.0}
    by_ip = picks(scraped, "default-byip@kubernetescrd")
    assert sorted(by_ip.values()) == [0.0, 3.0]  # one client IP: always the same child

    for backend in backends.values():
        backend.clear()
    asyncio.run(drive(app, requests("p.test", 6)))
    asyncio.run(drive(app, requests("l.test", 6)))
    scraped = scrape(app)
    pool = picks(scraped, service_of(app, "p.test"))
    pool2 = picks(scraped, service_of(app, "l.test"))
    assert sum(pool.values()) == sum(pool2.values()) == 6.0
    c, d = backends["c"].url, backends["d"].url
    assert pool[c] + pool2[c] == backends["c"].count
    assert pool[d] + pool2[d] == backends["d"].count

    answers = asyncio.run(drive(app, requests("f.test", 2)))
    assert [a.status_code for a in answers] == [200, 200]  # the fallback's answers
    fo = picks(scrape(app), "default-fo@kubernetescrd")
    assert fo == {"main": 2.0, "fallback": 2.0}  # the main tried, its 503 failed over


def test_weights_are_those_of_the_current_configuration(app: Any) -> None:
    scraped = scrape(app)
    name = "traefikservice_asgi_balancer_weight"
    assert value(scraped, name, service=SPLIT, child="default-a-80") == 3.0
    assert value(scraped, name, service=SPLIT, child="default-b-80") == 1.0
    assert value(scraped, name, service="default-byip@kubernetescrd", child="default-a-80") == 2.0


def test_sticky_hits_and_legacy_cookie_rewrites_are_counted(app: Any) -> None:
    pinned = cookie_value("default-b-80")
    answers = asyncio.run(
        drive(
            app,
            requests("w.test", 3, Cookie=f"pin={pinned}")
            + requests("w.test", 2, Cookie="pin=default-b-80")  # a pre-3.3.4 value
            + requests("w.test", 1, Cookie="pin=nobody"),
        )
    )
    assert [a.text for a in answers[:5]] == ["Hello b\n"] * 5
    assert [a.headers.get("set-cookie") for a in answers[3:5]] == [f"pin={pinned}; Path=/"] * 2
    scraped = scrape(app)
    assert value(scraped, "traefikservice_asgi_sticky_cookie_hits_total", service=SPLIT) == 5.0
    assert value(scraped, "traefikservice_asgi_sticky_cookie_rewrites_total", service=SPLIT) == 2.0
    assert picks(scraped, SPLIT)["default-b-80"] >= 5.0


def test_a_kept_service_keeps_its_counts_across_a_reload_a_changed_one_restarts(
    app: Any, backends: dict[str, RecordingBackend]
) -> None:
    asyncio.run(drive(app, requests("w.test", 4) + requests("h.test", 2)))
    changed = CONFIG.replace("{name: a, port: 80, weight: 3}", "{name: a, port: 80, weight: 5}")
    asyncio.run(app.reload(load_config_text(changed, backends=urls(backends))))
    scraped = scrape(app)
    assert picks(scraped, SPLIT) == {"default-a-80": 0.0, "default-b-80": 0.0}
    assert (
        value(scraped, "traefikservice_asgi_balancer_weight", service=SPLIT, child="default-a-80")
        == 5.0
    )
    assert sum(picks(scraped, "default-byip@kubernetescrd").values()) == 2.0
