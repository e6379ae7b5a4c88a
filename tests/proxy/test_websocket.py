"""WebSocket proxying end to end: uvicorn backends, the gateway under uvicorn, a real
``websockets`` client, everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme
from starlette.types import Message, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app, serve_cli
from traefikservice_asgi import create_app
from traefikservice_asgi.entrypoint.websocket import TunnelWebSocketProtocol
from traefikservice_asgi.loadbalancer.mirror import Mirror, Mirroring
from traefikservice_asgi.loadbalancer.mirror_pool import MirrorPool
from traefikservice_asgi.proxy import Server
from traefikservice_asgi.transport import ClientHolder

FRAME = 64 * 1024
CONFIG = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: ws, namespace: default}
spec:
  routes:
  - match: Host(`ws.test`)
    kind: Rule
    services:
    - {name: ws-sticky, kind: TraefikService}
  - match: Host(`down.test`)
    kind: Rule
    services:
    - {name: ws-down, port: 80}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: ws-sticky, namespace: default}
spec:
  weighted:
    services:
    - {name: ws-a, port: 80, weight: 1}
    - {name: ws-b, port: 80, weight: 1}
    sticky:
      cookie: {name: wsaff}
"""


class WsBackend:
    """A raw ASGI WebSocket backend recording what it saw.

    ``/`` echoes, answers ``whoami`` with what it received (JSON), and closes on
    ``close:CODE:REASON``; ``/refuse`` refuses the upgrade with a 418; ``/stream?frames=N``
    sends N binary frames of 64 KiB (``&size=`` bytes) as fast as it is allowed to, then
    closes with 1000.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.cond = threading.Condition()
        self.closes: list[tuple[int, str]] = []
        self.active = 0
        self.streamed = 0  # frames handed to the server by /stream
        self.release = threading.Event()  # lets /sink start reading
        self.sunk = 0  # bytes read by /sink

    def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), f"{self.name}: condition not met"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        if scope["path"] == "/refuse":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 418,
                    "headers": [(b"x-why", b"test"), (b"content-type", b"text/plain")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"no thanks"})
            return
        with self.cond:
            self.active += 1
        try:
            if scope["path"] == "/stream":
                await self._stream(scope, receive, send)
            elif scope["path"] == "/sink":
                await self._sink(receive, send)
            else:
                await self._echo(scope, receive, send)
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope["query_string"].decode())
        frames = int(query["frames"][0])
        await send({"type": "websocket.accept"})
        chunk = b"x" * int(query.get("size", [FRAME])[0])
        for _ in range(frames):
            await send({"type": "websocket.send", "bytes": chunk})
            with self.cond:
                self.streamed += 1
                self.cond.notify_all()
        await send({"type": "websocket.close", "code": 1000})

    async def _sink(self, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})
        await asyncio.to_thread(self.release.wait, 30)  # read nothing until released
        while (message := await receive())["type"] == "websocket.receive":
            with self.cond:
                self.sunk += len(message["bytes"])
                self.cond.notify_all()

    async def _echo(self, scope: Scope, receive: Receive, send: Send) -> None:
        offered = scope["subprotocols"]
        chosen = "chat.v2" if "chat.v2" in offered else None
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": chosen,
                "headers": [(b"x-backend", self.name.encode()), (b"set-cookie", b"own=1")],
            }
        )
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                with self.cond:
                    self.closes.append((message["code"], message.get("reason") or ""))
                    self.cond.notify_all()
                return
            text = message.get("text")
            if text == "whoami":
                info = {
                    "backend": self.name,
                    "path": scope["path"],
                    "query": scope["query_string"].decode(),
                    "subprotocol": chosen,
                    "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                }
                await send({"type": "websocket.send", "text": json.dumps(info)})
            elif text is not None and text.startswith("close:"):
                _, code, reason = text.split(":", 2)
                await send({"type": "websocket.close", "code": int(code), "reason": reason})
                return
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


class LoopProbe:
    """Wraps the gateway to learn its event loop, so a test can list its tasks."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    def tasks(self) -> list[str]:
        """``name:coroutine`` of every task alive in the gateway's loop but the server's."""

        async def collect() -> list[str]:
            current = asyncio.current_task()
            return [
                f"{t.get_name()}:{t.get_coro().__qualname__}"  # type: ignore[union-attr]
                for t in asyncio.all_tasks()
                if t is not current
            ]

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(collect(), self.loop).result(5)


