"""A scripted HTTP/1.1 server and a client on the gateway's transport, for tests that
drive :class:`~traefikservice_asgi.transport.pool.GatewayTransport` against real sockets.

Each test runs one event loop holding both the transport and a scripted asyncio server,
so the server can pause, reset or stay silent exactly when the test needs it, and the
test waits on the server's state (connections seen, EOFs seen) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import httpx

from tests.support.backends import RecordingBackend
from traefikservice_asgi.transport import GatewayTransport

WAIT = 5.0  # upper bound for any wait on a condition; never a sleep

Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
Check = Callable[["Upstream", httpx.AsyncClient, GatewayTransport], Awaitable[None]]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


class Upstream:
    """A scripted HTTP server: ``handler(upstream, reader, writer, connection_index)``
    runs for every accepted connection; ``connections`` and ``eofs`` count what the
    server saw (an EOF is the client closing a connection)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.eofs = 0
        self.requests: list[bytes] = []
        self.release = asyncio.Event()
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self.release.set()
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = self.connections
        await self._bump("connections")
        try:
            await self.handler(self, reader, writer, index)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _bump(self, counter: str) -> None:
        async with self._changed:
            setattr(self, counter, getattr(self, counter) + 1)
            self._changed.notify_all()

    async def saw_eof(self) -> None:
        await self._bump("eofs")

    async def record(self, head: bytes) -> None:
        async with self._changed:
            self.requests.append(head)
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), WAIT)


async def read_request(upstream: Upstream, reader: asyncio.StreamReader) -> bytes | None:
    """Read one request (head and body); None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        await upstream.saw_eof()
        return None
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    await upstream.record(head)
    return head


def held(response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") -> Handler:
    """Keep-alive answers, each only once ``upstream.release`` is set: the test first
    gets every request in flight, each on its own connection."""

    async def handler(
        upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        while await read_request(upstream, reader) is not None:
            await upstream.release.wait()
            writer.write(response)
            await writer.drain()

    return handler


def keep_alive(response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") -> Handler:
    async def handler(
        upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        while await read_request(upstream, reader) is not None:
            writer.write(response)
            await writer.drain()

    return handler


@contextlib.asynccontextmanager
async def client(**options: Any) -> AsyncIterator[tuple[httpx.AsyncClient, GatewayTransport]]:
    transport = GatewayTransport(**options)
    async with httpx.AsyncClient(transport=transport, trust_env=False) as c:
        yield c, transport


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def against(handler: Handler, check: Check, **options: Any) -> None:
    """Run ``check(upstream, client, transport)`` with an :class:`Upstream` serving
    ``handler`` and a client on a ``GatewayTransport(**options)``, in one event loop."""

    async def go() -> None:
        async with Upstream(handler) as up, client(**options) as (c, transport):
            await check(up, c, transport)

    run(go())


def backend_run(coro_factory: Callable[[str], Coroutine[Any, Any, None]]) -> RecordingBackend:
    """Run ``coro_factory(url)`` against a recording backend; the backend, to read."""
    with RecordingBackend("app") as backend:
        run(coro_factory(backend.url))
    return backend
