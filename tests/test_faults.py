"""Broken backends and load: every request gets the status Traefik gives, nothing leaks.

Backends here are raw asyncio servers on 127.0.0.1 that misbehave on purpose; the
gateway runs under uvicorn; the load generator speaks HTTP/1.1 over raw sockets so the
client is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import serve_app
from traefikservice_asgi import TraefikServiceMiddleware, create_app

ROOT = Path(__file__).resolve().parents[1]

ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`f.test`)
      services: [{name: app, port: 80%s}]
"""

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextmanager
def raw_backend(handler: Handler) -> Iterator[str]:
    """A TCP server on 127.0.0.1 running ``handler(reader, writer, connection_number)``."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}
    counter = iter(range(1, 10**9))

    handlers: set[asyncio.Task[None]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer, next(counter))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            handlers.discard(task)
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
        state["port"] = server.sockets[0].getsockname()[1]
        state["stop"] = stop = asyncio.Event()
        ready.set()
        async with server:
            await stop.wait()
            for task in list(handlers):  # a handler still sleeping must not outlive the loop
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        stop = state["stop"]
        assert isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello app-v1\n"


def write_config(tmp_path: Path, options: str = "", extra: str = "") -> Path:
    (tmp_path / "r.yaml").write_text(ROUTE % options + extra)
    return tmp_path


def gateway_for(
    tmp_path: Path, url: str, options: str = "", extra: str = ""
) -> TraefikServiceMiddleware:
    return create_app(write_config(tmp_path, options, extra), backends={"default/app:80": url})


@contextmanager
def beside_traefik(
    tmp: Path, handler: Handler, **uvicorn_options: Any
) -> Iterator[tuple[str, str]]:
    """The real Traefik and the gateway (under uvicorn with ``uvicorn_options``), each
    routing ``Host(`f.test`)`` to one ``raw_backend(handler)``; yields both base URLs."""
    from tests.support.traefik import TraefikProcess

    (tmp / "traefik").mkdir()
    (tmp / "gateway").mkdir()
    with raw_backend(handler) as url:
        dynamic = {
            "http": {
                "routers": {"r": {"rule": "Host(`f.test`)", "service": "s"}},
                "services": {"s": {"loadBalancer": {"servers": [{"url": url}]}}},
            }
        }
        app = gateway_for(tmp / "gateway", url)
        with (
            TraefikProcess(dynamic, tmp_path=tmp / "traefik") as traefik,
            serve_app(app, **uvicorn_options) as gateway,
        ):
            yield traefik.url, gateway


@pytest.mark.parametrize(
    ("name", "behaviour", "expected"),
    [
        ("reset", "close", (502, b"Bad Gateway")),
        # Go's ReadResponse fails to parse before it sees the reset: Traefik answers 500.
        ("garbage", "garbage", (500, b"Internal Server Error")),
        ("half headers", "half", (502, b"Bad Gateway")),
    ],
)
def test_broken_backends_give_traefiks_status(
    tmp_path: Path, name: str, behaviour: str, expected: tuple[int, bytes]
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)
        if behaviour == "garbage":
            writer.write(b"this is not HTTP at all\r\n\r\n")
        elif behaviour == "half":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )  # RST

    with raw_backend(handler) as url, serve_app(gateway_for(tmp_path, url)) as gw:
        r = httpx.get(gw, headers={"Host": "f.test"})
    assert (r.status_code, r.content) == expected, name


def test_backend_closing_mid_body_aborts_the_client_response(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
        await writer.drain()

    with raw_backend(handler) as url, serve_app(gateway_for(tmp_path, url)) as gw:
        with httpx.stream("GET", gw, headers={"Host": "f.test"}) as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):  # incomplete, never "complete"
                r.read()
        # The abort stayed with that one response: the gateway goes on serving.
        assert httpx.get(gw, headers={"Host": "elsewhere.test"}).status_code == 404


def test_hanging_backend_gives_504_after_response_header_timeout(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)
        await asyncio.sleep(30)

    transport = """---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec: {forwardingTimeouts: {responseHeaderTimeout: 300ms}}
"""
    with (
        raw_backend(handler) as url,
        serve_app(gateway_for(tmp_path, url, ", serversTransport: st", transport)) as gw,
    ):
        started = time.monotonic()
        r = httpx.get(gw, headers={"Host": "f.test"}, timeout=10)
        elapsed = time.monotonic() - started
    assert (r.status_code, r.content) == (504, b"Gateway Timeout")
    assert 0.25 < elapsed < 3


@contextmanager
def unanswered_dial() -> Iterator[str]:
    """A URL whose TCP handshake never completes: a listener with a backlog of 0 whose
    one queue slot is taken and never accepted, so the kernel drops every further SYN
    and a dial hangs until the dialler gives up, as for a host behind a silent firewall."""
    with socket.socket() as listener, socket.socket() as squatter:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        squatter.connect(listener.getsockname())  # fills the accept queue
        with socket.socket() as probe:  # the premise: the next dial really hangs
            probe.settimeout(0.3)
            with pytest.raises(TimeoutError):
                probe.connect(listener.getsockname())
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_backend_not_answering_the_dial_gives_504_after_dial_timeout(tmp_path: Path) -> None:
    transport = """---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: st, namespace: default}
