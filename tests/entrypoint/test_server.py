"""``serve``'s client side, with raw sockets against the real CLI: the head limit, the
responding timeouts, token methods, trailers and HTTP/1.0 bodies, as Traefik 3.7.15's
entry point answers them (measured with the binary; the expected bytes below are its)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from tests.support.backends import RecordingBackend
from tests.support.gateway import StartedServer, serve_cli
from tests.support.loops import TimerRecordingLoop
from traefikservice_asgi.entrypoint.server import (
    EntryPointConfig,
    EntryPointProtocol,
    RespondingTimeouts,
)
from traefikservice_asgi.responses import status_line

CONFIG = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web, namespace: default}
spec:
  routes:
    - match: Host(`chunked.test`)
      services: [{name: chunked, port: 80}]
    - match: PathPrefix(`/`)
      services: [{name: app, port: 80}]
"""
TOO_LARGE = (  # Traefik's answer, byte for byte
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n"
    b"431 Request Header Fields Too Large"
)
HEAD_ALLOWANCE = 4110  # Traefik serves a head of maxHeaderBytes + 4110 bytes, not one more
WAIT = 10.0  # upper bound of any read; never a sleep to assert on


class Gateway:
    def __init__(self, url: str, app: RecordingBackend) -> None:
        self.port = int(url.rsplit(":", 1)[1])
        self.url = url
        self.app = app

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (bounded by ``WAIT``)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What the server sent up to ``marker``; an AssertionError if it closed before."""
    out = b""
    while marker not in out:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}: {out!r}"
        out += chunk
    return out


def chunked_backend() -> tuple[socket.socket, str]:
    """A backend that answers every request ``hello`` with Transfer-Encoding: chunked."""
    server = socket.create_server(("127.0.0.1", 0))

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(1 << 20)):
                data += chunk
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            )

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("server") / "routes.yaml"
    path.write_text(CONFIG)
    return path


def _serve(config_dir: Path, *args: str) -> Iterator[Gateway]:
    server, chunked_url = chunked_backend()
    try:
        with RecordingBackend("app") as app:
            backends = {"default/app:80": app.url, "default/chunked:80": chunked_url}
            with serve_cli([str(config_dir)], backends, *args) as url:
                yield Gateway(url, app)
    finally:
        server.close()


@pytest.fixture(scope="module")
def gateway(config_dir: Path) -> Iterator[Gateway]:
    """serve with its defaults."""
    yield from _serve(config_dir)


@pytest.fixture(scope="module")
def strict(config_dir: Path) -> Iterator[Gateway]:
    """serve with small limits: 1000 header bytes, 0.5 s to read, 1 s idle."""
    yield from _serve(
        config_dir, "--max-header-bytes", "1000", "--read-timeout", "500ms", "--idle-timeout", "1"
    )


def head_of(size: int) -> bytes:
    """A GET whose request line and headers, blank line included, are ``size`` bytes, for
    the backend without a head limit of its own."""
    start = b"GET / HTTP/1.1\r\nHost: chunked.test\r\nConnection: close\r\n"
    filler = size - len(start) - len(b"X-Fill: \r\n\r\n")
    return start + b"X-Fill: " + b"f" * filler + b"\r\n\r\n"


# -- 4: the request head is bounded --------------------------------------------------------


def test_a_head_one_byte_over_the_limit_is_answered_431_and_closed(gateway: Gateway) -> None:
    limit = (1 << 20) + HEAD_ALLOWANCE  # Traefik: 1052686 bytes served, 1052687 refused
    with gateway.connect() as sock:
        sock.sendall(head_of(limit))
        assert read_all(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    with gateway.connect() as sock:
        sock.sendall(head_of(limit + 1))
        assert read_all(sock) == TOO_LARGE


def test_max_header_bytes_sets_the_limit(strict: Gateway) -> None:
    with strict.connect() as sock:
        sock.sendall(head_of(1000 + HEAD_ALLOWANCE))
        assert read_all(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    with strict.connect() as sock:
        sock.sendall(head_of(1001 + HEAD_ALLOWANCE))
        assert read_all(sock) == TOO_LARGE


def test_a_header_flood_is_cut_at_the_limit_while_other_clients_are_served(
    gateway: Gateway,
) -> None:
    sent = 0
    answer: list[bytes] = []

    def flood() -> None:
        nonlocal sent
        with gateway.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            line = b"X-Flood: " + b"a" * 1000 + b"\r\n"
            try:
                while sent < 200 * (1 << 20):
                    sock.sendall(line)
                    sent += len(line)
            except OSError:  # the server closed: what it said is still readable
                pass
            try:
                answer.append(read_all(sock))
            except OSError:
                answer.append(b"<reset>")

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    with httpx.Client(base_url=gateway.url, timeout=WAIT) as client:
        while flooder.is_alive() and sent < 64 * 1024:
            time.sleep(0.01)
        statuses = [client.get("/other").status_code for _ in range(20)]
    flooder.join(WAIT)
    assert statuses == [200] * 20
    assert not flooder.is_alive()
    assert sent < 8 * (1 << 20)  # refused near 1 MiB, not 200 MiB later
    assert answer in ([TOO_LARGE], [b"<reset>"], [b""])


# -- 5: respondingTimeouts -----------------------------------------------------------------


def closed_after(sock: socket.socket, pieces: list[bytes], pause: float) -> tuple[bytes, float]:
    """Send ``pieces`` a ``pause`` apart until the server closes; what it sent, and when."""
    start = time.monotonic()
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError:
            break
        time.sleep(pause)
    try:
        return read_all(sock), time.monotonic() - start
    except ConnectionResetError:
        return b"<reset>", time.monotonic() - start


def test_an_idle_connection_is_closed_at_the_read_timeout(strict: Gateway) -> None:
    with strict.connect() as sock:
        start = time.monotonic()
        assert read_all(sock) == b""
        assert 0.4 < time.monotonic() - start < 5


def test_a_slowloris_head_is_closed_at_the_read_timeout_without_an_answer(
    strict: Gateway,
) -> None:
    lines = [b"GET / HTTP/1.1\r\n", b"Host: x\r\n"] + [b"X-Slow: 1\r\n"] * 40
    with strict.connect() as sock:
        said, after = closed_after(sock, lines, 0.1)
    assert said in (b"", b"<reset>")
    assert 0.4 < after < 5


def test_a_slow_body_is_answered_499_at_the_read_timeout(strict: Gateway) -> None:
    pieces = [b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n"] + [b"a"] * 40
    with strict.connect() as sock:
        said, after = closed_after(sock, pieces, 0.1)
    head, _, body = said.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 499 status code 499\r\n")
    assert b"Content-Length: 21\r\nConnection: close" in head
    assert body == b"Client Closed Request"
    assert 0.4 < after < 5


def test_a_keep_alive_connection_is_closed_at_the_idle_timeout(strict: Gateway) -> None:
    with strict.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        said = read_all(sock)
        assert said.startswith(b"HTTP/1.1 200 OK\r\n")
        assert 0.8 < time.monotonic() - start < 6


def test_requests_within_the_timeouts_keep_their_connection(strict: Gateway) -> None:
    with strict.connect() as sock:
        for _ in range(3):  # 3 x 0.3 s: longer than the read timeout, each request shorter
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            read_until(sock, b"Hello app")
            time.sleep(0.3)


# -- 9: every token method -----------------------------------------------------------------


@pytest.mark.parametrize("method", [b"BAN", b"get", b"X_CUSTOM", b"PURGE"])
def test_extension_and_lower_case_methods_are_forwarded_as_sent(
    gateway: Gateway, method: bytes
) -> None:
    gateway.app.clear()
    with gateway.connect() as sock:
        sock.sendall(method + b" /purge HTTP/1.1\r\nHost: x\r\n\r\n")
        said = read_until(sock, b"Hello app")
        assert said.startswith(b"HTTP/1.1 200 OK\r\n")
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 200 OK\r\n")  # the connection goes on
    recorded = gateway.app.wait_for_requests(2)
    assert [(r.method, r.path) for r in recorded] == [(method.decode(), "/purge"), ("GET", "/next")]


# -- 12 and 13: trailers, HTTP/1.0 ---------------------------------------------------------


def test_request_trailers_never_reach_the_backend(gateway: Gateway) -> None:
    gateway.app.clear()
    with gateway.connect() as sock:
        sock.sendall(
            b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n"
            b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\nX-T: yes\r\n\r\n"
        )
        assert read_all(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    (recorded,) = gateway.app.wait_for_requests(1)
    assert recorded.body == b"abc"
    assert recorded.header("x-t") is None


def test_an_http_1_0_client_gets_a_close_delimited_body(gateway: Gateway) -> None:
    with gateway.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: chunked.test\r\n\r\n")
        head, _, body = read_all(sock).partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"content-length" not in head.lower()
    assert body == b"hello"


# -- the deadlines cost no timer per request -------------------------------------------------


@contextlib.asynccontextmanager
async def in_process(
    config: uvicorn.Config,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``config``'s server on the running loop, and one client connection to it."""
    server = StartedServer(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    await asyncio.wait_for(server.ready.wait(), WAIT)
    reader, writer = await asyncio.open_connection(*sock.getsockname())
    try:
        yield reader, writer
    finally:
        writer.close()
        server.should_exit = True
        await asyncio.wait_for(serving, WAIT)


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"Hello app"})


