"""serve's WebSocket protocol: after the backend's 101 the client's connection is joined
to the backend's byte for byte (the tunnel), as Traefik hijacks both. Real sockets on
127.0.0.1: raw clients and backends where the bytes themselves are the point, uvicorn
backends and the gateway under uvicorn with serve's protocols otherwise."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.types import Message, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.proxy.test_websocket import CONFIG, WsBackend, wait_until_stalled
from tests.support.gateway import serve_app, serve_cli
from traefikservice_asgi import create_app
from traefikservice_asgi.entrypoint.context import tunnel_of
from traefikservice_asgi.entrypoint.server import EntryPointProtocol
from traefikservice_asgi.entrypoint.websocket import TunnelWebSocketProtocol
from traefikservice_asgi.transport.tunnel import MAX_HELD, Tunnel

MIB = 1024 * 1024


class TunnelProbe:
    """Wraps the gateway: records the accept messages it sends and the tunnels in them,
    when each call ended, and lets a test run code on the gateway's loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tunnels: list[Tunnel] = []
        self.accepts: list[Message] = []
        self.calls_ended: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop = asyncio.get_running_loop()

        async def recording(message: Message) -> None:
            if message["type"] == "websocket.accept":
                self.accepts.append(message)
                tunnel = tunnel_of(message)
                if tunnel is not None:
                    self.tunnels.append(tunnel)
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            if scope["type"] == "websocket":
                self.calls_ended.append(time.monotonic())

    def held(self) -> int:
        """Bytes the gateway's tunnels hold in their write buffers, read on its loop."""

        async def read() -> int:
            return sum(tunnel.held() for tunnel in self.tunnels)

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(5)


