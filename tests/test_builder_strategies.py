"""The builder gives a Service's servers the balancer its ``strategy`` names, as
Traefik's ``getLoadBalancerServiceHandler`` switch does."""

from __future__ import annotations

import asyncio
import random
import socket
import sys

import pytest
from starlette.types import ASGIApp, Message, Scope

from tests.support.backends import RecordingBackend
from tests.support.manifests import one_route
from tests.support.traefik import free_port_on
from traefikservice_asgi import load_config_text
from traefikservice_asgi.builder import build_runtime
from traefikservice_asgi.loadbalancer.hrw import HighestRandomWeight
from traefikservice_asgi.loadbalancer.leasttime import LeastTime
from traefikservice_asgi.loadbalancer.p2c import PowerOfTwoChoices
from traefikservice_asgi.loadbalancer.sticky import cookie_value
from traefikservice_asgi.loadbalancer.wrr import WeightedRoundRobin
from traefikservice_asgi.options import GatewayOptions
from traefikservice_asgi.proxy import Server
from traefikservice_asgi.runtime import Runtime

SERVERS = ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]


def runtime_of(service: str, servers: list[str] = SERVERS) -> Runtime:
    text = f"""\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes:
    - match: Host(`x.test`)
      services: [{service}]
"""
    config = load_config_text(text, backends={"default/app:80": servers})
    return build_runtime(config, GatewayOptions(rng=random.Random(0)))


def built(service: str, servers: list[str] = SERVERS) -> ASGIApp:
    (route,) = runtime_of(service, servers).routes
    return route.handler


@pytest.mark.parametrize(
    ("strategy", "balancer"),
    [
        ("wrr", WeightedRoundRobin),
        ("RoundRobin", WeightedRoundRobin),
        ("p2c", PowerOfTwoChoices),
        ("hrw", HighestRandomWeight),
        ("leasttime", LeastTime),
    ],
)
def test_each_strategy_builds_its_own_balancer_over_the_servers(
    strategy: str, balancer: type
) -> None:
    handler = built(f"{{name: app, port: 80, strategy: {strategy}}}")
    assert isinstance(handler, balancer)


@pytest.mark.parametrize("strategy", ["p2c", "leasttime"])
def test_sticky_on_a_p2c_or_leasttime_service_sets_the_server_url_cookie(strategy: str) -> None:
    with socket.socket() as one, socket.socket() as two:
        urls = []
        for refusing in (one, two):  # bound, never listening: every connection refused
            refusing.bind(("127.0.0.1", 0))
            urls.append(f"http://127.0.0.1:{refusing.getsockname()[1]}")
        sticky = "sticky: {cookie: {name: pin}}"
        runtime = runtime_of(f"{{name: app, port: 80, strategy: {strategy}, {sticky}}}", urls)
        start = asyncio.run(serve(runtime))
    assert start["status"] == 502
    cookies = [v for k, v in start["headers"] if k == b"set-cookie"]
    assert cookies in [[f"pin={cookie_value(url)}; Path=/".encode()] for url in urls]


async def serve(runtime: Runtime) -> Message:
    (route,) = runtime.routes
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        await route.handler(x_test_scope(), _no_body, send)
    finally:
        await runtime.aclose()
    return sent[0]