def test_keep_alive_requests_schedule_no_timer_each() -> None:
    """The read, write and idle timeouts are deadlines watched by one timer per
    connection, re-armed only when it fires: 50 requests on one connection schedule
    one timer, not the three per request of a ``call_later`` per timeout."""
    requests = 50
    config = EntryPointConfig(
        hello,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        timeouts=RespondingTimeouts(read=60, write=30, idle=180),
    )

    async def main() -> int:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, TimerRecordingLoop)
        async with in_process(config) as (reader, writer):
            await loop.run_in_executor(None, lambda: None)  # settle startup's own timers
            before = len(loop.timers)
            for _ in range(requests):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await reader.readuntil(b"Hello app")
            return loop.scheduled_by(EntryPointProtocol, since=before)

    loop = TimerRecordingLoop()
    try:
        scheduled = loop.run_until_complete(main())
    finally:
        loop.close()
    assert scheduled <= 1


def test_answered_requests_leave_their_cycles_to_reference_counting() -> None:
    """The send bound to each exchange refers to its cycle, which refers to the send:
    the last message breaks that loop, so a finished exchange (HTTP/1.1 kept alive, or
    HTTP/1.0 ended by closing) is freed at once, never left for the cycle collector to
    find (its runs under load are latency: tests/test_reference_cycles.py)."""

    async def main() -> list[object]:
        async with in_process(counting_config(hello)) as (reader, writer):
            for _ in range(3):  # warm-up, outside the count
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await reader.readuntil(b"Hello app")
            gc.collect()
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(20):
                    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    await reader.readuntil(b"Hello app")
                port = writer.get_extra_info("peername")[1]
                for _ in range(3):
                    one, other = await asyncio.open_connection("127.0.0.1", port)
                    other.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                    assert (await asyncio.wait_for(one.read(), WAIT)).endswith(b"Hello app")
                    other.close()
                await asyncio.sleep(0.05)  # the held heads' flush callbacks have run
                gc.collect()
                return [o for o in gc.garbage if isinstance(o, RequestResponseCycle)]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()

    assert asyncio.run(main()) == []