@dataclass
class Gateway:
    url: str
    a: WsBackend
    b: WsBackend
    probe: LoopProbe

    @property
    def backends(self) -> dict[str, WsBackend]:
        return {"ws-a": self.a, "ws-b": self.b}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


SERVERS = {
    "relay": {},  # any ASGI server: messages relayed
    "tunnel": {"ws": TunnelWebSocketProtocol},  # serve's: bytes tunnelled after the 101
}


@pytest.fixture(params=sorted(SERVERS))
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """The gateway under a plain uvicorn (message relay) and under serve's WebSocket
    protocol (the tunnel): every behaviour below holds for both."""
    (tmp_path / "ws.yaml").write_text(CONFIG)
    a, b = WsBackend("ws-a"), WsBackend("ws-b")
    with serve_app(a) as url_a, serve_app(b) as url_b:
        app = create_app(
            tmp_path,
            backends={
                "default/ws-a:80": url_a,
                "default/ws-b:80": url_b,
                "default/ws-down:80": f"http://127.0.0.1:{closed_port()}",
            },
        )
        probe = LoopProbe(app)
        with serve_app(probe, **SERVERS[request.param]) as url:
            yield Gateway(url, a, b, probe)


def ws(
    gateway: Gateway, path: str = "/", *, host: str = "ws.test", **kwargs: Any
) -> ClientConnection:
    """A client connected to the gateway, sending ``Host: host``."""
    port = urlsplit(gateway.url).port
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return connect(
        f"ws://{host}{path}",
        sock=sock,
        open_timeout=10,
        close_timeout=10,
        compression=None,
        **kwargs,
    )


def whoami(client: ClientConnection) -> dict[str, Any]:
    client.send("whoami")
    info: dict[str, Any] = json.loads(client.recv(timeout=10))
    return info


def header(info: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in info["headers"] if k == name]


def test_text_and_binary_messages_are_echoed(gateway: Gateway) -> None:
    with ws(gateway) as client:
        client.send("hello ✓")
        assert client.recv(timeout=10) == "hello ✓"
        client.send(b"\x00\x01binary\xff")
        assert client.recv(timeout=10) == b"\x00\x01binary\xff"
        big = bytes(range(256)) * 4096  # 1 MiB, several frames on the wire
        client.send(big)
        assert client.recv(timeout=10) == big


def test_serve_hands_an_upgrade_to_the_websocket_protocol_past_its_read_timeout(
    tmp_path: Path,
) -> None:
    """`serve` runs the entry point's protocol (entrypoint/server.py): an upgrade goes on
    to uvicorn's WebSocket protocol (it was once answered 400), and the entry point's
    readTimeout, which bounds reading a request, never closes the WebSocket after it."""
    (tmp_path / "ws.yaml").write_text(CONFIG)
    a, b = WsBackend("ws-a"), WsBackend("ws-b")
    with (
        serve_app(a) as url_a,
        serve_app(b) as url_b,
        serve_cli(
            [str(tmp_path)],
            {"default/ws-a:80": url_a, "default/ws-b:80": url_b},
            "--read-timeout",
            "0.3",
        ) as url,
    ):
        app = create_app(tmp_path, backends={"default/ws-a:80": url_a})
        with ws(Gateway(url, a, b, LoopProbe(app))) as client:
            ends = time.monotonic() + 1.0  # three read timeouts
            exchanged = 0
            while time.monotonic() < ends:
                client.send(f"message {exchanged}")
                assert client.recv(timeout=10) == f"message {exchanged}"
                exchanged += 1
                time.sleep(0.05)  # the pace of a chatty client, not a wait for a result
            assert exchanged > 10


def test_subprotocol_is_negotiated_by_the_backend(gateway: Gateway) -> None:
    offered = [Subprotocol("chat.v1"), Subprotocol("chat.v2")]
    with ws(gateway, subprotocols=offered) as client:
        assert client.subprotocol == "chat.v2"
        info = whoami(client)
        assert info["subprotocol"] == "chat.v2"
        assert header(info, "sec-websocket-protocol") == ["chat.v1, chat.v2"]
    with ws(gateway) as client:
        assert client.subprotocol is None
        assert header(whoami(client), "sec-websocket-protocol") == []


