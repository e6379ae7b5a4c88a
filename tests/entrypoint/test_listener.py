"""The entry point's listener: every waiting connection is accepted in one loop
iteration, where uvloop's own server accepts one per iteration (the ``-c256`` tail)."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import uvloop

from tests.support.gateway import StartedServer
from traefikservice_asgi.entrypoint import listener
from traefikservice_asgi.entrypoint.listener import Listener, loop_factory
from traefikservice_asgi.entrypoint.server import EntryPointConfig

CLIENTS = 64
WAIT = 10.0  # upper bound of any wait; never a sleep to assert on


class Recorder(asyncio.Protocol):
    """Records every connection made."""

    def __init__(self, made: list[asyncio.BaseTransport]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)


def entry_point_loop() -> asyncio.AbstractEventLoop:
    factory = loop_factory(uvloop.new_event_loop)
    assert factory is not None
    return factory()


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def connect_all(port: int, opened: list[socket.socket]) -> None:
    """``CLIENTS`` connections, each complete on the client side (the kernel answers the
    handshake for the listening socket: they wait in its accept queue)."""
    for _ in range(CLIENTS):
        opened.append(socket.create_connection(("127.0.0.1", port), timeout=WAIT))


def accepted_in_three_iterations(
    loop: asyncio.AbstractEventLoop, opened: list[socket.socket]
) -> int:
    """How many of ``CLIENTS`` waiting connections a TCP server of ``loop`` has accepted
    after three turns of the loop: one to see the listening socket readable and accept,
    one to run the connections' setup, one for their ``connection_made``."""

    async def main() -> int:
        made: list[asyncio.BaseTransport] = []
        server = await asyncio.get_running_loop().create_server(
            lambda: Recorder(made), "127.0.0.1", 0, backlog=2048
        )
        connect_all(server.sockets[0].getsockname()[1], opened)
        for _ in range(3):
            await asyncio.sleep(0)
        accepted = len(made)
        server.close()
        for transport in made:
            transport.close()
        await server.wait_closed()
        return accepted

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def test_every_waiting_connection_is_accepted_in_one_readiness(
    clients: list[socket.socket],
) -> None:
    assert accepted_in_three_iterations(entry_point_loop(), clients) == CLIENTS


def test_uvloops_own_server_accepts_one_connection_per_iteration(
    clients: list[socket.socket],
) -> None:
    """Why the listener exists: libuv's accept (libuv/libuv#3696). When this fails,
    uvloop accepts in batches again and :mod:`..listener` can go."""
    assert accepted_in_three_iterations(uvloop.new_event_loop(), clients) < CLIENTS // 4


def test_the_entry_point_config_picks_the_listening_loop_only_for_uvloop() -> None:
    uvloop_config = EntryPointConfig(lambda: None, loop="uvloop")
    factory = uvloop_config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
        assert type(loop) is not uvloop.Loop  # the listening subclass
    finally:
        loop.close()
    asyncio_config = EntryPointConfig(lambda: None, loop="asyncio")
    factory = asyncio_config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert not isinstance(loop, uvloop.Loop)  # asyncio already accepts in batches
    finally:
        loop.close()


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_uvicorn_serves_through_the_listener_and_frees_the_port_when_it_stops() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    config = EntryPointConfig(ok_app, host="127.0.0.1", port=port, lifespan="off", loop="uvloop")
    server = StartedServer(config)
    answers: list[bytes] = []

    async def main() -> None:
        serving = asyncio.ensure_future(server.serve())
        await asyncio.wait_for(server.ready.wait(), WAIT)
        assert all(isinstance(s, Listener) for s in server.servers)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers.append(await asyncio.wait_for(reader.read(), WAIT))
        writer.close()
        server.should_exit = True
        await asyncio.wait_for(serving, WAIT)

    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\n") and answers[0].endswith(
        b"\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    with socket.socket() as again:  # closed: the port can be bound again
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


class ExhaustedOnce(socket.socket):
    """A listening socket whose first ``accept`` fails as when the process has no
    descriptor left (``EMFILE``)."""

    failed = False

    def accept(self) -> tuple[socket.socket, Any]:
        if not ExhaustedOnce.failed:
            ExhaustedOnce.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_running_out_of_descriptors_backs_off_then_accepts_again(
    monkeypatch: pytest.MonkeyPatch, clients: list[socket.socket]
) -> None:
    monkeypatch.setattr(listener, "ACCEPT_RETRY_DELAY", 0.05)
    sock = ExhaustedOnce(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    made: list[asyncio.BaseTransport] = []

    async def main() -> None:
        connected = asyncio.Event()

        def protocol() -> asyncio.Protocol:
            connected.set()
            return Recorder(made)

        server = Listener(asyncio.get_running_loop(), protocol, [sock], 128)
        await server.start_serving()
        clients.append(socket.create_connection(sock.getsockname(), timeout=WAIT))
        await asyncio.wait_for(connected.wait(), WAIT)
        server.close()
        await server.wait_closed()
        for transport in made:
            transport.close()

    loop = entry_point_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert ExhaustedOnce.failed and len(made) == 1
