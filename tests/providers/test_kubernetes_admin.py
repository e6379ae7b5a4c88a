"""``serve --kubernetes --admin-port``: the admin listener the pod's probes use."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support.backends import RecordingBackend
from tests.support.fake_apiserver import FakeApiServer
from tests.support.kube import KubeGateway, route, service, slice_
from tests.support.traefik import free_port

HOST = "admin.test"


def test_serve_kubernetes_admin_port_answers_ping_and_counts_gateway_traffic(
    tmp_path: Path,
) -> None:
    admin = free_port()
    with RecordingBackend("app-v1") as v1, FakeApiServer() as api:
        api.put(
            service("app-v1"),
            slice_("app-v1", v1.port, "127.0.0.1"),
            route("web", HOST, {"name": "app-v1", "port": 80}),
        )
        gateway = KubeGateway(
            api,
            tmp_path / "gateway.log",
            extra=["--admin-port", str(admin), "--admin-host", "127.0.0.1"],
        )
        try:
            ping = httpx.get(f"http://127.0.0.1:{admin}/ping")
            assert (ping.status_code, ping.text) == (200, "OK")
            for _ in range(3):
                answer = httpx.get(gateway.url, headers={"Host": HOST})
                assert answer.text == "Hello app-v1\n"
            # The main listener never answers the admin paths.
            assert httpx.get(f"{gateway.url}/ping").status_code == 404
            text = httpx.get(f"http://127.0.0.1:{admin}/metrics").text
        finally:
            gateway.stop()
    # A route's Service reference is named as Traefik names it: route, then a hash.
    series = re.findall(
        r'^traefik_service_requests_total\{code="200",method="GET",protocol="http",'
        r'service="default-web-[0-9a-f]+@kubernetescrd"\} (\S+)$',
        text,
        re.M,
    )
    assert series == ["3.0"], text
    assert re.search(
        r'^traefik_open_connections\{entrypoint="traefik",protocol="TCP"\} ', text, re.M
    )