def test_client_close_code_and_reason_reach_the_backend(gateway: Gateway) -> None:
    with ws(gateway) as client:
        backend = gateway.backends[whoami(client)["backend"]]
        client.close(4001, "client bye")
    backend.wait(lambda: backend.closes)
    assert backend.closes == [(4001, "client bye")]


def test_backend_close_code_and_reason_reach_the_client(gateway: Gateway) -> None:
    with ws(gateway) as client:
        client.send("close:4002:server bye")
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4002, "server bye")


def test_sticky_cookie_is_set_on_the_upgrade_and_pins_the_backend(gateway: Gateway) -> None:
    with ws(gateway) as first, ws(gateway) as second:
        # 1:1 weights without a cookie: the two connections land on different backends.
        assert {whoami(first)["backend"], whoami(second)["backend"]} == {"ws-a", "ws-b"}
        assert first.response is not None
        cookies = first.response.headers.get_all("Set-Cookie")
        pinned = whoami(first)["backend"]
    assert len(cookies) == 2 and cookies[1] == "own=1"  # the balancer's comes first
    sticky = cookies[0]
    assert sticky.startswith("wsaff=") and sticky.endswith("; Path=/")
    value = sticky.split(";")[0]
    for _ in range(10):
        with ws(gateway, additional_headers={"Cookie": value}) as client:
            assert client.response is not None
            assert client.response.headers["X-Backend"] == pinned
            assert client.response.headers.get_all("Set-Cookie") == ["own=1"]  # no rewrite
            info = whoami(client)
            assert info["backend"] == pinned
            assert header(info, "cookie") == [value]  # the cookie reaches the backend


def test_upgrade_request_reaches_the_backend_as_a_proxy_sends_it(gateway: Gateway) -> None:
    with ws(
        gateway,
        "/chat/room%201?x=1;y=2",
        origin="http://ws.test",  # type: ignore[arg-type]
        additional_headers={"Authorization": "Bearer t0k", "X-Forwarded-Proto": "https"},
        user_agent_header="test-client/1",
    ) as client:
        info = whoami(client)
    headers = {k: [v for key, v in info["headers"] if key == k] for k, _ in info["headers"]}
    assert info["path"] == "/chat/room 1"
    assert info["query"] == "x=1&y=2"  # Traefik turns ";" into "&"
    assert headers["host"] == ["ws.test"]
    assert headers["x-forwarded-proto"] == ["ws"]  # the client's own value is not trusted
    assert headers["x-forwarded-host"] == ["ws.test"]
    assert headers["x-forwarded-port"] == ["80"]
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-real-ip"] == ["127.0.0.1"]
    assert headers["authorization"] == ["Bearer t0k"]
    assert headers["origin"] == ["http://ws.test"]
    assert headers["user-agent"] == ["test-client/1"]  # passed, not replaced
    assert headers["upgrade"] == ["websocket"]
    assert headers["sec-websocket-version"] == ["13"]
    assert len(headers["sec-websocket-key"]) == 1
    assert "sec-websocket-extensions" not in headers


def test_without_user_agent_none_is_added(gateway: Gateway) -> None:
    with ws(gateway, user_agent_header=None) as client:
        assert header(whoami(client), "user-agent") == []


def test_backend_refusal_is_relayed_with_the_sticky_cookie(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(gateway, "/refuse")
    response = refused.value.response
    assert response.status_code == 418
    assert response.body == b"no thanks"
    assert response.headers["X-Why"] == "test"
    assert response.headers["Set-Cookie"].startswith("wsaff=")


def test_unreachable_backend_answers_502(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(gateway, host="down.test")
    assert refused.value.response.status_code == 502
    assert refused.value.response.body == b"Bad Gateway"


def test_without_the_http_response_extension_a_refusal_is_a_close() -> None:
    """An ASGI server without ``websocket.http.response`` can only refuse with a close
    (it then answers 403); the code is 1011."""
    sent: list[Message] = []
    messages: list[Message] = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never leaves on its own
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "websocket",
        "scheme": "ws",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"ws.test")],
        "client": ("127.0.0.1", 5000),
        "subprotocols": [],
    }

    async def main() -> None:
        holder = ClientHolder()
        await Server(f"http://127.0.0.1:{closed_port()}", holder)(scope, receive, send)
        await holder.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
    assert sent == [{"type": "websocket.close", "code": 1011}]