@dataclass
class Sampler:
    """Samples ``probe.held()`` from a thread until stopped; keeps the largest."""

    probe: TunnelProbe
    peak: int = 0
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.probe.held())
            self.samples += 1
            self.stop.wait(0.005)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, WsBackend, TunnelProbe]]:
    """The gateway under serve's protocols, in front of one uvicorn WsBackend."""
    (tmp_path / "ws.yaml").write_text(CONFIG)
    backend = WsBackend("ws-a")
    with serve_app(backend) as url_backend:
        app = create_app(
            tmp_path,
            backends={"default/ws-a:80": url_backend, "default/ws-b:80": url_backend},
        )
        probe = TunnelProbe(app)
        with serve_app(probe, http=EntryPointProtocol, ws=TunnelWebSocketProtocol) as url:
            yield url, backend, probe


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def upgrade(sock: socket.socket, path: str, host: str = "ws.test", extra: str = "") -> bytes:
    """Send a WebSocket upgrade on ``sock``; return the answer's head (read byte by byte,
    so nothing after it is consumed)."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        ).encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"connection closed after {head!r}"
        head += byte
    return head


@contextlib.contextmanager
def raw_backend_gateway(tmp_path: Path, answer: Any) -> Iterator[socket.socket]:
    """The gateway (serve's protocols) in front of a raw TCP backend: ``answer(conn,
    head)`` runs in a thread for the one connection it accepts, given the request head.
    Yields a client socket connected to the gateway."""
    server = socket.create_server(("127.0.0.1", 0))

    def backend() -> None:
        conn, _ = server.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            answer(conn, head)

    thread = threading.Thread(target=backend, daemon=True)
    thread.start()
    (tmp_path / "ws.yaml").write_text(CONFIG)
    url_backend = f"http://127.0.0.1:{server.getsockname()[1]}"
    app = create_app(
        tmp_path, backends={"default/ws-a:80": url_backend, "default/ws-b:80": url_backend}
    )
    try:
        with (
            serve_app(app, http=EntryPointProtocol, ws=TunnelWebSocketProtocol) as url,
            socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as sock,
        ):
            yield sock
    finally:
        server.close()
        thread.join(10)


def test_a_client_that_never_reads_costs_a_bounded_buffer_and_stalls_the_backend(
    gateway: tuple[str, WsBackend, TunnelProbe],
) -> None:
    """A backend pushing 8 MiB messages to a client that reads nothing: the gateway's
    buffers stay within MAX_HELD (well under one message) and the backend's sends block,
    so it cannot hand over more than what the kernels' socket buffers hold. Then the
    client reads, and every byte arrives."""
    url, backend, probe = gateway
    size, messages = 8 * MIB, 12
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # no autotuning
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port_of(url)))
    head = upgrade(sock, f"/stream?frames={messages}&size={size}")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert len(probe.tunnels) == 1
    sampler = Sampler(probe)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        stalled_at = wait_until_stalled(backend.cond, lambda: backend.streamed)
        stalled_held = probe.held()
    finally:
        sampler.stop.set()
        thread.join(10)
    assert sampler.samples > 10
    assert stalled_at < messages // 2, f"{stalled_at} messages of 8 MiB went out unread"
    assert sampler.peak <= MAX_HELD < size // 8, f"the gateway held {sampler.peak} bytes"
    assert stalled_held <= MAX_HELD
    # The client reads now: the frames arrive whole, in order (a 10-byte header each).
    expected = messages * (10 + size) + 4  # and the backend's close frame (code 1000)
    received = 0
    while received < expected:
        chunk = sock.recv(1 << 20)
        assert chunk, f"closed after {received} of {expected} bytes"
        received += len(chunk)
    assert received == expected
    sock.close()


def test_a_backend_that_never_reads_costs_a_bounded_buffer_and_stalls_the_client(
    gateway: tuple[str, WsBackend, TunnelProbe],
) -> None:
    """The other direction: a client sending to a backend that reads nothing is held
    back by TCP (its sends block) while the gateway holds at most MAX_HELD."""
    url, backend, probe = gateway
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.connect(("127.0.0.1", port_of(url)))
    sock.settimeout(10)
    assert upgrade(sock, "/sink").startswith(b"HTTP/1.1 101 ")
    frame = b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"\0\0\0\0" + bytes(1 << 20)  # masked
    sock.settimeout(0.5)  # a send blocked this long: the client is held back
    sent = 0
    sampler = Sampler(probe)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):  # 200 MiB at most
            try:
                sock.sendall(frame)
            except TimeoutError:
                break
            sent += 1
    finally:
        sampler.stop.set()
        thread.join(10)
    assert sent < 100, f"{sent} MiB accepted from the client with nobody reading"
    assert sampler.peak <= MAX_HELD, f"the gateway held {sampler.peak} bytes"
    backend.release.set()  # the backend reads now; the connection is dropped meanwhile
    sock.close()


def test_frames_cross_untouched_both_ways(tmp_path: Path) -> None:
    """Behind the 101 the gateway parses nothing: a raw backend's 101 head reaches the
    client (written as Go writes it), and arbitrary bytes (a ping, a compressed frame's RSV1 bit, a
    reserved close code) come back exactly as sent. The backend sees the client's own
    Sec-WebSocket-Key and extension offer, with Connection/Upgrade as Go sets them."""
    received: list[bytes] = []
    ready = threading.Event()

    def answer(conn: socket.socket, head: bytes) -> None:
        received.append(head)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: made-up\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\nX-Raw: 1\r\n\r\n"
            b"\x89\x05hello"  # a ping, in the same write as the head
        )
        ready.set()
        while data := conn.recv(65536):  # then echo everything
            conn.sendall(data)

    with raw_backend_gateway(tmp_path, answer) as sock:
        head = upgrade(sock, "/raw", extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"\r\nSec-Websocket-Accept: made-up\r\n" in head  # Go's canonical names
        assert b"\r\nSec-Websocket-Extensions: permessage-deflate\r\n" in head
        assert b"\r\nX-Raw: 1\r\n" in head
        assert ready.wait(10)
        first = b""
        while len(first) < 7:
            first += sock.recv(7 - len(first))
        assert first == b"\x89\x05hello"
        payload = b"\xc1\x85\x01\x02\x03\x04junk!" + b"\x88\x02\x03\xed" + os.urandom(100_000)
        sock.sendall(payload)
        echoed = b""
        while len(echoed) < len(payload):
            chunk = sock.recv(65536)
            assert chunk
            echoed += chunk
        assert echoed == payload
    request = received[0].decode().lower()
    key = request.split("sec-websocket-key: ")[1].split("\r\n")[0]
    assert len(key) == 24  # the client's, passed through
    assert "sec-websocket-extensions: permessage-deflate\r\n" in request
    assert "connection: upgrade\r\n" in request and "upgrade: websocket\r\n" in request
    assert request.startswith("get /raw http/1.1\r\nhost: ws.test\r\n")


def test_echo_ping_and_close_work_through_the_tunnel_with_compression_end_to_end(
    gateway: tuple[str, WsBackend, TunnelProbe],
) -> None:
    """A real client and backend: permessage-deflate is negotiated between them (the
    gateway does not take part), pings are answered by the backend, close codes cross,
    and the gateway's call lasts until the tunnel closes, its accept seen on the way."""
    url, backend, probe = gateway
    sock = socket.create_connection(("127.0.0.1", port_of(url)), timeout=10)
    with connect(
        "ws://ws.test/", sock=sock, open_timeout=10, close_timeout=10, max_size=None
    ) as client:
        assert client.response is not None
        assert "permessage-deflate" in client.response.headers["Sec-WebSocket-Extensions"]
        assert client.response.headers["X-Backend"] == "ws-a"
        client.send("hello ✓" * 1000)
        assert client.recv(timeout=10) == "hello ✓" * 1000
        big = os.urandom(3 * MIB)
        client.send(big)
        assert client.recv(timeout=10) == big
        assert client.ping(b"are you there").wait(10)
        assert probe.calls_ended == []  # the call is the tunnel's lifetime
        client.close(4001, "client bye")
        closed_at = time.monotonic()
    backend.wait(lambda: backend.closes)
    assert backend.closes == [(4001, "client bye")]
    assert len(probe.tunnels) == 1 and len(probe.accepts) == 1
    assert any(k.lower() == b"set-cookie" for k, _ in probe.accepts[0]["headers"])
    deadline = time.monotonic() + 10
    while not probe.calls_ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert probe.calls_ended and probe.calls_ended[0] >= closed_at - 1.0


