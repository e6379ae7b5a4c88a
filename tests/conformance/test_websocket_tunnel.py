"""A WebSocket through serve's tunnel is what it is through Traefik 3.7.15's.

A raw-socket backend answers each upgrade with its own ``101`` head (header names in
mixed case and order, two values of one name), then echoes every byte. The same raw
client goes through the real Traefik and through the gateway under serve's protocols;
the ``101`` heads the clients get must be byte for byte equal (Go's canonical header
names, sorted; its status line), the bytes after them too, and the upgrade requests the
backend got must carry the same WebSocket headers. A ``101`` switching to a protocol
the client did not ask for, or without ``Connection: Upgrade``, is a ``500`` from both.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Iterator

import pytest

from tests.conformance.runner import requires_traefik
from tests.test_faults import beside_traefik
from traefikservice_asgi.entrypoint.server import EntryPointProtocol
from traefikservice_asgi.entrypoint.websocket import TunnelWebSocketProtocol

pytestmark = requires_traefik

ANSWERS = {
    "plain": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Accept: made-up\r\n\r\n",
    "mixed": b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nupgrade: WebSocket\r\n"
    b"x-zed: 1\r\nConnection: Upgrade\r\nsec-websocket-accept: made-up\r\n"
    b"X-Alpha: a\r\nx-alpha: b\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
    b"Content-Length: 0\r\n\r\n",
    "no-reason": b"HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "no-connection-upgrade": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    "other-protocol": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
    b"Connection: Upgrade\r\n\r\n",
}
REQUESTS: dict[str, bytes] = {}  # (name:proxy) -> the upgrade request the backend got


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    name = head.split(b" ")[1][1:].decode()
    proxy = "traefik" if b"x-proxy: traefik" in head.lower() else "gateway"
    REQUESTS[f"{name}:{proxy}"] = head
    writer.write(ANSWERS[name] + b"\x89\x02hi")  # and a ping in the same write
    await writer.drain()
    while data := await reader.read(65536):  # then echo
        writer.write(data)
        await writer.drain()


KEY = base64.b64encode(os.urandom(16)).decode()


def _through(base: str, name: str, proxy: str) -> tuple[bytes, bytes]:
    """The answer's head, and what comes back after it for 64 KiB of random bytes (or
    the body of an answer other than 101)."""
    host, port = base.removeprefix("http://").split(":")
    key = KEY
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"GET /{name} HTTP/1.1\r\nHost: f.test\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Extensions: permessage-deflate\r\nX-Proxy: {proxy}\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(rest) < length:
                chunk = sock.recv(65536)
                assert chunk
                rest += chunk
            # An answer other than 101 is written by the ASGI server: its status line
            # and body are compared (it adds Content-Type and Connection: close).
            return head.split(b"\r\n")[0], rest
        payload = os.urandom(65536)
        sock.sendall(payload)
        while len(rest) < 4 + len(payload):
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(rest)} bytes"
            rest += chunk
        assert rest == b"\x89\x02hi" + payload
        return head, rest[:4]


def _websocket_headers(request: bytes) -> list[bytes]:
    lines = request.lower().split(b"\r\n")
    wanted = (b"sec-websocket-", b"connection:", b"upgrade:", b"host:")
    return sorted(line for line in lines if line.startswith(wanted))


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with beside_traefik(
        tmp_path_factory.mktemp("tunnel"),
        _answer,
        http=EntryPointProtocol,
        ws=TunnelWebSocketProtocol,
    ) as urls:
        yield urls


@pytest.mark.parametrize("name", list(ANSWERS))
def test_a_tunnelled_upgrade_is_answered_and_relayed_as_traefik_does(
    both: tuple[str, str], name: str
) -> None:
    traefik, gateway = both
    assert _through(gateway, name, "gateway") == _through(traefik, name, "traefik")
    assert _websocket_headers(REQUESTS[f"{name}:gateway"]) == _websocket_headers(
        REQUESTS[f"{name}:traefik"]
    )