def test_a_slow_client_does_not_make_the_gateway_buffer(gateway: Gateway) -> None:
    """50 MiB streamed to a client that reads nothing at first: the backend is held back
    (the data waits in bounded buffers and the kernel), and memory stays bounded."""
    frames = 800  # 50 MiB
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        with ws(gateway, f"/stream?frames={frames}", max_queue=4) as client:
            backend = next(b for b in (gateway.a, gateway.b) if b.active)
            stalled_at = wait_until_stalled(backend.cond, lambda: backend.streamed)
            assert stalled_at < frames // 2, f"{stalled_at * FRAME} bytes went out unread"
            received = 0
            while received < frames:
                assert len(client.recv(timeout=10)) == FRAME
                received += 1
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 16 * 1024 * 1024, f"peak {peak - start} bytes"


def test_a_client_not_reading_large_messages_stops_the_gateway_reading_the_backend(
    gateway: Gateway,
) -> None:
    """Messages far larger than MAX_BUFFERED: the gateway holds one at a time for a client
    that reads nothing, then stops reading the backend, whose sends block.

    Besides the gateway's one message, the backend's count includes what waits outside
    it: the client's queue (max_queue=1: two messages), the ASGI servers' write buffers
    (one message each) and the kernel's socket buffers (measured: 6-8 messages in all).
    websockets' frame-counted queue let 16 messages more through (24 measured)."""
    size, messages = 4 * 1024 * 1024, 40
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # no autotuning
    sock.settimeout(10)
    sock.connect(("127.0.0.1", urlsplit(gateway.url).port or 80))
    with connect(
        f"ws://ws.test/stream?frames={messages}&size={size}",
        sock=sock,
        open_timeout=10,
        close_timeout=10,
        compression=None,
        max_queue=1,
        max_size=size,
    ) as client:
        backend = next(b for b in (gateway.a, gateway.b) if b.active)
        stalled_at = wait_until_stalled(backend.cond, lambda: backend.streamed)
        assert stalled_at <= 10, f"{stalled_at * size} bytes went out to a client reading none"
        received = 0
        while received < messages:  # then everything arrives, whole and in order
            assert len(client.recv(timeout=20)) == size
            received += 1
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def wait_until_stalled(cond: threading.Condition, progress: Any) -> int:
    """Wait, bounded, until ``progress()`` stops moving for half a second; return it."""
    with cond:
        for _ in range(200):
            seen = progress()
            if not cond.wait_for(lambda seen=seen: progress() != seen, 0.5):  # type: ignore[misc]
                break
        value: int = progress()
        return value


def test_a_slow_backend_does_not_make_the_gateway_buffer(gateway: Gateway) -> None:
    """The other direction: a client sending 50 MiB to a backend that reads nothing at
    first is held back too."""
    frames = 800
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        with ws(gateway, "/sink") as client:
            backend = next(b for b in (gateway.a, gateway.b) if b.active)
            cond = threading.Condition()
            sent = 0

            def produce() -> None:
                nonlocal sent
                chunk = b"y" * FRAME
                for _ in range(frames):
                    client.send(chunk)
                    with cond:
                        sent += 1
                        cond.notify_all()

            producer = threading.Thread(target=produce, daemon=True)
            producer.start()
            try:
                stalled_at = wait_until_stalled(cond, lambda: sent)
                assert stalled_at < frames // 2, f"{stalled_at * FRAME} bytes went out unread"
            finally:
                backend.release.set()
                producer.join(60)
            assert not producer.is_alive()
            backend.wait(lambda: backend.sunk == frames * FRAME, timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 16 * 1024 * 1024, f"peak {peak - start} bytes"


def test_nothing_is_left_behind_when_connections_end(gateway: Gateway) -> None:
    baseline = set(gateway.probe.tasks())
    with ws(gateway) as client:
        whoami(client)
        assert set(gateway.probe.tasks()) - baseline  # the relay is running
        client.close(4001)
    with ws(gateway) as client:
        client.send("close:1000:done")
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=10)
    with pytest.raises(InvalidStatus):
        ws(gateway, host="down.test")
    for backend in (gateway.a, gateway.b):
        backend.wait(lambda backend=backend: backend.active == 0)  # type: ignore[misc]
    left = set(gateway.probe.tasks()) - baseline
    with gateway.a.cond:  # bounded wait for the gateway's tasks to wind down
        for _ in range(100):
            if not left:
                break
            gateway.a.cond.wait(0.05)
            left = set(gateway.probe.tasks()) - baseline
    assert left == set()


