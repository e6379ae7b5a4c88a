"""End to end: real backends on loopback, the gateway under uvicorn, a real HTTP client."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app, wait_for_copies
from tests.support.manifests import MIRROR_100
from traefikservice_asgi import MirrorLimits, create_app
from traefikservice_asgi.proxy.http import INFLATE_PIECE
from traefikservice_asgi.transport import no_cookie_jar

BLOG = Path(__file__).resolve().parents[1] / "traefikservice_asgi" / "_blog"
WRR, STICKY, COPY = (
    "traefikservice-wrr.kubesre.lc",
    "traefikservice-cokie.kubesre.lc",
    "traefikservice-copy.kubesre.lc",
)


@pytest.fixture
def backends() -> Iterator[tuple[RecordingBackend, RecordingBackend]]:
    with RecordingBackend("app-v1") as v1, RecordingBackend("app-v2") as v2:
        yield v1, v2


@pytest.fixture
def gateway(backends: tuple[RecordingBackend, RecordingBackend]) -> Iterator[httpx.Client]:
    v1, v2 = backends
    app = create_app(BLOG, backends={"default/app-v1:80": v1.url, "default/app-v2:80": v2.url})
    with (
        serve_app(app) as url,
        httpx.Client(base_url=url, cookies=no_cookie_jar(), trust_env=False) as client,
    ):
        del client.headers["accept-encoding"]  # like curl: the gateway then adds gzip, as Go does
        yield client


def get(client: httpx.Client, host: str, **kwargs: object) -> httpx.Response:
    headers = {"Host": host, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return client.get("/", headers=headers, **kwargs)  # type: ignore[arg-type]


def test_weighted_host_serves_v2_v1_v2_like_traefik(gateway: httpx.Client) -> None:
    bodies = [get(gateway, WRR).text for _ in range(9)]
    assert bodies == ["Hello app-v2\n", "Hello app-v1\n", "Hello app-v2\n"] * 3


def test_sticky_host_without_cookie_sets_the_hashed_cookie_of_each_pick(
    gateway: httpx.Client,
) -> None:
    responses = [get(gateway, STICKY) for _ in range(3)]
    assert [r.text for r in responses] == ["Hello app-v2\n", "Hello app-v1\n", "Hello app-v2\n"]
    assert [r.headers.get_list("set-cookie") for r in responses] == [
        ["cookie=9ccaa1a0753f2143; Path=/"],
        ["cookie=9b9c0de427c34a54; Path=/"],
        ["cookie=9ccaa1a0753f2143; Path=/"],
    ]


@pytest.mark.parametrize(
    ("app", "hashed"), [("app-v1", "9b9c0de427c34a54"), ("app-v2", "9ccaa1a0753f2143")]
)
def test_walkthrough_cookie_pins_its_app_and_is_rewritten(
    gateway: httpx.Client, app: str, hashed: str
) -> None:
    for _ in range(5):
        r = get(gateway, STICKY, headers={"Cookie": f"cookie=default-{app}-80"})
        assert r.text == f"Hello {app}\n"
        assert r.headers.get_list("set-cookie") == [f"cookie={hashed}; Path=/"]
    for _ in range(5):
        r = get(gateway, STICKY, headers={"Cookie": f"cookie={hashed}"})
        assert r.text == f"Hello {app}\n"
        assert "set-cookie" not in r.headers


def test_mirroring_host_answers_from_main_and_copies_requests_1_11_21(
    gateway: httpx.Client, backends: tuple[RecordingBackend, RecordingBackend]
) -> None:
    v1, v2 = backends
    for i in range(25):
        r = gateway.get(f"/copy/{i}", headers={"Host": COPY})
        assert r.text == "Hello app-v1\n"
    v2.wait_for_requests(3)
    assert [req.path for req in v1.requests] == [f"/copy/{i}" for i in range(25)]
    assert sorted(req.path for req in v2.requests) == ["/copy/0", "/copy/10", "/copy/20"]


def test_backend_receives_traefiks_forwarded_headers(
    gateway: httpx.Client, backends: tuple[RecordingBackend, RecordingBackend]
) -> None:
    v1, _ = backends
    gateway.get(
        "/copy/0?a=1;b=2",
        headers={
            "Host": COPY,
            "User-Agent": "curl/7.88.1",
            "X-Forwarded-For": "203.0.113.7",
            "X-Real-Ip": "203.0.113.7",
            "X_Forwarded_Host": "evil.test",
            "Connection": "keep-alive, X-Secret",
            "X-Secret": "hop-by-hop",
        },
    )
    (req,) = v1.wait_for_requests(1)
    assert req.target == "/copy/0?a=1&b=2"
    headers = {k.lower(): v for k, v in req.headers}
    assert headers["host"] == COPY
    assert headers["user-agent"] == "curl/7.88.1"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-host"] == COPY
    assert headers["x-forwarded-port"] == "80"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-server"] == socket.gethostname()
    assert headers["accept-encoding"] == "gzip"
    assert "x-secret" not in headers and "x_forwarded_host" not in headers
    assert len([k for k, _ in req.headers if k.lower() == "x-forwarded-for"]) == 1


def test_x_forwarded_port_comes_from_the_host_header(
    gateway: httpx.Client, backends: tuple[RecordingBackend, RecordingBackend]
) -> None:
    v1, _ = backends
    gateway.get("/", headers={"Host": f"{COPY}:28080"})
    # Host with a port does not match Host(`...copy...`)? It does: matching ignores the port.
    (req,) = v1.wait_for_requests(1)
    assert req.header("x-forwarded-port") == "28080"
    assert req.header("x-forwarded-host") == f"{COPY}:28080"


def test_post_body_reaches_main_and_mirror_whole(tmp_path: Path) -> None:
    body = bytes(range(256)) * 4
    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        (tmp_path / "m.yaml").write_text(MIRROR_100)
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        with serve_app(app) as url:
            r = httpx.post(url + "/upload", content=body, headers={"Host": "m.test"})
            assert r.status_code == 200
            chunked = httpx.post(
                url + "/chunked", content=iter([body[:100], body[100:]]), headers={"Host": "m.test"}
            )
            assert chunked.status_code == 200
        main_reqs = main.wait_for_requests(2)
        copies = copy.wait_for_requests(2)
    assert [r.body for r in main_reqs] == [body, body]
    assert sorted((r.path, r.body) for r in copies) == [("/chunked", body), ("/upload", body)]
    assert main_reqs[0].header("content-length") == "1024"
    assert main_reqs[1].chunked and main_reqs[1].header("content-length") is None


def test_refused_connection_gives_traefiks_502(tmp_path: Path) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there now
    (tmp_path / "m.yaml").write_text(MIRROR_100)
    with RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path,
            backends={"default/main:80": f"http://127.0.0.1:{port}", "default/copy:80": copy.url},
        )
        with serve_app(app) as url:
            r = httpx.get(url, headers={"Host": "m.test"})
        # The mirror still gets its copy when main fails, as in Traefik.
        copy.wait_for_requests(1)
    assert r.status_code == 502
    assert r.content == b"Bad Gateway"
    assert r.headers["content-length"] == "11"
    assert "content-type" not in r.headers


def test_unmatched_host_gets_traefiks_404(gateway: httpx.Client) -> None:
    r = get(gateway, "unknown.test")
    assert r.status_code == 404
    assert r.content == b"404 page not found\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_a_slow_mirror_never_holds_the_client(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MIRROR_100)
    with RecordingBackend("main") as main, RecordingBackend("copy", delay=30) as copy:
        app = create_app(
            tmp_path,
            backends={"default/main:80": main.url, "default/copy:80": copy.url},
            mirror_limits=MirrorLimits(shutdown_timeout=0.5),
        )
        with serve_app(app) as url:
            for _ in range(3):
                assert httpx.get(url, headers={"Host": "m.test"}).text == "Hello main\n"
            # All three answers came back while the three copies are still held by the mirror.
            copy.wait_for_requests(3)
            assert app.mirror_pool.in_flight == 3
        # Shutdown gave them 0.5 s, then cancelled them: nothing is left running.
        assert app.mirror_pool.in_flight == 0


def test_a_hanging_mirror_does_not_hold_back_the_next_mirrors_copy(tmp_path: Path) -> None:
    """Traefik sends one request's copies one after another, each after the previous
    mirror answered; here a copy is written and its answer left to the transport, so
    the second mirror gets its copy at once (docs/differences.md)."""
    two_mirrors = MIRROR_100.replace(
        "mirrors: [{name: copy, port: 80, percent: 100}]",
        "mirrors: [{name: copy, port: 80, percent: 100}, {name: second, port: 80, percent: 100}]",
    )
    (tmp_path / "m.yaml").write_text(two_mirrors)
    with (
        RecordingBackend("main") as main,
        RecordingBackend("copy", delay=30) as hanging,
        RecordingBackend("second") as second,
    ):
        app = create_app(
            tmp_path,
            backends={
                "default/main:80": main.url,
                "default/copy:80": hanging.url,
                "default/second:80": second.url,
            },
            mirror_limits=MirrorLimits(shutdown_timeout=0.1),
        )
        with serve_app(app) as url:
            assert httpx.get(url, headers={"Host": "m.test"}).text == "Hello main\n"
            hanging.wait_for_requests(1)
            (copy,) = second.wait_for_requests(1, timeout=5)  # not 30 s later
            assert copy.path == "/"
            assert app.mirror_pool.in_flight == 1  # the first mirror still holds its copy


def test_gzip_passes_through_when_the_client_asked_for_an_encoding(tmp_path: Path) -> None:
    payload = b"Hello compressed\n" * 100
    (tmp_path / "m.yaml").write_text(MIRROR_100.replace("percent: 100", "percent: 0"))
    with (
        RecordingBackend(
            "main", body=gzip.compress(payload, mtime=0), headers=[("Content-Encoding", "gzip")]
        ) as main,
        RecordingBackend("copy") as copy,
    ):
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        with (
            serve_app(app) as url,
            httpx.stream(
                "GET", url, headers={"Host": "m.test", "Accept-Encoding": "gzip"}
            ) as asked,
        ):
            raw = b"".join(asked.iter_raw())
    assert main.requests[0].header("accept-encoding") == "gzip"
    assert raw == gzip.compress(payload, mtime=0)
    assert asked.headers["content-encoding"] == "gzip"
    assert asked.headers["content-length"] == str(len(raw))


def test_gateway_without_accept_encoding_decompresses_gzip(tmp_path: Path) -> None:
    payload = b"Hello compressed\n" * 100
    (tmp_path / "m.yaml").write_text(MIRROR_100.replace("percent: 100", "percent: 0"))
    with (
        RecordingBackend(
            "main", body=gzip.compress(payload, mtime=0), headers=[("Content-Encoding", "gzip")]
        ) as main,
        RecordingBackend("copy") as copy,
    ):
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        with (
            serve_app(app) as url,
            socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as s,
        ):
            s.sendall(b"GET / HTTP/1.1\r\nHost: m.test\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-encoding" not in head.lower()
    assert main.requests[0].header("accept-encoding") == "gzip"
    # No Content-Length any more: chunked framing carries the decompressed body.
    assert b"transfer-encoding: chunked" in head.lower()
    decoded = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        decoded += rest[:size]
        body = rest[size + 2 :]
    assert decoded == payload


def test_proxy_environment_variables_do_not_reroute_backend_traffic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traefik honours HTTP_PROXY for backends; the gateway never does (trust_env=False),
    so upstream traffic does not depend on the shell it was started from."""
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{dead.getsockname()[1]}"  # closed: a proxy hop would fail
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    (tmp_path / "m.yaml").write_text(MIRROR_100)
    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        with serve_app(app) as url, httpx.Client(trust_env=False) as client:
            r = client.get(url, headers={"Host": "m.test"})
            copy.wait_for_requests(1)
    assert (r.status_code, r.text) == (200, "Hello main\n")
    assert main.count == 1


