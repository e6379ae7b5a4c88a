"""GatewayTransport against real sockets on 127.0.0.1.

Each test runs one event loop holding both the transport and a scripted asyncio server,
so the server can pause, reset or stay silent exactly when the test needs it, and the
test waits on the server's state (connections seen, EOFs seen) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import RecordingBackend
from traefikservice_asgi._transport import GatewayTransport
from traefikservice_asgi.loadbalancer.mirror_pool import CopyJob, MirrorLimits, MirrorPool
from traefikservice_asgi.proxy import ClientHolder, Server

WAIT = 5.0  # upper bound for any wait on a condition; never a sleep

Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


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


# -- connection reuse -----------------------------------------------------------------------


def test_sequential_requests_reuse_one_keep_alive_connection() -> None:
    async def go() -> None:
        async with Upstream(keep_alive()) as up, client() as (c, transport):
            for _ in range(3):
                response = await c.get(up.url + "/x")
                assert response.text == "ok"
            assert up.connections == 1
            assert len(up.requests) == 3
            assert transport.idle_connections() == 1

    run(go())


def test_concurrent_requests_get_their_own_connections_and_all_are_pooled() -> None:
    async def go() -> None:
        async with Upstream(held()) as up, client() as (c, transport):
            calls = [asyncio.ensure_future(c.get(up.url)) for _ in range(5)]
            await up.wait_until(lambda: len(up.requests) == 5)
            up.release.set()
            assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * 5
            assert up.connections == 5
            assert transport.idle_connections() == 5
            await c.get(up.url)
            assert up.connections == 5

    run(go())


def test_max_idle_per_host_closes_the_coldest_extra_connection() -> None:
    async def go() -> None:
        async with Upstream(held()) as up, client(max_idle_per_host=2) as (c, transport):
            calls = [asyncio.ensure_future(c.get(up.url)) for _ in range(3)]
            await up.wait_until(lambda: len(up.requests) == 3)
            up.release.set()
            await asyncio.gather(*calls)
            await up.wait_until(lambda: up.eofs == 1)
            assert transport.idle_connections() == 2

    run(go())


def test_mirror_copies_keep_their_idle_connections_in_a_pool_of_their_own() -> None:
    """A slow mirror holds many connections at once; they go back to a copies' pool
    bounded by ``max_idle_copies_per_host``, and main requests never take them."""

    async def go() -> None:
        options = {"max_idle_per_host": 1, "max_idle_copies_per_host": 3}
        async with Upstream(held()) as up, client(**options) as (c, transport):
            netloc = up.url.removeprefix("http://").encode()
            origin = (b"http", b"127.0.0.1", int(netloc.rsplit(b":", 1)[1]))

            async def copy() -> None:
                raw = await transport.forward(
                    b"GET", origin, netloc, b"/", [(b"host", netloc)], httpx.ByteStream(b""),
                    {}, None, True,
                )  # fmt: skip
                try:
                    assert b"".join([chunk async for chunk in raw.stream]) == b"ok"
                finally:
                    await raw.stream.aclose()

            copies = [asyncio.ensure_future(copy()) for _ in range(4)]
            await up.wait_until(lambda: len(up.requests) == 4)
            up.release.set()
            await asyncio.gather(*copies)
            await up.wait_until(lambda: up.eofs == 1)  # the fourth is over the cap of 3
            assert (transport.idle_connections(copies=True), transport.idle_connections()) == (
                3,
                0,
            )
            assert (await c.get(up.url)).text == "ok"  # a main request: a new connection
            assert up.connections == 5
            assert (transport.idle_connections(copies=True), transport.idle_connections()) == (
                3,
                1,
            )
            await copy()  # a copy: one of the copies' connections again
            assert up.connections == 5

    run(go())


def test_response_with_connection_close_is_not_reused() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        # Keep the socket open: the client must close because of the header alone.
        await read_request(up, reader)

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, transport):
            assert (await c.get(up.url)).text == "ok"
            assert (await c.get(up.url)).text == "ok"
            assert up.connections == 2
            await up.wait_until(lambda: up.eofs == 2)
            assert transport.idle_connections() == 0

    run(go())


def test_http_1_0_response_without_keep_alive_is_not_reused() -> None:
    async def go() -> None:
        handler = keep_alive(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        async with Upstream(handler) as up, client() as (c, _):
            first = await c.get(up.url)
            assert first.http_version == "HTTP/1.0"
            await c.get(up.url)
            assert up.connections == 2

    run(go())


def test_request_asking_connection_close_is_not_reused() -> None:
    async def go() -> None:
        async with Upstream(keep_alive()) as up, client() as (c, transport):
            await c.get(up.url, headers={"Connection": "close"})
            await up.wait_until(lambda: up.eofs == 1)
            assert transport.idle_connections() == 0

    run(go())


def test_connection_whose_response_was_not_fully_read_is_not_reused() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        if i == 0:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
            await writer.drain()
            await reader.read()  # the rest is never sent; wait for the client to go
            await up.saw_eof()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(up, reader)

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, transport):
            async with c.stream("GET", up.url) as response:
                chunks = response.aiter_raw()
                assert await chunks.__anext__() == b"first"
            # closed with 5 bytes still due: the connection must not serve request 2
            assert transport.idle_connections() == 0
            assert (await c.get(up.url)).text == "ok"
            assert up.connections == 2
            await up.wait_until(lambda: up.eofs >= 1)

    run(go())


def test_idle_connection_is_closed_after_keepalive_expiry() -> None:
    async def go() -> None:
        async with Upstream(keep_alive()) as up, client(keepalive_expiry=0.2) as (c, transport):
            started = time.monotonic()
            await c.get(up.url)
            await up.wait_until(lambda: up.eofs == 1)  # the client closed it, unasked
            assert time.monotonic() - started >= 0.2
            assert transport.idle_connections() == 0
            await c.get(up.url)
            assert up.connections == 2

    run(go())


def test_reused_connection_closed_by_server_before_answering_is_retried_for_get() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if i == 0:
            await read_request(up, reader)  # a keep-alive timeout racing the request
            return
        await read_request(up, reader)

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, _):
            await c.get(up.url)
            assert (await c.get(up.url)).text == "ok"
            assert up.connections == 2

    run(go())


def test_request_with_body_is_not_retried_after_the_server_closed() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(up, reader)

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, _):
            await c.get(up.url)
            with pytest.raises(httpx.RemoteProtocolError):
                await c.post(up.url, content=b"not replayable")
            assert up.connections == 1

    run(go())


# -- request framing --------------------------------------------------------------------------


def _backend_run(coro_factory: Callable[[str], Coroutine[Any, Any, None]]) -> RecordingBackend:
    with RecordingBackend("app") as backend:
        run(coro_factory(backend.url))
    return backend


def test_headers_go_out_once_as_given_and_nothing_is_added() -> None:
    headers = [
        (b"Host", b"app.test"),
        (b"X-A", b"1"),
        (b"x-a", b"2"),
        (b"Accept-Encoding", b"gzip"),
    ]

    async def go(url: str) -> None:
        async with client() as (c, _):
            request = httpx.Request(
                "GET", url + "/p?q=1", headers=headers, stream=httpx.ByteStream(b"")
            )
            await c.send(request)

    (seen,) = _backend_run(go).requests
    assert seen.target == "/p?q=1"
    assert seen.headers == (
        ("Host", "app.test"),
        ("X-A", "1"),
        ("x-a", "2"),
        ("Accept-Encoding", "gzip"),
    )


def test_missing_host_is_taken_from_the_url() -> None:
    async def go(url: str) -> None:
        async with client() as (c, _):
            await c.send(
                httpx.Request("GET", url, headers=[(b"x", b"y")], stream=httpx.ByteStream(b""))
            )

    (seen,) = _backend_run(go).requests
    assert seen.header_values("host") == [seen.header("host")]
    assert seen.header(
        "host",
    ) is not None and seen.header("host").startswith("127.0.0.1:")  # type: ignore[union-attr]


def test_chunked_request_body_is_streamed_chunked_without_content_length() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"part-1,"
        yield b"part-2"

    async def go(url: str) -> None:
        async with client() as (c, _):
            await c.post(url, content=body())

    (seen,) = _backend_run(go).requests
    assert seen.chunked
    assert seen.body == b"part-1,part-2"
    assert seen.header("content-length") is None


def test_both_framing_headers_given_sends_only_transfer_encoding() -> None:
    class Parts(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"abc"

    async def go(url: str) -> None:
        async with client() as (c, _):
            headers = [
                (b"Host", b"h"),
                (b"Content-Length", b"3"),
                (b"Transfer-Encoding", b"chunked"),
            ]
            await c.send(httpx.Request("POST", url, headers=headers, stream=Parts()))

    (seen,) = _backend_run(go).requests
    assert seen.header_values("transfer-encoding") == ["chunked"]
    assert seen.header("content-length") is None
    assert seen.body == b"abc"


def test_content_length_body_is_sent_with_its_length() -> None:
    async def go(url: str) -> None:
        async with client() as (c, _):
            await c.post(url, content=b"0123456789")

    (seen,) = _backend_run(go).requests
    assert seen.header_values("content-length") == ["10"]
    assert not seen.chunked
    assert seen.body == b"0123456789"


def test_unframed_request_with_a_body_gets_chunked_framing() -> None:
    class Parts(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b""
            yield b"late"

    async def go(url: str) -> None:
        async with client() as (c, _):
            await c.send(httpx.Request("PUT", url, headers=[(b"Host", b"h")], stream=Parts()))

    (seen,) = _backend_run(go).requests
    assert seen.chunked
    assert seen.body == b"late"


def test_header_value_with_crlf_is_refused_before_sending() -> None:
    async def go(url: str) -> None:
        async with client() as (c, _):
            request = httpx.Request(
                "GET",
                url,
                headers=[(b"X-A", b"1\r\nX-Injected: yes")],
                stream=httpx.ByteStream(b""),
            )
            with pytest.raises(httpx.LocalProtocolError):
                await c.send(request)

    assert _backend_run(go).requests == []


def test_body_longer_than_its_content_length_is_refused() -> None:
    class Parts(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"toolong"

    async def go() -> None:
        async with Upstream(keep_alive()) as up, client() as (c, _):
            headers = [(b"Host", b"h"), (b"Content-Length", b"3")]
            with pytest.raises(httpx.LocalProtocolError):
                await c.send(httpx.Request("POST", up.url, headers=headers, stream=Parts()))

    run(go())


# -- responses --------------------------------------------------------------------------------


def test_chunked_response_is_decoded_and_the_connection_reused() -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
    )

    async def go() -> None:
        async with Upstream(keep_alive(response)) as up, client() as (c, _):
            first = await c.get(up.url)
            assert first.content == b"hello, world"
            assert first.headers["transfer-encoding"] == "chunked"
            assert (await c.get(up.url)).content == b"hello, world"
            assert up.connections == 1

    run(go())


def test_large_response_streams_before_the_server_finished_sending() -> None:
    part = b"x" * 65536
    total = 4 * 1024 * 1024

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total + part)
        await writer.drain()
        await up.release.wait()  # the rest only after the client saw the first bytes
        for _ in range(total // len(part) - 1):
            writer.write(part)
            await writer.drain()
        await read_request(up, reader)

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, _):
            async with c.stream("GET", up.url) as response:
                chunks = response.aiter_raw()
                first = await asyncio.wait_for(chunks.__anext__(), WAIT)
                assert 0 < len(first) <= len(part)
                up.release.set()
                received = len(first) + sum([len(chunk) async for chunk in chunks])
            assert received == total

    run(go())


def test_response_body_delimited_by_close_is_read_to_the_end() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        await writer.drain()

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, transport):
            assert (await c.get(up.url)).content == b"until the end"
            assert transport.idle_connections() == 0

    run(go())


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)], ids=["HEAD", "204", "304"]
)
def test_bodiless_responses_end_at_their_head_and_keep_the_connection(
    method: str, status: int
) -> None:
    head = b"HTTP/1.1 %d X\r\nContent-Length: 1000\r\n\r\n" % status
    if status != 200:
        head = b"HTTP/1.1 %d X\r\n\r\n" % status

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(head)
        await writer.drain()
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(up, reader)

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, _):
            first = await c.request(method, up.url)
            assert (first.status_code, first.content) == (status, b"")
            assert (await c.get(up.url)).content == b"ok"
            assert up.connections == 1

    run(go())


def test_interim_100_continue_is_skipped_and_reason_phrase_kept() -> None:
    response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Made It\r\nContent-Length: 2\r\n\r\nok"

    async def go() -> None:
        async with Upstream(keep_alive(response)) as up, client() as (c, _):
            answer = await c.post(up.url, content=b"x")
            assert (answer.status_code, answer.reason_phrase, answer.text) == (201, "Made It", "ok")

    run(go())


# -- failures map to httpx's exceptions ----------------------------------------------------------


def test_refused_connection_raises_connect_error() -> None:
    async def go() -> None:
        async with client() as (c, _):
            with pytest.raises(httpx.ConnectError):
                await c.get(f"http://127.0.0.1:{closed_port()}/")

    run(go())


def test_unknown_host_raises_connect_error() -> None:
    async def go() -> None:
        async with client() as (c, _):
            with pytest.raises(httpx.ConnectError):
                await c.get("http://no-such-host.invalid/")

    run(go())


def test_silent_server_raises_read_timeout_after_the_configured_timeout() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        await up.release.wait()

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, _):
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await c.get(up.url, timeout=httpx.Timeout(5.0, read=0.3))
            elapsed = time.monotonic() - started
            assert 0.3 <= elapsed < 0.3 + WAIT

    run(go())


def test_read_timeout_also_applies_between_body_chunks() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf-")
        await writer.drain()
        await up.release.wait()

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, transport):
            async with c.stream("GET", up.url, timeout=httpx.Timeout(5.0, read=0.3)) as response:
                with pytest.raises(httpx.ReadTimeout):
                    await response.aread()
            assert transport.idle_connections() == 0

    run(go())


def test_garbage_response_raises_remote_protocol_error() -> None:
    async def go() -> None:
        async with Upstream(keep_alive(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as up, client() as (c, _):
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get(up.url)

    run(go())


def test_server_closing_without_a_response_raises_remote_protocol_error() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)

    async def go() -> None:
        async with Upstream(handler) as up, client() as (c, _):
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get(up.url)

    run(go())


def test_close_mid_body_raises_remote_protocol_error_on_the_stream() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()

    async def go() -> None:
        async with (
            Upstream(handler) as up,
            client() as (c, _),
            c.stream("GET", up.url) as response,
        ):
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()

    run(go())


def test_reset_mid_body_raises_read_error_on_the_stream() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        await up.release.wait()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # linger 0: the kernel sends RST, not FIN

    async def go() -> None:
        async with (
            Upstream(handler) as up,
            client() as (c, _),
            c.stream("GET", up.url) as response,
        ):
            chunks = response.aiter_raw()
            assert await chunks.__anext__() == b"0123456789"
            up.release.set()
            with pytest.raises(httpx.ReadError):
                await chunks.__anext__()

    run(go())


# -- detached mirror copies -----------------------------------------------------------------


def _origin(url: str) -> tuple[tuple[bytes, bytes, int], bytes]:
    netloc = url.removeprefix("http://").encode()
    return (b"http", b"127.0.0.1", int(netloc.rsplit(b":", 1)[1])), netloc


def detached_copy(
    transport: GatewayTransport,
    url: str,
    pool: MirrorPool,
    *,
    method: bytes = b"GET",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    body: bytes = b"",
    header_timeout: float | None = None,
) -> CopyJob:
    """A copy as the gateway sends one: a job of ``pool`` whose task writes it detached."""
    origin, netloc = _origin(url)
    job = pool.admit()
    assert job is not None
    job.run(
        transport.send_detached(
            method, origin, netloc, b"/copy", [(b"host", netloc), *headers], body, {}, job,
            None, header_timeout,
        )
    )  # fmt: skip
    return job


def _our_tasks() -> list[asyncio.Task[Any]]:
    """Tasks running this package's code (the scripted server's tasks are not ours)."""
    return [
        task
        for task in asyncio.all_tasks()
        if "traefikservice_asgi" in task.get_coro().cr_code.co_filename  # type: ignore[union-attr]
    ]


def test_detached_copies_wait_for_their_answers_without_a_task_then_pool_the_connection() -> None:
    """The job's task ends once the request is written; the connection reads the answer,
    discards it, ends the job and goes back to the copies' pool, to be reused."""

    async def go() -> None:
        options = {"max_idle_copies_per_host": 4}
        async with Upstream(held()) as up, client(**options) as (_, transport):
            pool = MirrorPool()
            for _ in range(3):
                detached_copy(transport, up.url, pool)
            await up.wait_until(lambda: len(up.requests) == 3)
            await asyncio.sleep(0)  # the jobs' tasks finish their step
            assert _our_tasks() == []
            assert pool.in_flight == 3
            up.release.set()
            assert await pool.wait_idle(WAIT)
            assert transport.idle_connections(copies=True) == 3
            assert transport.idle_connections() == 0
            detached_copy(transport, up.url, pool)
            assert await pool.wait_idle(WAIT)
            assert (up.connections, len(up.requests)) == (3, 4)  # reused, not a new one

    run(go())