# -- a small answer is one write ---------------------------------------------------------------


class WriteCountingProtocol(EntryPointProtocol):
    """The entry point's protocol on a transport that counts its writes."""

    writes: ClassVar[list[bytes]] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CountingTransport(transport))  # type: ignore[arg-type]


class CountingTransport:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WriteCountingProtocol.writes.append(bytes(data))
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def counting_config(app: Any) -> EntryPointConfig:
    config = EntryPointConfig(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    config.http = WriteCountingProtocol
    return config


def test_a_small_answer_is_written_once_with_its_head() -> None:
    """Head and body in one write (one system call), as Go's buffered writer sends
    them; uvicorn alone writes them apart."""

    async def main() -> list[bytes]:
        WriteCountingProtocol.writes.clear()
        async with in_process(counting_config(hello)) as (reader, writer):
            for _ in range(5):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await reader.readuntil(b"Hello app")
            return list(WriteCountingProtocol.writes)

    writes = asyncio.run(main())
    assert len(writes) == 5
    assert all(
        w.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n9\r\nHello app" in w for w in writes
    )


def test_a_head_whose_body_is_late_goes_out_alone_at_once() -> None:
    """A streamed answer's head is not held for its body: the client has it while the
    app still waits."""

    async def main() -> bytes:
        release = asyncio.Event()

        async def late(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 299, "headers": headers})
            await release.wait()
            await send({"type": "http.response.body", "body": b"data: 1\n\n"})

        async with in_process(counting_config(late)) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
            release.set()
            await asyncio.wait_for(reader.readuntil(b"data: 1"), WAIT)
            return head

    head = asyncio.run(main())
    assert head.startswith(b"HTTP/1.1 299 status code 299\r\n")  # Go's line, held or not


