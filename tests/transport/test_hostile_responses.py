"""A response ends where its framing says (transport/http11.py), against real sockets.

Whatever a backend sends after its response, in the same read or later (a second
response, a late ``100 Continue``, a trailer, junk), is never parsed into that response,
and the connection is closed instead of going back to the pool: the next client's
request must never be answered with the rest of someone else's exchange.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.upstream import Upstream, against, keep_alive, read_request
from traefikservice_asgi.transport import GatewayTransport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def first_then(extra: bytes, later: bytes = OK) -> object:
    """Answer the first request on connection 0 with ``OK + extra`` in one write, and
    every other request with ``later``."""

    async def handler(
        upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        first = True
        while await read_request(upstream, reader) is not None:
            writer.write((OK + extra) if first and i == 0 else later)
            first = False
            await writer.drain()

    return handler


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(
            b"HTTP/1.1 302 Found\r\nLocation: /evil\r\nSet-Cookie: a=b\r\nContent-Length: 0\r\n\r\n",
            id="second-response",
        ),
        pytest.param(b"HTTP/1.1 302 Found\r\nLocation: /evil\r\nContent-Le", id="second-head-only"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n", id="late-100-continue"),
        pytest.param(b"junk", id="junk"),
    ],
)
def test_bytes_after_a_response_are_not_part_of_it_and_the_connection_is_not_reused(
    extra: bytes,
) -> None:
    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        r = await c.get(up.url + "/1")
        assert (r.status_code, r.headers.raw, r.content) == (
            200,
            [(b"Content-Length", b"2")],
            b"ok",
        )
        # The next, unrelated request gets its own answer, on a fresh connection.
        r2 = await c.get(up.url + "/2")
        assert (r2.status_code, r2.content) == (200, b"ok")
        assert up.connections == 2

    against(first_then(extra), check)  # type: ignore[arg-type]


def test_a_trailer_in_the_same_read_as_the_head_is_never_a_header() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-T: forged\r\nSet-Cookie: a=b\r\n\r\n"
    )

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        r = await c.get(up.url)
        assert r.content == b"ok"
        names = [name.lower() for name, _ in r.headers.raw]
        assert b"x-t" not in names and b"set-cookie" not in names

    against(keep_alive(answer), check)


def test_a_100_continue_after_the_final_response_keeps_its_headers() -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\nok"

    async def handler(
        upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(upstream, reader)
        writer.write(answer + b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await upstream.release.wait()

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        r = await c.get(up.url)
        assert (r.status_code, r.headers.get("x-keep"), r.content) == (200, "1", b"ok")

    against(handler, check)


def test_junk_after_a_complete_chunked_response_does_not_truncate_it() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\ngarbage"

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        r = await c.get(up.url + "/1")
        assert (r.status_code, r.content) == (200, b"ok")
        r2 = await c.get(up.url + "/2")
        assert (r2.status_code, r2.content) == (200, b"ok")
        assert up.connections == 2

    async def handler(
        upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        while await read_request(upstream, reader) is not None:
            writer.write(answer if i == 0 else OK)
            await writer.drain()

    against(handler, check)


def test_a_chunked_response_with_a_content_length_is_read_chunked_without_the_length() -> None:
    """Go's fixLength: chunked wins and the length is dropped (llhttp would refuse)."""
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    )

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        r = await c.get(up.url)
        assert (r.status_code, r.content, r.headers.get("content-length")) == (200, b"ok", None)

    against(keep_alive(answer), check)
