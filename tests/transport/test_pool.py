"""GatewayTransport's pools (transport/pool.py) against real sockets on 127.0.0.1:
connection reuse and expiry, the mirror copies' own pool, detached copies, and the leaf
that forwards through the transport."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.upstream import (
    WAIT,
    Upstream,
    against,
    backend_run,
    client,
    closed_port,
    held,
    keep_alive,
    read_request,
    run,
)
from traefikservice_asgi.loadbalancer.mirror_pool import CopyJob, MirrorLimits, MirrorPool
from traefikservice_asgi.proxy import Server
from traefikservice_asgi.transport import ClientHolder, GatewayTransport, UpstreamRequest

# -- connection reuse -----------------------------------------------------------------------


def test_sequential_requests_reuse_one_keep_alive_connection() -> None:
    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        for _ in range(3):
            response = await c.get(up.url + "/x")
            assert response.text == "ok"
        assert up.connections == 1
        assert len(up.requests) == 3
        assert transport.idle_connections() == 1

    against(keep_alive(), check)


def test_concurrent_requests_get_their_own_connections_and_all_are_pooled() -> None:
    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        calls = [asyncio.ensure_future(c.get(up.url)) for _ in range(5)]
        await up.wait_until(lambda: len(up.requests) == 5)
        up.release.set()
        assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * 5
        assert up.connections == 5
        assert transport.idle_connections() == 5
        await c.get(up.url)
        assert up.connections == 5

    against(held(), check)


def test_max_idle_per_host_closes_the_coldest_extra_connection() -> None:
    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        calls = [asyncio.ensure_future(c.get(up.url)) for _ in range(3)]
        await up.wait_until(lambda: len(up.requests) == 3)
        up.release.set()
        await asyncio.gather(*calls)
        await up.wait_until(lambda: up.eofs == 1)
        assert transport.idle_connections() == 2

    against(held(), check, max_idle_per_host=2)


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
                    UpstreamRequest(
                        b"GET", origin, netloc, b"/", [(b"host", netloc)], httpx.ByteStream(b""),
                        {}, copy=True,
                    )
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

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        assert (await c.get(up.url)).text == "ok"
        assert (await c.get(up.url)).text == "ok"
        assert up.connections == 2
        await up.wait_until(lambda: up.eofs == 2)
        assert transport.idle_connections() == 0

    against(handler, check)


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
    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        await c.get(up.url, headers={"Connection": "close"})
        await up.wait_until(lambda: up.eofs == 1)
        assert transport.idle_connections() == 0

    against(keep_alive(), check)


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

    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        async with c.stream("GET", up.url) as response:
            chunks = response.aiter_raw()
            assert await chunks.__anext__() == b"first"
        # closed with 5 bytes still due: the connection must not serve request 2
        assert transport.idle_connections() == 0
        assert (await c.get(up.url)).text == "ok"
        assert up.connections == 2
        await up.wait_until(lambda: up.eofs >= 1)

    against(handler, check)


def test_idle_connection_is_closed_after_keepalive_expiry() -> None:
    async def check(up: Upstream, c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        started = time.monotonic()
        await c.get(up.url)
        await up.wait_until(lambda: up.eofs == 1)  # the client closed it, unasked
        assert time.monotonic() - started >= 0.2
        assert transport.idle_connections() == 0
        await c.get(up.url)
        assert up.connections == 2

    against(keep_alive(), check, keepalive_expiry=0.2)


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

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        await c.get(up.url)
        assert (await c.get(up.url)).text == "ok"
        assert up.connections == 2

    against(handler, check)


def test_request_with_body_is_not_retried_after_the_server_closed() -> None:
    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int
    ) -> None:
        await read_request(up, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(up, reader)

    async def check(up: Upstream, c: httpx.AsyncClient, _transport: GatewayTransport) -> None:
        await c.get(up.url)
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(up.url, content=b"not replayable")
        assert up.connections == 1

    against(handler, check)


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
            UpstreamRequest(
                method, origin, netloc, b"/copy", [(b"host", netloc), *headers],
                httpx.ByteStream(b""), {}, header_timeout=header_timeout,
            ),
            body,
            job,
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

    fixed, chunks, unframed, empty = backend_run(go).requests
    assert (fixed.body, fixed.chunked, fixed.header("content-length")) == (b"fixed", False, "5")
    assert (chunks.body, chunks.chunked, chunks.header("content-length")) == (b"chunks", True, None)
    assert (unframed.body, unframed.chunked) == (b"unframed", True)
    assert (empty.body, empty.chunked) == (b"", True)


def test_detached_copy_body_not_matching_its_content_length_is_refused_before_sending() -> None:
    async def check(up: Upstream, _c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        origin, netloc = _origin(up.url)
        job = MirrorPool().admit()
        assert job is not None
        headers = [(b"host", netloc), (b"content-length", b"3")]
        with pytest.raises(httpx.LocalProtocolError, match="Content-Length 3"):
            await transport.send_detached(
                UpstreamRequest(b"POST", origin, netloc, b"/", headers, httpx.ByteStream(b""), {}),
                b"toolong",
                job,
            )
        assert up.connections == 0

    against(keep_alive(), check)


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
    async def check(up: Upstream, _c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        pool = MirrorPool()
        started = time.monotonic()
        detached_copy(transport, up.url, pool, header_timeout=0.2)
        await up.wait_until(lambda: up.eofs == 1)
        assert 0.2 <= time.monotonic() - started < 0.2 + WAIT
        assert await pool.wait_idle(WAIT)
        assert pool.dropped == {}  # the transport's timeout, not the copy's deadline

    against(_silent, check)


def test_copy_deadline_aborts_a_detached_exchange_and_counts_the_drop() -> None:
    async def check(up: Upstream, _c: httpx.AsyncClient, transport: GatewayTransport) -> None:
        pool = MirrorPool(MirrorLimits(timeout=0.2))
        detached_copy(transport, up.url, pool)
        await up.wait_until(lambda: up.eofs == 1)
        assert await pool.wait_idle(WAIT)
        assert pool.dropped == {"no answer within 0.2 s": 1}
        assert transport.idle_connections(copies=True) == 0

    against(_silent, check)


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