@pytest.mark.parametrize(("size", "mirrored"), [(100 * 1024, True), (1024 * 1024, False)])
def test_a_refused_main_still_gets_its_body_mirrored_up_to_256_kib(
    tmp_path: Path, size: int, mirrored: bool
) -> None:
    """Traefik reads the body whole before the main service, so its mirror always gets
    it. Here the body streams; on a refused main at most 256 KiB of it is read (Go's
    server drains that much of an unread body), so a mirror still gets a copy of a
    small body, and a larger one is not mirrored (docs/differences.md)."""
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]  # closed: nothing listens there
    (tmp_path / "m.yaml").write_text(MIRROR_100)
    body = b"m" * size
    with RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path,
            backends={"default/main:80": f"http://127.0.0.1:{port}", "default/copy:80": copy.url},
        )
        with serve_app(app) as url, httpx.Client(trust_env=False) as client:
            try:
                r = client.post(url + "/upload", content=body, headers={"Host": "m.test"})
                status = r.status_code
            except httpx.WriteError:  # the gateway answered before the upload ended
                status = 502
            assert status == 502
            wait_for_copies(app)  # a copy is being sent
            assert app.mirror_pool.sent == (1 if mirrored else 0)
        if mirrored:
            (received,) = copy.wait_for_requests(1)
            assert received.body == body
        else:
            assert copy.requests == []
            assert sum(app.mirror_pool.dropped.values()) == 1


