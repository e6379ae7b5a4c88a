"""The oracle harness itself: recording backends, uvicorn runner, CRD translator, Traefik.

These tests prove that what the conformance tests compare against is really Traefik's
behaviour as documented in ``shared/reference/traefik-observed.md``.
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.runner import (
    INDEX_HEADER,
    Observation,
    Request,
    TargetRun,
    assert_same,
    blog_manifests,
    normalized_headers,
    repeat,
    requires_traefik,
    run_traefik,
)
from tests.conformance.translate import (
    TranslationError,
    cookie_name_for,
    default_cookie_renames,
    normalize,
    route_key,
    translate,
    translate_all,
)
from tests.support.backends import RecordedRequest, RecordingBackend
from tests.support.gateway import serve_app
from tests.support.traefik import TraefikError, TraefikProcess

WRR_HOST = "traefikservice-wrr.kubesre.lc"
COOKIE_HOST = "traefikservice-cokie.kubesre.lc"
COPY_HOST = "traefikservice-copy.kubesre.lc"
BLOG_BACKENDS = {"default/app-v1:80": "app-v1", "default/app-v2:80": "app-v2"}
V1_COOKIE = "9b9c0de427c34a54"  # sha256("default-app-v1-80")[:16]
V2_COOKIE = "9ccaa1a0753f2143"  # sha256("default-app-v2-80")[:16]


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=5.0)


# -- RecordingBackend -----------------------------------------------------------------------


def test_backend_answers_like_the_walkthrough_nginx_and_records_the_request() -> None:
    with RecordingBackend("app-v1") as backend, _client() as client:
        response = client.get(f"{backend.url}/a%20b?x=1&y", headers={"X-Mixed-Case": "v"})
        recorded = backend.wait_for_requests(1)[0]
    assert response.status_code == 200
    assert response.text == "Hello app-v1\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-backend"] == "app-v1"
    assert (recorded.method, recorded.path, recorded.query) == ("GET", "/a%20b", "x=1&y")
    assert ("X-Mixed-Case", "v") in recorded.headers  # original case kept
    assert recorded.complete


def test_backend_keeps_the_connection_alive_and_reads_chunked_and_sized_bodies() -> None:
    def chunks() -> Any:
        yield b"abc"
        yield b"defg"

    with RecordingBackend("b", status=201, body=b"ok", headers=[("X-Extra", "1")]) as backend:
        with _client() as client:
            first = client.post(backend.url, content=b"12345")
            second = client.post(backend.url, content=chunks())
        recorded = backend.wait_for_requests(2)
    assert (first.status_code, first.text, first.headers["x-extra"]) == (201, "ok", "1")
    assert second.status_code == 201
    assert [(r.body, r.chunked) for r in recorded] == [(b"12345", False), (b"abcdefg", True)]


def test_backend_records_a_body_cut_short_by_the_client() -> None:
    with RecordingBackend("b") as backend:
        with socket.create_connection(("127.0.0.1", backend.port), timeout=5) as sock:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        recorded = backend.wait_for_requests(1)[0]
    assert (recorded.body, recorded.complete) == (b"abc", False)


def test_backend_wait_for_requests_times_out_with_a_clear_error() -> None:
    with (
        RecordingBackend("idle") as backend,
        pytest.raises(RuntimeError, match="expected at least 1"),
    ):
        backend.wait_for_requests(1, timeout=0.05)


# -- serve_app ------------------------------------------------------------------------------


def test_serve_app_runs_the_lifespan_and_serves_requests() -> None:
    events: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]
                events.append(kind)
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with serve_app(app) as base_url, _client() as client:
        assert base_url.startswith("http://127.0.0.1:")
        assert client.get(f"{base_url}/ping").text == "/ping"
    assert events == ["startup", "shutdown"]


# -- translate ------------------------------------------------------------------------------


def test_normalize_and_derived_names_follow_traefik() -> None:
    assert normalize("default-app.v1--80") == "default-app-v1-80"
    assert normalize("__x__y__") == "x-y"
    # The CRD provider's own example (shared/reference/traefik-source-semantics.md §5.2).
    key = route_key("default", "test.route", "Host(`foo.com`) && PathPrefix(`/bar`)")
    assert key == "default-test-route-6b204d94623b3df4370c"
    # Traefik's cookie_test.go vector and the names observed from the real binary.
    assert cookie_name_for("/my/BACKEND-v1.0~rc1") == "_5f7bc"
    assert cookie_name_for("wrr-sticky-default@file") == "_964af"
    assert cookie_name_for("default-app@kubernetescrd") == "_ee2b3"


def test_translate_blog_manifests() -> None:
    dynamic = translate(
        blog_manifests(), {"default/app-v1:80": "http://x1", "default/app-v2:80": "http://x2"}
    )
    services = dynamic["http"]["services"]
    assert services["default-app-v1-80"] == {
        "loadBalancer": {"servers": [{"url": "http://x1"}], "passHostHeader": True}
    }
    weighted = [
        {"name": "default-app-v1-80", "weight": 1},
        {"name": "default-app-v2-80", "weight": 2},
    ]
    assert services["default-wrr"] == {"weighted": {"services": weighted}}
    assert services["default-cokie"] == {
        "weighted": {"services": weighted, "sticky": {"cookie": {"name": "cookie"}}}
    }
    assert services["default-copy"] == {
        "mirroring": {
            "service": "default-app-v1-80",
            "mirrors": [{"name": "default-app-v2-80", "percent": 10}],
        }
    }
    routers = {r["rule"]: (name, r["service"]) for name, r in dynamic["http"]["routers"].items()}
    assert routers[f"Host(`{WRR_HOST}`)"] == (
        route_key("default", "app-ingressroute-wrr", f"Host(`{WRR_HOST}`)"),
        "default-wrr",
    )
    assert {service for _, service in routers.values()} == {
        "default-wrr",
        "default-cokie",
        "default-copy",
    }


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifests.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_translate_route_services_like_the_crd_provider(tmp_path: Path) -> None:
    manifests = _write(
        tmp_path,
        """\
        apiVersion: v1
        kind: Service
        metadata: {name: app-v1, namespace: default}
        spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
        ---
        apiVersion: v1
        kind: Endpoints
        metadata: {name: app-v1, namespace: default}
        subsets: [{addresses: [{ip: 127.0.0.1}], ports: [{name: http, port: 8080}]}]
        ---
        apiVersion: traefik.io/v1alpha1
        kind: IngressRoute
        metadata: {name: r, namespace: default}
        spec:
          routes:
          - match: Host(`one.test`)
            priority: 7
            services: [{name: app-v1, port: http}]
          - match: Host(`two.test`)
            services: [{name: app-v1, port: 80, weight: 3}, {name: sticky, kind: TraefikService}]
        ---
        apiVersion: traefik.io/v1alpha1
        kind: TraefikService
        metadata: {name: sticky, namespace: default}
        spec:
          weighted:
            services: [{name: app-v1, port: 80}]
            sticky: {cookie: {}}
        """,
    )
    dynamic = translate([manifests], {})
    one, two = (
        route_key("default", "r", "Host(`one.test`)"),
        route_key("default", "r", "Host(`two.test`)"),
    )
    routers, services = dynamic["http"]["routers"], dynamic["http"]["services"]
    assert routers[one] == {
        "entryPoints": ["web"],
        "rule": "Host(`one.test`)",
        "priority": 7,
        "service": one,
    }
    # One Kubernetes Service: a loadBalancer under the router's name, servers from Endpoints.
    assert services[one]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:8080"}]
    # Two services: an implicit weighted service under the router's name.
    assert services[two] == {
        "weighted": {
            "services": [
                {"name": "default-app-v1-80", "weight": 3},
                {"name": "default-sticky", "weight": 1},
            ]
        }
    }
    assert default_cookie_renames(dynamic) == {
        cookie_name_for("default-sticky@file"): cookie_name_for("default-sticky@kubernetescrd")
    }


def test_translate_refuses_what_traefik_refuses(tmp_path: Path) -> None:
    manifests = _write(
        tmp_path,
        """\
        apiVersion: traefik.containo.us/v1alpha1
        kind: TraefikService
        metadata: {name: cross, namespace: default}
        spec:
          weighted:
            services: [{name: app, namespace: other, port: 80}]
        """,
    )
    with pytest.raises(TranslationError, match="not in the parent resource namespace default"):
        translate([manifests], {"other/app:80": "http://x"})
    lenient = translate_all([manifests], {"other/app:80": "http://x"}, strict=False)
    assert lenient.dynamic["http"]["services"] == {}
    assert "TraefikService default/cross" in lenient.skipped[0]


# -- comparison messages --------------------------------------------------------------------


def _run(target: str, backends: list[str], mirror: list[int]) -> TargetRun:
    def recorded(index: int) -> RecordedRequest:
        return RecordedRequest("GET", "/", "", ((INDEX_HEADER, str(index)),), b"")

    return TargetRun(
        target=target,
        requests=[Request(WRR_HOST)] * len(backends),
        observations=[Observation(i, 200, b"", b, ()) for i, b in enumerate(backends)],
        received={"mirror": [recorded(i) for i in mirror]},
    )


def test_comparison_names_the_first_differing_request() -> None:
    traefik = _run("traefik", ["app-v2", "app-v1", "app-v2"], [0, 10])
    assert_same(traefik, _run("gateway", ["app-v2", "app-v1", "app-v2"], [10, 0]))
    with pytest.raises(AssertionError, match=r"request index 1 .*backend differs") as info:
        assert_same(traefik, _run("gateway", ["app-v2", "app-v2", "app-v1"], [0, 10]))
    assert "traefik: 'app-v1'" in str(info.value)
    with pytest.raises(
        AssertionError, match=r"'mirror' received .*traefik index 10, gateway index 11"
    ):
        assert_same(traefik, _run("gateway", ["app-v2", "app-v1", "app-v2"], [0, 11]))


def test_normalized_headers_ignore_case_date_server_and_ephemeral_ports() -> None:
    request = RecordedRequest(
        "GET",
        "/",
        "",
        (
            ("Host", "127.0.0.1:4242"),
            ("Date", "x"),
            ("X-Forwarded-Server", "vm"),
            ("X-Forwarded-Port", "80"),
        ),
        b"",
    )
    assert normalized_headers(request, {4242: "<backend:a>"}) == [
        ("host", "127.0.0.1:<backend:a>"),
        ("x-forwarded-port", "80"),
    ]


# -- Traefik --------------------------------------------------------------------------------


@requires_traefik
def test_traefik_reproduces_the_observed_blog_behaviour(tmp_path: Path) -> None:
    script = [
        *repeat(30, WRR_HOST),
        *repeat(6, COOKIE_HOST),
        *repeat(2, COOKIE_HOST, cookies={"cookie": "default-app-v1-80"}),
        *repeat(2, COOKIE_HOST, cookies={"cookie": V2_COOKIE}),
        *repeat(25, COPY_HOST),
    ]
    run = run_traefik(blog_manifests(), script, BLOG_BACKENDS, tmp_path=tmp_path)
    seen = [(o.status, o.backend) for o in run.observations]
    assert {status for status, _ in seen} == {200}
    short = [backend[-2:] if backend else None for _, backend in seen]
    assert short[:30] == ["v2", "v1", "v2"] * 10  # EDF, heavier child first
    assert short[30:36] == ["v2", "v1", "v2"] * 2
    assert [o.set_cookies for o in run.observations[30:36]] == [
        (f"cookie={V2_COOKIE if s == 'v2' else V1_COOKIE}; Path=/",) for s in short[30:36]
    ]
    # A v2-style (plain name) cookie pins its child and is rewritten to the hashed value.
    assert short[36:38] == ["v1", "v1"]
    assert [o.set_cookies for o in run.observations[36:38]] == [
        (f"cookie={V1_COOKIE}; Path=/",)
    ] * 2
    # A v3 (hashed) cookie pins its child, no Set-Cookie.
    assert short[38:40] == ["v2", "v2"]
    assert [o.set_cookies for o in run.observations[38:40]] == [(), ()]
    # Mirroring 10 %: every response from app-v1; app-v2 gets the 1st, 11th, 21st copy request.
    assert short[40:] == ["v1"] * 25
    assert run.indexes("app-v2") == [i for i in range(40) if short[i] == "v2"] + [40, 50, 60]
    mirrored = run.by_index("app-v2")[40]
    assert mirrored.header("Host") == COPY_HOST
    assert mirrored.header("X-Forwarded-Host") == COPY_HOST
    assert run.indexes("app-v1") == sorted(
        [i for i in range(40) if short[i] == "v1"] + list(range(40, 65))
    )


@requires_traefik
def test_traefik_default_cookie_name_is_reported_under_our_name(tmp_path: Path) -> None:
    manifests = _write(
        tmp_path,
        """\
        apiVersion: traefik.io/v1alpha1
        kind: IngressRoute
        metadata: {name: r, namespace: default}
        spec:
          routes:
          - match: Host(`sticky.test`)
            services: [{name: app, kind: TraefikService}]
        ---
        apiVersion: traefik.io/v1alpha1
        kind: TraefikService
        metadata: {name: app, namespace: default}
        spec:
          weighted:
            services: [{name: app-v1, port: 80}, {name: app-v2, port: 80, weight: 2}]
            sticky: {cookie: {}}
        """,
    )
    ours = cookie_name_for("default-app@kubernetescrd")
    script = [Request("sticky.test"), Request.make("sticky.test", cookies={ours: V1_COOKIE})]
    run = run_traefik([manifests], script, BLOG_BACKENDS, tmp_path=tmp_path / "traefik")
    assert ours == "_ee2b3"
    assert run.observations[0].set_cookies == (f"_ee2b3={V2_COOKIE}; Path=/",)
    # Our name was translated to Traefik's on the way in: the cookie pinned app-v1.
    assert (run.observations[1].backend, run.observations[1].set_cookies) == ("app-v1", ())


@requires_traefik
def test_traefik_process_reports_router_errors_with_the_log_tail(tmp_path: Path) -> None:
    dynamic = {
        "http": {
            "routers": {
                "bad": {"rule": "Host(`bad.test`)", "service": "m", "entryPoints": ["web"]}
            },
            "services": {
                "m": {"mirroring": {"service": "lb", "mirrors": [{"name": "lb", "percent": 200}]}},
                "lb": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}},
            },
        }
    }
    refused = TraefikProcess(dynamic, tmp_path=tmp_path)
    with pytest.raises(TraefikError, match="percent must be between 0 and 100") as info:
        refused.start()
    assert refused.pid is None  # stopped on the failure
    assert "tail of" in str(info.value)
    with (
        TraefikProcess(dynamic, tmp_path=tmp_path, allow_router_errors=True) as traefik,
        _client() as client,
    ):
        response = client.get(traefik.url, headers={"Host": "bad.test"})
    assert (response.status_code, response.text) == (404, "404 page not found\n")