def test_detached_copy_bodies_are_framed_as_their_headers_say() -> None:
    async def go(url: str) -> None:
        async with client() as (_, transport):
            pool = MirrorPool()
            length = ((b"content-length", b"5"),)
            chunked = ((b"transfer-encoding", b"chunked"),)
            detached_copy(transport, url, pool, method=b"POST", headers=length, body=b"fixed")
            assert await pool.wait_idle(WAIT)
            detached_copy(transport, url, pool, method=b"POST", headers=chunked, body=b"chunks")
            assert await pool.wait_idle(WAIT)
            detached_copy(transport, url, pool, method=b"PUT", body=b"unframed")
            assert await pool.wait_idle(WAIT)
            detached_copy(transport, url, pool, method=b"POST", headers=chunked)
            assert await pool.wait_idle(WAIT)

    fixed, chunks, unframed, empty = _backend_run(go).requests
    assert (fixed.body, fixed.chunked, fixed.header("content-length")) == (b"fixed", False, "5")
    assert (chunks.body, chunks.chunked, chunks.header("content-length")) == (b"chunks", True, None)
    assert (unframed.body, unframed.chunked) == (b"unframed", True)
    assert (empty.body, empty.chunked) == (b"", True)


def test_detached_copy_body_not_matching_its_content_length_is_refused_before_sending() -> None:
    async def go() -> None:
        async with Upstream(keep_alive()) as up, client() as (_, transport):
            origin, netloc = _origin(up.url)
            job = MirrorPool().admit()
            assert job is not None
            headers = [(b"host", netloc), (b"content-length", b"3")]
            with pytest.raises(httpx.LocalProtocolError, match="Content-Length 3"):
                await transport.send_detached(
                    b"POST", origin, netloc, b"/", headers, b"toolong", {}, job
                )
            assert up.connections == 0

    run(go())


