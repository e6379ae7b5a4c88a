"""The admin app, the labels, the histogram rows, the access log formats and the cost
switch, in process (``httpx.ASGITransport`` buffers bodies: fine for these answers)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.manifests import WEB_WITH_A_TERMINATING_ENDPOINT, one_route
from traefikservice_asgi import create_app
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.observability import ObservabilityOptions
from traefikservice_asgi.observability.metrics import Metrics, method_label, protocol_label
from traefikservice_asgi.observability.serving import open_connections

SCENARIO = Path(__file__).with_name("scenario.yaml")
UNREACHABLE = "http://127.0.0.1:9"
BACKENDS = {
    key: UNREACHABLE
    for key in (
        "default/app-primary:80",
        "default/app-canary:80",
        "default/app-v1:80",
        "default/app-v2:80",
        "default/app-v3:80",
    )
}


def gateway(**observability: Any) -> Any:
    return create_app(
        [str(SCENARIO)],
        backends=BACKENDS,
        observability=ObservabilityOptions(**observability),
    )


async def get(app: Any, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(url, **kwargs)


@pytest.mark.parametrize(
    ("method", "label"),
    [("GET", "GET"), ("PRI", "PRI"), ("PATCH", "PATCH"), ("PURGE", "EXTENSION_METHOD")],
)
def test_method_label_keeps_known_verbs_only(method: str, label: str) -> None:
    assert method_label(method) == label


@pytest.mark.parametrize(
    ("headers", "protocol"),
    [
        ([(b"connection", b"keep-alive, Upgrade"), (b"upgrade", b"WebSocket")], "websocket"),
        ([(b"accept", b"text/event-stream")], "sse"),
        ([(b"content-type", b"application/grpc-web+proto")], "grpc-web"),
        ([(b"content-type", b"application/grpc")], "grpc"),
        ([(b"content-type", b"text/plain")], "http"),
        # Go's containsHeader: the first value only, items compared whole.
        ([(b"accept", b"text/html"), (b"accept", b"text/event-stream")], "http"),
        ([(b"accept", b"text/event-stream;q=0.9")], "http"),
        ([(b"accept", b"text/html, Text/Event-Stream")], "sse"),
        ([(b"connection", b"upgrades"), (b"upgrade", b"websocket")], "http"),
    ],
)
def test_protocol_label_as_traefik_tests_it(headers: list[Any], protocol: str) -> None:
    assert protocol_label({"type": "http", "headers": headers}) == protocol
    # The entry point's Forward finds the same while it reads the headers.
    scope = {"type": "http", "method": "GET", "path": "/", "http_version": "1.1"}
    assert prepare({**scope, "headers": [(b"host", b"a"), *headers]}).protocol == protocol


def test_histogram_bucket_bounds_are_inclusive_as_prometheus_le() -> None:
    metrics = Metrics(ObservabilityOptions(metrics=True))
    rows: dict[Any, Any] = {}
    for seconds in (0.1, 0.2, 0.3, 5.0, 7.0):
        metrics.observe(rows, (200, "GET", "http"), seconds, 1, 2)
    row = rows[(200, "GET", "http")]
    assert row.buckets == [1, 2, 0, 1, 1]
    assert (row.count, row.request_bytes, row.response_bytes) == (5, 5, 10)


def test_metrics_off_installs_no_wrapper_at_all() -> None:
    app = gateway()
    assert app.metrics is None and app._observer is None
    leaf = app.routes[2].handler
    assert type(leaf).__name__ == "Server"


def test_admin_metrics_exposes_traefiks_startup_series() -> None:
    app = gateway(metrics=True)
    text = asyncio.run(get(app.admin_app, "/metrics")).text
    assert "traefik_config_reloads_total 2.0" in text
    assert re.search(r"^traefik_config_last_reload_success \d", text, re.M)
    assert "# TYPE traefik_open_connections gauge" in text


def test_a_failed_server_is_counted_under_its_leaf_with_traefiks_502() -> None:
    app = gateway(metrics=True)
    answer = asyncio.run(get(app, "/", headers={"Host": "plain.test"}))
    assert answer.status_code == 502
    text = asyncio.run(get(app.admin_app, "/metrics")).text
    series = re.findall(r"^traefik_service_requests_total\{(.*)\} (\S+)$", text, re.M)
    router = app.routes[2].observed[0]
    assert series == [(f'code="502",method="GET",protocol="http",service="{router}"', "1.0")]


def test_ping_answers_ok_then_503_once_shutdown_begins() -> None:
    app = gateway(metrics=True)
    first = asyncio.run(get(app.admin_app, "/ping"))
    assert (first.status_code, first.text) == (200, "OK")
    app.shutting_down = True
    second = asyncio.run(get(app.admin_app, "/ping"))
    assert second.status_code == 503


def test_the_main_listener_never_answers_admin_paths() -> None:
    app = gateway(metrics=True)
    for path in ("/metrics", "/ping", "/api/version"):
        assert asyncio.run(get(app, path)).status_code == 404


def test_api_shapes() -> None:
    app = gateway(metrics=True)
    version = asyncio.run(get(app.admin_app, "/api/version")).json()
    assert version["Version"] == "3.7.15"
    services = asyncio.run(get(app.admin_app, "/api/http/services")).json()
    by_name = {s["name"]: s for s in services}
    canary = by_name["default-canary@kubernetescrd"]
    assert canary["type"] == "weighted" and canary["status"] == "enabled"
    assert canary["weighted"]["services"] == [
        {"name": "default-app-primary-80", "weight": 3},
        {"name": "default-app-canary-80", "weight": 1},
    ]
    one = asyncio.run(get(app.admin_app, "/api/http/services/default-canary@kubernetescrd"))
    assert one.json()["name"] == "default-canary@kubernetescrd"
    routers = asyncio.run(get(app.admin_app, "/api/http/routers")).json()
    assert len(routers) == 3 and all(r["name"].endswith("@kubernetescrd") for r in routers)
    overview = asyncio.run(get(app.admin_app, "/api/overview")).json()
    assert overview["http"]["routers"]["total"] == 3
    assert asyncio.run(get(app.admin_app, "/api/http/routers/nope")).status_code == 404


def test_api_marks_a_fenced_server_as_traefik_does(tmp_path: Path) -> None:
    # Traefik's dynamic.Server: `"fenced": true` on a terminating endpoint, absent
    # (omitempty) on the others.
    routes = tmp_path / "routes.yaml"
    routes.write_text(WEB_WITH_A_TERMINATING_ENDPOINT + one_route("{name: web, port: 80}"))
    app = create_app([str(routes)], observability=ObservabilityOptions(metrics=True))
    services = asyncio.run(get(app.admin_app, "/api/http/services")).json()
    (balancer,) = [s["loadBalancer"] for s in services if s["type"] == "loadbalancer"]
    assert balancer["servers"] == [
        {"url": "http://10.0.0.1:8080"},
        {"url": "http://10.0.0.2:8080", "fenced": True},
    ]


def test_common_access_log_line_is_traefiks_clf(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    app = gateway(access_log=True, access_log_file=str(log))
    asyncio.run(get(app, "/x?y=1", headers={"Host": "plain.test"}))
    asyncio.run(get(app, "/", headers={"Host": "nowhere.test"}))
    assert app.access_log is not None
    app.access_log.close()
    first, second = log.read_text().splitlines()
    router = app.routes[2].observed[0]
    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /x\?y=1 HTTP/1\.1" '
        rf'502 11 "-" "-" 1 "{router}" "{UNREACHABLE}" \d+ms',
        first,
    ), first
    assert re.fullmatch(r'.*"GET / HTTP/1\.1" 404 19 "-" "-" 2 "-" "-" \d+ms', second), second


def test_json_access_log_has_traefiks_field_names(tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    app = gateway(access_log=True, access_log_format="json", access_log_file=str(log))
    asyncio.run(get(app, "/", headers={"Host": "plain.test"}))
    assert app.access_log is not None
    app.access_log.close()
    record = json.loads(log.read_text())
    assert record["DownstreamStatus"] == 502 and record["OriginStatus"] == 502
    assert record["ServiceURL"] == UNREACHABLE and record["ServiceAddr"] == "127.0.0.1:9"
    assert record["entryPointName"] == "web" and record["RequestCount"] == 1


def test_open_connections_counts_established_connections_to_a_port() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            conn, _ = server.accept()
            with conn:
                assert open_connections({"web": port}) == {"web": 1}  # the server's end
