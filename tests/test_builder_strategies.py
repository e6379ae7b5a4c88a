"""The builder gives a Service's servers the balancer its ``strategy`` names, as
Traefik's ``getLoadBalancerServiceHandler`` switch does."""

from __future__ import annotations

import asyncio
import random
import socket
import sys

import pytest
from starlette.types import ASGIApp, Message, Scope

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

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"x.test")],
        "http_version": "1.1",
        "scheme": "http",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    try:
        await route.handler(scope, receive, send)
    finally:
        await runtime.aclose()
    return sent[0]


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