# -- the answer's head: uvicorn's bytes, Go's status line -------------------------------------

HEADS: list[tuple[str, int, list[tuple[bytes, bytes]]]] = [
    ("GET", 200, [(b"content-type", b"text/plain"), (b"content-length", b"9")]),
    ("GET", 200, [(b"Content-Length", b"9"), (b"X-Mixed-Case", b"a: b, c\td")]),
    ("GET", 200, []),  # no length: chunked
    ("GET", 200, [(b"transfer-encoding", b"Chunked")]),
    ("GET", 200, [(b"connection", b"keep-alive, Close"), (b"content-length", b"9")]),
    ("GET", 200, [(b"content-length", b"9"), (b"content-length", b"10")]),  # the first counts
    ("HEAD", 200, [(b"content-type", b"text/html")]),
    ("GET", 204, []),
    ("GET", 304, [(b"etag", b'"x"')]),
    ("GET", 418, [(b"content-length", b"9"), (b"vary", b"")]),
]


def heads_written(http: Any, method: str, status: int, headers: Any) -> bytes:
    """The head a server writes for one answer of ``hello``'s body with ``headers``, the
    Date line left out."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send(
                {
                    "type": "http.response.body",
                    "body": b"" if status in (204, 304) else b"Hello app",
                }
            )

    async def main() -> bytes:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", http=http
        )
        async with in_process(config) as (reader, writer):
            writer.write(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        return b"".join(
            line for line in head.splitlines(keepends=True) if not line.startswith(b"date:")
        )

    return asyncio.run(main())


@pytest.mark.parametrize(("method", "status", "headers"), HEADS)
def test_an_answer_head_is_uvicorns_bytes_with_gos_status_line(
    method: str, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    """The entry point serialises the head itself (one pass, one check of the whole
    block) and writes exactly what uvicorn's httptools protocol writes: the same header
    lines, the same framing headers added; only the status line is Go's."""
    ours = heads_written(EntryPointProtocol, method, status, headers)
    uvicorns = heads_written("httptools", method, status, headers)
    line = status_line(status)
    assert ours.startswith(line)
    assert ours[len(line) :] == uvicorns[uvicorns.index(b"\r\n") + 2 :]


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-ok", b"1"), (b"x-evil", b"1\r\nset-cookie: stolen=1")],
        [(b"x-evil\r\nset-cookie", b"stolen=1")],
        [(b"x evil", b"1")],
        [(b"", b"empty name")],
        [(b"x-nul", b"a\x00b")],
    ],
)
def test_a_malformed_answer_header_never_reaches_the_client(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """A header name or value that would break the head (a line break, a space in a
    name, a NUL) is refused as uvicorn refuses it: nothing of the head is written and the
    connection is closed, so no header can be smuggled into the answer."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"Hello app"})

    async def main() -> bytes:
        config = EntryPointConfig(
            app, host="127.0.0.1", port=0, lifespan="off", log_level="critical"
        )
        async with in_process(config) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            return await asyncio.wait_for(reader.read(), WAIT)

    assert asyncio.run(main()) == b""


class SetClock(StartedServer):
    """A server whose default headers are the test's: its once-a-second renewal puts
    back what the test set, so the test decides when the Date changes."""

    default_headers: ClassVar[list[tuple[bytes, bytes]]] = []

    async def on_tick(self, counter: int) -> bool:
        should_exit = await super().on_tick(counter)
        self.server_state.default_headers = self.default_headers
        return should_exit


def test_the_date_line_follows_the_servers_clock() -> None:
    """The default headers' lines are built once per list uvicorn renews each second:
    a renewed list is written, never the last one's cached line."""

    async def main() -> list[bytes]:
        config = EntryPointConfig(
            hello, host="127.0.0.1", port=0, lifespan="off", log_level="warning"
        )
        heads = []
        server = SetClock(config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            await asyncio.wait_for(server.ready.wait(), WAIT)
            reader, writer = await asyncio.open_connection(*sock.getsockname())
            for stamp in (b"Mon, 07 Dec 2026 10:00:00 GMT", b"Mon, 07 Dec 2026 10:00:01 GMT"):
                # a new list, as uvicorn renews it
                SetClock.default_headers = [(b"date", stamp)]
                server.server_state.default_headers = SetClock.default_headers
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                heads.append(await asyncio.wait_for(reader.readuntil(b"Hello app"), WAIT))
            writer.close()
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, WAIT)
        return heads

    first, second = asyncio.run(main())
    assert b"\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\n" in first
    assert b"\r\ndate: Mon, 07 Dec 2026 10:00:01 GMT\r\n" in second


# -- the request's scope: uvicorn's, with the absolute form's authority kept ------------------

REQUESTS = [
    b"GET /a%20b/%2Fc?x=1&y=%20 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Two: a \r\n\r\nhi",
    b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n",
    b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two?q HTTP/1.1\r\nHost: x\r\n\r\n",  # pipelined
    b"GET http://a.example:8080/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
]


def scopes_seen(http: Any, request: bytes, root_path: str = "") -> list[tuple[Any, ...]]:
    """What an app sees of each request ``request`` holds, under ``http``."""
    seen: list[tuple[Any, ...]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        keys = ("method", "http_version", "path", "raw_path", "query_string", "root_path")
        seen.append((*(scope[k] for k in keys), scope["headers"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"Hello app"})

    async def main() -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_level="warning",
            http=http,
            root_path=root_path,
        )
        async with in_process(config) as (reader, writer):
            writer.write(request)
            for _ in range(request.count(b" HTTP/1.")):
                await asyncio.wait_for(reader.readuntil(b"Hello app"), WAIT)

    asyncio.run(main())
    return seen


@pytest.mark.parametrize("request_bytes", REQUESTS)
@pytest.mark.parametrize("root_path", ["", "/mounted"])
def test_a_request_reaches_the_app_as_uvicorn_gives_it(
    request_bytes: bytes, root_path: str
) -> None:
    """The entry point builds the usual request's scope itself (uvicorn's callback
    inline): the same method, version, path, raw path, query, headers and body as
    uvicorn's httptools protocol gives, pipelined requests included; only an
    absolute-form target keeps its authority in ``raw_path``, for Go's routing."""
    ours = scopes_seen(EntryPointProtocol, request_bytes, root_path)
    uvicorns = scopes_seen("httptools", request_bytes, root_path)
    assert len(ours) == len(uvicorns) == request_bytes.count(b" HTTP/1.")
    if b" http://" in request_bytes:
        assert ours[0][3] == b"http://a.example:8080/abs"  # the whole target, no query
        ours = [(*s[:3], b"", *s[4:]) for s in ours]
        uvicorns = [(*s[:3], b"", *s[4:]) for s in uvicorns]
    assert ours == uvicorns
