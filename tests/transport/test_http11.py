"""One HTTP/1.1 exchange (transport/http11.py and the serialisation of request.py),
through GatewayTransport against real sockets on 127.0.0.1: request framing, response
parsing, and failures mapped to httpx's exceptions."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.upstream import (
    WAIT,
    Upstream,
    against,
    backend_run,
    client,
    closed_port,
    keep_alive,
    read_request,
    run,
)
from traefikservice_asgi.transport import GatewayTransport
from traefikservice_asgi.transport.request import UpstreamRequest, request_head

# -- request framing --------------------------------------------------------------------------


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

    (seen,) = backend_run(go).requests
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

    (seen,) = backend_run(go).requests
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

    (seen,) = backend_run(go).requests
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

    (seen,) = backend_run(go).requests
    assert seen.header_values("transfer-encoding") == ["chunked"]
    assert seen.header("content-length") is None
    assert seen.body == b"abc"


def test_content_length_body_is_sent_with_its_length() -> None:
    async def go(url: str) -> None:
        async with client() as (c, _):
            await c.post(url, content=b"0123456789")

    (seen,) = backend_run(go).requests
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

    (seen,) = backend_run(go).requests
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

    assert backend_run(go).requests == []


def _upstream(headers: list[tuple[bytes, bytes]]) -> UpstreamRequest:
    origin = (b"http", b"127.0.0.1", 80)
    return UpstreamRequest(b"GET", origin, b"a.test", b"/p?q", headers, httpx.ByteStream(b""), {})


def test_a_head_of_names_seen_before_is_serialised_as_the_first_time() -> None:
    headers = [(b"host", b"a.test"), (b"x-first-seen", b"1"), (b"Accept", b"*/*")]
    first = request_head(_upstream(headers))  # the names are checked one by one
    again = request_head(_upstream(headers))  # known now: joined without a loop
    assert first == again
    assert (
        first[0] == b"GET /p?q HTTP/1.1\r\nhost: a.test\r\nx-first-seen: 1\r\nAccept: */*\r\n\r\n"
    )
    assert first[1:] == (None, False, False, False)


def test_a_crlf_value_under_a_name_seen_before_is_refused() -> None:
    request_head(_upstream([(b"host", b"a.test"), (b"x-seen", b"1")]))
    for value in (b"1\r\nX-Injected: yes", b"1\nX: y", b"1\x00"):
        with pytest.raises(httpx.LocalProtocolError):
            request_head(_upstream([(b"host", b"a.test"), (b"x-seen", value)]))
    with pytest.raises(httpx.LocalProtocolError):
        request_head(_upstream([(b"host", b"a.test\r\nX: y"), (b"x-seen", b"1")]))


def test_body_longer_than_its_content_length_is_refused() -> None:
    class Parts(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"toolong"

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        headers = [(b"Host", b"h"), (b"Content-Length", b"3")]
        with pytest.raises(httpx.LocalProtocolError):
            await c.send(httpx.Request("POST", up.url, headers=headers, stream=Parts()))

    against(keep_alive(), check)


# -- responses --------------------------------------------------------------------------------


def test_chunked_response_is_decoded_and_the_connection_reused() -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
    )

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        first = await c.get(up.url)
        assert first.content == b"hello, world"
        assert first.headers["transfer-encoding"] == "chunked"
        assert (await c.get(up.url)).content == b"hello, world"
        assert up.connections == 1

    against(keep_alive(response), check)


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

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        async with c.stream("GET", up.url) as response:
            chunks = response.aiter_raw()
            first = await asyncio.wait_for(chunks.__anext__(), WAIT)
            assert 0 < len(first) <= len(part)
            up.release.set()
            received = len(first) + sum([len(chunk) async for chunk in chunks])
        assert received == total

    against(handler, check)


def test_response_body_delimited_by_close_is_read_to_the_end() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        await writer.drain()

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        assert (await c.get(up.url)).content == b"until the end"
        assert transport.idle_connections() == 0

    against(handler, check)


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

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        first = await c.request(method, up.url)
        assert (first.status_code, first.content) == (status, b"")
        assert (await c.get(up.url)).content == b"ok"
        assert up.connections == 1

    against(handler, check)


def test_interim_100_continue_is_skipped_and_reason_phrase_kept() -> None:
    response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Made It\r\nContent-Length: 2\r\n\r\nok"

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        answer = await c.post(up.url, content=b"x")
        assert (answer.status_code, answer.reason_phrase, answer.text) == (201, "Made It", "ok")

    against(keep_alive(response), check)


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

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await c.get(up.url, timeout=httpx.Timeout(5.0, read=0.3))
        elapsed = time.monotonic() - started
        assert 0.3 <= elapsed < 0.3 + WAIT

    against(handler, check)


def test_read_timeout_also_applies_between_body_chunks() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf-")
        await writer.drain()
        await up.release.wait()

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        async with c.stream("GET", up.url, timeout=httpx.Timeout(5.0, read=0.3)) as response:
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()
        assert transport.idle_connections() == 0

    against(handler, check)


def test_garbage_response_raises_remote_protocol_error() -> None:
    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(up.url)

    against(keep_alive(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), check)


def test_server_closing_without_a_response_raises_remote_protocol_error() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(up.url)

    against(handler, check)


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
