"""The middleware owns matching requests and nothing else, and cleans up what it owns."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import receiver, run
from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app
from traefikservice_asgi import ConfigError, TraefikServiceMiddleware, create_app, load_config

BLOG = Path(__file__).resolve().parents[1] / "traefikservice_asgi" / "_blog"
BACKENDS = {"default/app-v1:80": "http://127.0.0.1:1", "default/app-v2:80": "http://127.0.0.1:2"}


class Inner:
    """The wrapped app: records the exact (scope, messages) it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Scope, list[Message]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = [await receive()] if scope["type"] == "http" else []
        self.calls.append((scope, received))
        if scope["type"] == "http":
            await send(
                {"type": "http.response.start", "status": 218, "headers": [(b"x-inner", b"1")]}
            )
            await send({"type": "http.response.body", "body": b"inner"})


def call(app: TraefikServiceMiddleware, scope: Scope, body: bytes = b"") -> list[Message]:
    return run(app, scope, receiver([body]))


def http_scope(host: bytes) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"",
        "headers": [(b"host", host), (b"x-forwarded-for", b"203.0.113.7")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


def test_unmatched_request_reaches_the_wrapped_app_untouched() -> None:
    inner = Inner()
    app = TraefikServiceMiddleware(inner, BLOG, backends=BACKENDS)
    scope = http_scope(b"other.test")
    sent = call(app, scope, body=b"payload")
    ((seen_scope, received),) = inner.calls
    assert seen_scope is scope  # the very same object, headers and all
    assert received == [{"type": "http.request", "body": b"payload", "more_body": False}]
    assert sent == [
        {"type": "http.response.start", "status": 218, "headers": [(b"x-inner", b"1")]},
        {"type": "http.response.body", "body": b"inner"},
    ]


def test_unmatched_websockets_and_unknown_scope_types_pass_through() -> None:
    inner = Inner()
    app = TraefikServiceMiddleware(inner, BLOG, backends=BACKENDS)
    for kind, host in (("websocket", b"other.test"), ("custom", b"traefikservice-wrr.kubesre.lc")):
        scope = {**http_scope(host), "type": kind}
        call(app, scope)
        assert inner.calls[-1][0] is scope


def test_matched_request_does_not_reach_the_wrapped_app() -> None:
    inner = Inner()
    app = TraefikServiceMiddleware(inner, BLOG, backends=BACKENDS)
    sent = call(app, http_scope(b"traefikservice-wrr.kubesre.lc"))
    assert inner.calls == []
    assert sent[0]["status"] == 502  # nothing listens on port 1 or 2


def test_invalid_config_fails_at_construction_not_on_first_request(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: x}\nspec: {}\n"
    )
    with pytest.raises(
        ConfigError, match=r"bad\.yaml:4: TraefikService default/x: spec: unspecified service type"
    ):
        TraefikServiceMiddleware(Inner(), tmp_path)


def test_a_loaded_config_object_is_accepted_as_is() -> None:
    config = load_config(BLOG, backends=BACKENDS)
    app = TraefikServiceMiddleware(Inner(), config)
    assert app.config is config
    assert [r.name for r in app.routes] == [r.name for r in config.routes]


def test_lifespan_shutdown_closes_the_client_it_created() -> None:
    with RecordingBackend("app-v1") as v1, RecordingBackend("app-v2") as v2:
        app = create_app(BLOG, backends={"default/app-v1:80": v1.url, "default/app-v2:80": v2.url})
        with serve_app(app) as url:
            assert (
                httpx.get(url, headers={"Host": "traefikservice-wrr.kubesre.lc"}).status_code == 200
            )
            client = app.runtime.holder.client
            assert not client.is_closed
        assert client.is_closed


def test_a_client_passed_in_is_used_and_left_open() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=httpx.ByteStream(b"from the user's client"))

    async def go() -> tuple[list[Message], bool]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        app = TraefikServiceMiddleware(Inner(), BLOG, backends=BACKENDS, client=client)
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await app(http_scope(b"traefikservice-wrr.kubesre.lc"), receive, send)
        await app.aclose()
        left_open = not client.is_closed
        await client.aclose()  # the user's to close, in the loop that used it
        return sent, left_open

    sent, left_open = asyncio.run(go())
    assert left_open
    assert [str(r.url) for r in seen] == ["http://127.0.0.1:2/x"]  # app-v2, the first pick
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"from the user's client"


def test_starlette_app_keeps_its_routes_and_lifespan() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("starlette home")

    with RecordingBackend("app-v1") as v1, RecordingBackend("app-v2") as v2:
        app = Starlette(routes=[Route("/", home)], lifespan=lifespan)
        app.add_middleware(
            TraefikServiceMiddleware,
            config=BLOG,
            backends={"default/app-v1:80": v1.url, "default/app-v2:80": v2.url},
        )
        with serve_app(app) as url:
            assert httpx.get(url, headers={"Host": "localhost"}).text == "starlette home"
            assert (
                httpx.get(url, headers={"Host": "traefikservice-wrr.kubesre.lc"}).text
                == "Hello app-v2\n"
            )
    assert events == ["startup", "shutdown"]