spec: {forwardingTimeouts: {dialTimeout: 500ms}}
"""
    with (
        unanswered_dial() as url,
        serve_app(gateway_for(tmp_path, url, ", serversTransport: st", transport)) as gw,
    ):
        started = time.monotonic()
        r = httpx.get(gw, headers={"Host": "f.test"}, timeout=10)
        elapsed = time.monotonic() - started
        # The gateway is not stuck behind the hanging dial.
        assert httpx.get(gw, headers={"Host": "elsewhere.test"}).status_code == 404
    assert (r.status_code, r.content) == (504, b"Gateway Timeout")
    assert 0.45 < elapsed < 3


FAILOVER = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`f.test`)
      services: [{name: fo, kind: TraefikService}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: fo, namespace: default}
spec:
  failover:
    service: {name: app, port: 80}
    fallback: {name: spare, port: 80}
    errors: {status: ["500-599"]}
"""


def test_failover_on_a_chunked_main_answer_sends_the_fallbacks_response_as_it_is(
    tmp_path: Path,
) -> None:
    """Traefik 3.7.15 commits a bare 200 when the main's answer in the ranges has no
    Content-Length (its early flush), losing the fallback's status and headers; here the
    fallback's response goes out whole (docs/differences.md)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
            b"X-From: main\r\n\r\n5\r\nsorry\r\n0\r\n\r\n"
        )
        await writer.drain()

    async def spare(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 6\r\nX-From: spare\r\n\r\nspare\n")
        await writer.drain()

    (tmp_path / "r.yaml").write_text(FAILOVER)
    with raw_backend(handler) as main_url, raw_backend(spare) as spare_url:
        app = create_app(
            tmp_path, backends={"default/app:80": main_url, "default/spare:80": spare_url}
        )
        with serve_app(app) as gw:
            r = httpx.get(gw, headers={"Host": "f.test"}, timeout=10)
    assert (r.status_code, r.headers.get("x-from"), r.content) == (201, "spare", b"spare\n")


def test_each_response_chunk_is_forwarded_as_it_arrives(tmp_path: Path) -> None:
    """Traefik flushes at most every 100 ms (`flushInterval`); here every chunk goes to
    the client at once: the backend sends its second chunk only after the client has
    read the first, which would deadlock (until the timeout) behind any buffering."""
    client_got_first = threading.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
        await writer.drain()
        seen = await asyncio.get_running_loop().run_in_executor(None, client_got_first.wait, 5)
        writer.write(b"7\r\nsecond\n\r\n0\r\n\r\n" if seen else b"0\r\n\r\n")
        await writer.drain()

    with (
        raw_backend(handler) as url,
        serve_app(gateway_for(tmp_path, url)) as gw,
        httpx.stream("GET", gw, headers={"Host": "f.test"}, timeout=10) as r,
    ):
        chunks = r.iter_raw()
        first = next(chunks)
        client_got_first.set()
        rest = b"".join(chunks)
    assert (first, rest) == (b"first\n", b"second\n")


def test_a_mirrored_body_streams_to_the_main_service_while_the_copy_is_kept(
    tmp_path: Path,
) -> None:
    """Traefik reads a mirrored request's body whole before the main service sees any of
    it; here it streams: the main service gets the first chunk while the client has not
    sent the second, and the mirror still gets the whole body afterwards."""
    main_got_first = threading.Event()
    copies: list[bytes] = []

    async def main(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)  # chunked: "6\r\nfirst\n\r\n" comes first
        await reader.readuntil(b"first\n\r\n")
        main_got_first.set()
        await reader.readuntil(b"0\r\n\r\n")
        writer.write(HELLO)
        await writer.drain()

    async def mirror(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_head(reader)
        copies.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(HELLO)
        await writer.drain()

    def body() -> Iterator[bytes]:
        yield b"first\n"
        # Sent only once the main service has the first chunk (or after 5 s, failing).
        yield b"second\n" if main_got_first.wait(5) else b"late\n"

    config = ROUTE.replace(
        "services: [{name: app, port: 80%s}]",
        "services: [{name: mirrored, kind: TraefikService}]",
    ) + (
        "---\napiVersion: traefik.io/v1alpha1\nkind: TraefikService\n"
        "metadata: {name: mirrored, namespace: default}\n"
        "spec: {mirroring: {name: app, port: 80, mirrors: [{name: copy, port: 80, "
        "percent: 100}]}}\n"
    )
    (tmp_path / "r.yaml").write_text(config)
    with raw_backend(main) as main_url, raw_backend(mirror) as mirror_url:
        app = create_app(
            tmp_path, backends={"default/app:80": main_url, "default/copy:80": mirror_url}
        )
        with serve_app(app) as gw:
            r = httpx.post(gw, content=body(), headers={"Host": "f.test"}, timeout=10)
            deadline = time.monotonic() + 5
            while not copies and time.monotonic() < deadline:
                time.sleep(0.01)  # the copy is sent after the answer
    assert r.status_code == 200
    assert main_got_first.is_set()
    assert copies and b"first\n" in copies[0] and b"second\n" in copies[0]