ST_ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`t.test`)
      services: [{name: app, port: 443, serversTransport: st}]
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec:
"""


@pytest.mark.parametrize("server", sorted(SERVERS))
@pytest.mark.parametrize("trusted", [True, False])
def test_wss_backends_follow_the_servers_transport_tls_rules(
    tmp_path: Path, trusted: bool, server: str
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key_file.write_bytes(cert.private_key_pem.bytes())
    secret = base64.b64encode(ca.cert_pem.bytes()).decode()
    spec = "  rootCAs: [{secret: backend-ca}]\n" if trusted else "  maxIdleConnsPerHost: 5\n"
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "r.yaml").write_text(
        ST_ROUTE
        + spec
        + "---\napiVersion: v1\nkind: Secret\n"
        + f"metadata: {{name: backend-ca, namespace: default}}\ndata: {{ca.crt: {secret}}}\n"
    )
    backend = WsBackend("tls")
    with serve_app(backend, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as url:
        app = create_app(
            tmp_path / "conf", backends={"default/app:443": url.replace("http:", "https:")}
        )
        probe = LoopProbe(app)
        with serve_app(probe, **SERVERS[server]) as gateway_url:
            gateway = Gateway(gateway_url, backend, backend, probe)
            if trusted:
                with ws(gateway, host="t.test") as client:
                    assert whoami(client)["backend"] == "tls"
                    big = os.urandom(1 << 20)  # many TLS records, both ways
                    client.send(big)
                    assert client.recv(timeout=10) == big
            else:
                with pytest.raises(InvalidStatus) as refused:
                    ws(gateway, host="t.test")
                # a certificate the CAs refuse: 500, as Traefik answers Go's x509 errors
                assert refused.value.response.status_code == 500


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_response_header_timeout_bounds_the_wait_for_the_upgrade(
    tmp_path: Path, server: str
) -> None:
    (tmp_path / "r.yaml").write_text(
        ST_ROUTE.replace("port: 443", "port: 80")
        + "  forwardingTimeouts: {responseHeaderTimeout: 300ms}\n"
    )
    with RecordingBackend("slow", delay=5) as slow:
        app = create_app(tmp_path, backends={"default/app:80": slow.url})
        probe = LoopProbe(app)
        with serve_app(probe, **SERVERS[server]) as url:
            gateway = Gateway(url, WsBackend("x"), WsBackend("y"), probe)
            started = time.monotonic()
            with pytest.raises(InvalidStatus) as refused:
                ws(gateway, host="t.test")
            elapsed = time.monotonic() - started
    assert refused.value.response.status_code == 504
    assert refused.value.response.body == b"Gateway Timeout"
    assert elapsed < 3.0  # the timeout, not the backend's 5 s


def test_a_mirrored_websocket_goes_to_the_main_service_only() -> None:
    """No copy is attempted (Traefik's would fail at the hijack); the counters still
    advance so the following HTTP requests are mirrored as in Traefik."""
    calls: list[str] = []

    def app(name: str) -> Any:
        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            calls.append(f"{name}:{scope['type']}")

        return handler

    async def main() -> None:
        pool = MirrorPool()
        mirroring = Mirroring(app("main"), [Mirror("m", app("mirror"), 100)], pool=pool)
        scope: Scope = {"type": "websocket", "headers": [(b"host", b"ws.test")]}

        async def receive() -> Message:
            raise AssertionError("not read")

        async def send(message: Message) -> None:
            raise AssertionError("nothing sent")

        await mirroring(scope, receive, send)
        assert mirroring.total == 1
        await pool.aclose()

    asyncio.run(main())
    assert calls == ["main:websocket"]