def test_fastapi_example_serves_its_own_routes_and_proxies_the_blog_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    with RecordingBackend("app-v1") as v1, RecordingBackend("app-v2") as v2:
        monkeypatch.setenv("APP_V1", v1.url)
        monkeypatch.setenv("APP_V2", v2.url)
        path = Path(__file__).resolve().parents[1] / "examples" / "fastapi_app.py"
        spec = importlib.util.spec_from_file_location("fastapi_app_example", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        app: FastAPI = module.app
        with serve_app(app) as url:
            assert httpx.get(url + "/health").json() == {"status": "ok"}
            r = httpx.get(url, headers={"Host": "traefikservice-copy.kubesre.lc"})
            assert r.text == "Hello app-v1\n"
            v2.wait_for_requests(1)  # the 10 % mirror copies the first request


WRR_HOST = b"traefikservice-wrr.kubesre.lc"


def test_inside_an_app_options_star_goes_to_the_app_even_when_a_route_matches_its_host() -> None:
    inner = Inner()
    app = TraefikServiceMiddleware(inner, BLOG, backends=BACKENDS)
    scope = {**http_scope(WRR_HOST), "method": "OPTIONS", "path": "*", "raw_path": b"*"}
    sent = call(app, scope)
    assert [seen for seen, _ in inner.calls] == [scope]  # the server's business: never routed
    assert sent[0]["status"] == 218


def test_inside_an_app_a_non_ascii_host_never_folds_into_a_route_s_ascii_name() -> None:
    inner = Inner()
    app = TraefikServiceMiddleware(inner, BLOG, backends=BACKENDS)
    hosts = [
        "traef\u0130kservice-wrr.kubesre.lc",  # U+0130 lowercases to "i" in Go and Python
        "traefikservice-wrr.kubesre.lc\u00a0",  # trailing spaces Go's TrimSpace would trim
        "traefikservice-wrr.kubesre.lc\u0085",
        "\u3000traefikservice-wrr.kubesre.lc",
    ]
    for host in hosts:
        assert call(app, http_scope(host.encode()))[0]["status"] == 218
    assert len(inner.calls) == len(hosts)


def test_inside_an_app_a_matched_request_with_two_hosts_is_refused_as_go_refuses_it() -> None:
    inner = Inner()
    app = TraefikServiceMiddleware(inner, BLOG, backends=BACKENDS)
    scope = http_scope(WRR_HOST)
    scope["headers"] = [*scope["headers"], (b"host", b"other.test")]
    sent = call(app, scope)
    assert inner.calls == []
    assert sent[0]["status"] == 400
    assert (b"connection", b"close") in sent[0]["headers"]
    assert sent[1]["body"] == b"400 Bad Request"


# ------------------------------------------- a bad configuration under a real uvicorn

FASTAPI_APP = """\
from fastapi import FastAPI
from traefikservice_asgi import TraefikServiceMiddleware

app = FastAPI()
app.add_middleware(TraefikServiceMiddleware, config="broken.yaml")
"""

BROKEN_ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`a.test`)
      services: [{name: app, port: 80, wieght: 2}]
"""


def _uvicorn(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], str]:
    (tmp_path / "app.py").write_text(FASTAPI_APP)
    (tmp_path / "broken.yaml").write_text(BROKEN_ROUTE)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), *flags],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}/"


def test_fastapi_with_a_bad_config_stops_uvicorn_at_startup_with_lifespan_on(
    tmp_path: Path,
) -> None:
    """What the README and the getting-started guide promise with ``--lifespan on``."""
    proc, _ = _uvicorn(tmp_path, "--lifespan", "on")
    try:
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, output
    assert "unknown field \"wieght\" (did you mean 'weight'?)" in output
    assert "Application startup failed. Exiting." in output


def test_fastapi_with_a_bad_config_keeps_serving_500_under_the_default_lifespan(
    tmp_path: Path,
) -> None:
    """Why the docs ask for ``--lifespan on``: Starlette builds the middleware on the
    lifespan call, and uvicorn's ``auto`` takes the failure for "unsupported". If this
    starts failing, uvicorn or Starlette changed, and the docs can drop the flag."""
    proc, url = _uvicorn(tmp_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None
            try:
                status = httpx.get(url, timeout=1).status_code
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert status == 500
    finally:
        proc.kill()
        proc.wait()
    for doc in ("README.md", "docs/guides/getting-started.md", "docs/index.md"):
        text = (Path(__file__).resolve().parents[1] / doc).read_text()
        assert "uvicorn app:app --lifespan on" in text, doc