def x_test_scope(cookie: str | None = None) -> Scope:
    """A GET for ``x.test`` as an ASGI server builds it, with a Cookie header if given."""
    headers = [(b"host", b"x.test")] + ([(b"cookie", cookie.encode())] if cookie else [])
    return {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "http_version": "1.1",
        "scheme": "http",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_one_server_is_served_directly_whatever_the_strategy() -> None:
    for strategy in ("p2c", "hrw", "leasttime"):
        handler = built(f"{{name: app, port: 80, strategy: {strategy}}}", SERVERS[:1])
        assert isinstance(handler, Server) and handler.url == SERVERS[0]


def test_servers_are_named_by_their_url_for_hrw_scores() -> None:
    handler = built("{name: app, port: 80, strategy: hrw}")
    assert isinstance(handler, HighestRandomWeight)
    assert handler.pick("10.0.0.1") in SERVERS


def test_the_registry_has_a_balancer_for_every_strategy_the_config_accepts() -> None:
    from traefikservice_asgi.builder import SERVERS_STRATEGIES
    from traefikservice_asgi.config.models import STRATEGIES

    assert sorted(SERVERS_STRATEGIES) == sorted(STRATEGIES)
    assert SERVERS_STRATEGIES["p2c"] is PowerOfTwoChoices


def test_a_new_strategy_is_its_module_and_its_name_in_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What docs/guides/adding-a-strategy.md promises: a module
    ``loadbalancer/<name>.py`` exporting ``BALANCER``, and the name in STRATEGIES."""
    import types

    from traefikservice_asgi import builder

    class FirstUp:
        reads_answers = False

    module = types.ModuleType("traefikservice_asgi.loadbalancer.first_up")
    module.BALANCER = FirstUp  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(builder, "STRATEGIES", (*builder.STRATEGIES, "first-up"))
    assert builder._servers_strategies()["first-up"] is FirstUp


# A Service whose EndpointSlice has a pod going away (`terminating: true`, still
# serving): Traefik 3.7 fences it, whatever the strategy.
FENCED = """\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: default
  labels: {{kubernetes.io/service-name: web}}
ports: [{{name: http, port: {port}}}]
endpoints:
{endpoints}
---
"""
LIVE = "  - {addresses: [127.0.0.1], conditions: {ready: true}}"
GOING = "  - {addresses: [127.0.0.2], conditions: {ready: false, serving: true, terminating: true}}"


def fenced_runtime(port: int, options: str, endpoints: str = LIVE + "\n" + GOING) -> Runtime:
    text = FENCED.format(port=port, endpoints=endpoints) + one_route(
        f"{{name: web, port: 80, {options}}}"
    )
    return build_runtime(load_config_text(text), GatewayOptions(rng=random.Random(0)))


def statuses(runtime: Runtime, cookies: list[str | None]) -> list[int]:
    """One request per entry of ``cookies`` (a Cookie header, or none) through the only
    route, in one event loop; the runtime is closed after."""
    (route,) = runtime.routes

    async def one(cookie: str | None) -> int:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await route.handler(x_test_scope(cookie), _no_body, send)
        return int(sent[0]["status"])

    async def all_of_them() -> list[int]:
        try:
            return [await one(cookie) for cookie in cookies]
        finally:
            await runtime.aclose()

    return asyncio.run(all_of_them())


@pytest.mark.parametrize("strategy", ["wrr", "p2c", "hrw", "leasttime"])
def test_a_terminating_endpoint_gets_no_new_request_whatever_the_strategy(strategy: str) -> None:
    port = free_port_on("127.0.0.1", "127.0.0.2")
    with (
        RecordingBackend("live", port=port) as live,
        RecordingBackend("going", host="127.0.0.2", port=port) as going,
    ):
        assert statuses(fenced_runtime(port, f"strategy: {strategy}"), [None] * 6) == [200] * 6
        assert (live.count, going.count) == (6, 0)


@pytest.mark.parametrize("strategy", ["wrr", "p2c", "leasttime"])
def test_a_sticky_cookie_naming_a_terminating_endpoint_still_reaches_it(strategy: str) -> None:
    port = free_port_on("127.0.0.1", "127.0.0.2")
    pinned = f"pin={cookie_value(f'http://127.0.0.2:{port}')}"
    options = f"strategy: {strategy}, sticky: {{cookie: {{name: pin}}}}"
    with (
        RecordingBackend("live", port=port) as live,
        RecordingBackend("going", host="127.0.0.2", port=port) as going,
    ):
        assert statuses(fenced_runtime(port, options), [pinned, None, pinned]) == [200] * 3
        assert (live.count, going.count) == (1, 2)


@pytest.mark.parametrize("strategy", ["wrr", "p2c", "hrw", "leasttime"])
def test_a_service_left_with_terminating_endpoints_only_answers_503(strategy: str) -> None:
    port = free_port_on("127.0.0.1", "127.0.0.2")
    with RecordingBackend("going", host="127.0.0.2", port=port) as going:
        runtime = fenced_runtime(port, f"strategy: {strategy}", GOING)
        assert statuses(runtime, [None] * 2) == [503] * 2  # one server, yet a balancer
        assert going.count == 0