def test_header_names_reach_the_backend_lowercase_in_the_order_received(
    tmp_path: Path,
) -> None:
    """Traefik writes canonical names (`X-Custom`) sorted by key; the gateway forwards
    the names ASGI gives it, lowercase, in the client's order (docs/differences.md).
    HTTP header names are case-insensitive, so both are correct on the wire."""
    (tmp_path / "m.yaml").write_text(MIRROR_100.replace("percent: 100", "percent: 0"))
    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        with serve_app(app) as url, httpx.Client(trust_env=False) as client:
            r = client.get(url, headers=[("Host", "m.test"), ("X-Zeta", "1"), ("X-Alpha", "2")])
        (received,) = main.wait_for_requests(1)
    assert r.status_code == 200
    names = [name for name, _ in received.headers]
    assert "x-zeta" in names and "x-alpha" in names
    assert names.index("x-zeta") < names.index("x-alpha")  # the client's order, not sorted
    assert not any(name != name.lower() for name in names)


def test_ingress_route_entry_points_and_tls_are_accepted_and_served_on_the_one_listener(
    tmp_path: Path,
) -> None:
    """Traefik serves a route only on its entry points (and with TLS on `tls` ones);
    the gateway has one listener, whose TLS is the ASGI server's: the route is served."""
    route = MIRROR_100.replace("percent: 100", "percent: 0").replace(
        "spec:\n  routes:",
        "spec:\n  entryPoints: [websecure]\n  tls: {}\n  routes:",
    )
    assert "entryPoints: [websecure]" in route
    (tmp_path / "m.yaml").write_text(route)
    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        with serve_app(app) as url:
            r = httpx.get(url, headers={"Host": "m.test"})
    assert (r.status_code, r.text) == (200, "Hello main\n")