async def _stale_second_request(
    up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
) -> None:
    """Connection 0 answers once, then reads the next request and closes without an
    answer (a keep-alive timeout racing it); later connections answer everything."""
    await read_request(up, reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    if i == 0:
        await read_request(up, reader)
        return
    await keep_alive()(up, reader, writer, i)


def test_detached_copy_on_a_stale_reused_connection_is_retried_once_on_a_fresh_one() -> None:
    async def go() -> None:
        options = {"max_idle_copies_per_host": 4}
        async with Upstream(_stale_second_request) as up, client(**options) as (_, transport):
            pool = MirrorPool()
            detached_copy(transport, up.url, pool)
            assert await pool.wait_idle(WAIT)
            detached_copy(transport, up.url, pool)
            assert await pool.wait_idle(WAIT)
            assert (up.connections, len(up.requests)) == (2, 3)
            assert transport.idle_connections(copies=True) == 1

    run(go())


def test_detached_copy_with_a_body_is_not_retried_after_a_stale_connection() -> None:
    async def go() -> None:
        options = {"max_idle_copies_per_host": 4}
        async with Upstream(_stale_second_request) as up, client(**options) as (_, transport):
            pool = MirrorPool()
            detached_copy(transport, up.url, pool)
            assert await pool.wait_idle(WAIT)
            length = ((b"content-length", b"4"),)
            detached_copy(transport, up.url, pool, method=b"POST", headers=length, body=b"once")
            assert await pool.wait_idle(WAIT)
            assert (up.connections, len(up.requests)) == (1, 2)
            assert transport.idle_connections(copies=True) == 0

    run(go())


async def _silent(
    up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
) -> None:
    await read_request(up, reader)
    await read_request(up, reader)  # until the gateway closes the connection


def test_detached_copy_without_an_answer_head_in_the_header_timeout_is_cut_off() -> None:
    async def go() -> None:
        async with Upstream(_silent) as up, client() as (_, transport):
            pool = MirrorPool()
            started = time.monotonic()
            detached_copy(transport, up.url, pool, header_timeout=0.2)
            await up.wait_until(lambda: up.eofs == 1)
            assert 0.2 <= time.monotonic() - started < 0.2 + WAIT
            assert await pool.wait_idle(WAIT)
            assert pool.dropped == {}  # the transport's timeout, not the copy's deadline

    run(go())


def test_copy_deadline_aborts_a_detached_exchange_and_counts_the_drop() -> None:
    async def go() -> None:
        async with Upstream(_silent) as up, client() as (_, transport):
            pool = MirrorPool(MirrorLimits(timeout=0.2))
            detached_copy(transport, up.url, pool)
            await up.wait_until(lambda: up.eofs == 1)
            assert await pool.wait_idle(WAIT)
            assert pool.dropped == {"no answer within 0.2 s": 1}
            assert transport.idle_connections(copies=True) == 0

    run(go())


def test_detached_answer_cut_short_closes_the_connection_instead_of_pooling_it() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()

    async def go() -> None:
        options = {"max_idle_copies_per_host": 4}
        async with Upstream(handler) as up, client(**options) as (_, transport):
            pool = MirrorPool()
            detached_copy(transport, up.url, pool)
            assert await pool.wait_idle(WAIT)
            assert transport.idle_connections(copies=True) == 0

    run(go())


# -- through the gateway's forwarding leaf ---------------------------------------------------


def test_server_leaf_forwards_through_the_transport_and_maps_refusal_to_502() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"app.test")],
        "client": ("10.0.0.1", 1234),
    }

    async def go(url: str) -> None:
        holder = ClientHolder(httpx.AsyncClient(transport=GatewayTransport()))
        await Server(url, holder)(scope, receive, send)
        await Server(f"http://127.0.0.1:{closed_port()}", holder)(scope, receive, send)
        await holder.client.aclose()

    with RecordingBackend("app-v1") as backend:
        run(go(backend.url))
        (seen,) = backend.requests
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [200, 502]
    assert b"".join(m.get("body", b"") for m in sent[:3]) == b"Hello app-v1\n"
    assert seen.header_values("host") == ["app.test"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_https_origin_is_verified_with_the_given_context_and_rejected_without(
    tmp_path: Path,
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )

    async def go() -> None:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        server = await asyncio.start_server(
            lambda r, w: keep_alive(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntls")(
                up, r, w, 0
            ),
            "127.0.0.1",
            0,
            ssl=server_context,
        )
        url = f"https://localhost:{server.sockets[0].getsockname()[1]}/"
        trusted = ssl.create_default_context(cafile=str(cert))
        async with client(ssl_context=trusted) as (c, _):
            assert (await c.get(url)).text == "tls"
        async with client() as (c, _):  # the system trust store does not know the cert
            with pytest.raises(httpx.ConnectError):
                await c.get(url)
        server.close()

    up = Upstream(keep_alive())
    run(go())