def test_bytes_a_client_sends_before_the_101_reach_the_backend_first(tmp_path: Path) -> None:
    """A client that does not wait for the answer (RFC 6455 says it must): what it sent
    meanwhile is kept by the server and goes to the backend ahead of the rest."""
    sent_early, head_seen = threading.Event(), threading.Event()
    got: list[bytes] = []

    def answer(conn: socket.socket, head: bytes) -> None:
        head_seen.set()
        assert sent_early.wait(10)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        data = b""
        while len(data) < 10:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        got.append(data)

    with raw_backend_gateway(tmp_path, answer) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET / HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade"
            f"\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert head_seen.wait(10)  # the upgrade is routed, and waits for the backend
        sock.sendall(b"early")
        sent_early.set()
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 101 ")
        sock.sendall(b"later")
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    assert got == [b"earlylater"]


def test_a_backend_answering_101_for_another_protocol_is_a_500(tmp_path: Path) -> None:
    """Go's ReverseProxy: "backend tried to switch protocol" is Traefik's 500."""

    def answer(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
        conn.recv(1)

    with raw_backend_gateway(tmp_path, answer) as sock:
        head = upgrade(sock, "/")
    assert head.startswith(b"HTTP/1.1 500 ")


def test_serve_stops_with_tunnels_open(tmp_path: Path) -> None:
    """`serve` tunnels (its own protocols), and SIGINT with a tunnel open still ends it
    cleanly: the tunnel's connections are dropped, as a process exit drops Traefik's."""
    (tmp_path / "ws.yaml").write_text(CONFIG)
    backend = WsBackend("ws-a")
    with serve_app(backend) as url_backend, contextlib.ExitStack() as clients:
        with serve_cli(
            [str(tmp_path)],
            {"default/ws-a:80": url_backend, "default/ws-b:80": url_backend},
            check_exit=True,
        ) as url:
            sock = socket.create_connection(("127.0.0.1", port_of(url)), timeout=10)
            client = clients.enter_context(
                connect("ws://ws.test/", sock=sock, open_timeout=10, close_timeout=2)
            )
            client.send(b"\x00" * 100_000)
            assert client.recv(timeout=10) == b"\x00" * 100_000
        # serve has exited 0 (check_exit); the client's connection is gone with it
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=10)
        backend.wait(lambda: backend.active == 0)