def test_gzip_bomb_is_streamed_inflated_in_bounded_messages(tmp_path: Path) -> None:
    # 64 MiB of zeros gzip to ~64 KiB: the backend sends it in one or two reads, which the
    # old relay inflated whole into one body message.
    inflated = 64 * 1024 * 1024
    bomb = gzip.compress(bytes(inflated), compresslevel=9, mtime=0)
    (tmp_path / "m.yaml").write_text(MIRROR_100.replace("percent: 100", "percent: 0"))
    largest = 0

    def recording(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            async def sender(message: Message) -> None:
                nonlocal largest
                if message["type"] == "http.response.body":
                    largest = max(largest, len(message.get("body", b"")))
                await send(message)

            await app(scope, receive, sender)

        return wrapped

    with (
        RecordingBackend("main", body=bomb, headers=[("Content-Encoding", "gzip")]) as main,
        RecordingBackend("copy") as copy,
    ):
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        received = 0
        with (
            serve_app(recording(app)) as url,
            httpx.Client(trust_env=False) as client,
        ):
            del client.headers["accept-encoding"]  # so the gateway adds gzip, as Go does
            with client.stream("GET", url, headers={"Host": "m.test"}) as response:
                assert "content-encoding" not in response.headers
                for chunk in response.iter_raw():
                    assert not chunk.strip(b"\0")  # zeros only; counted, not kept
                    received += len(chunk)
    assert main.requests[0].header("accept-encoding") == "gzip"
    assert received == inflated
    assert 0 < largest <= INFLATE_PIECE
