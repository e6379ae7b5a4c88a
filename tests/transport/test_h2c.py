"""``h2c://`` servers: HTTP/2 cleartext with prior knowledge, against a real h2c server.

The backend (tests/support/h2c_backend.py) speaks HTTP/2 and HTTP/1.1 on one port and
records the HTTP version, the header block (pseudo-headers included), the body, and every
``RST_STREAM`` it gets. The leaf is driven with recording ``send`` callables, so streaming
and aborts are seen message by message; the rest runs the whole gateway under uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send
from websockets.sync.client import connect

from tests.support.backends import RecordedRequest
from tests.support.gateway import serve_app
from tests.support.h2c_backend import PREFACE, H2CRecordingBackend, Reply
from tests.support.wait import until
from traefikservice_asgi import ConfigError, create_app, load_config_text
from traefikservice_asgi.config import HealthCheck, ServersService, ServersTransport
from traefikservice_asgi.config.models import Origin
from traefikservice_asgi.entrypoint.context import FORWARD_KEY as SCOPE_KEY
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.healthcheck import ServerHealthChecker
from traefikservice_asgi.proxy import Server, UpstreamAborted
from traefikservice_asgi.transport import ClientHolder, H2CTransport, UpstreamRequest

PROTOCOL_ERROR, INTERNAL_ERROR, REFUSED_STREAM, CANCEL = 0x1, 0x2, 0x7, 0x8
ORIGIN = Origin("t.yaml", 1, "test", "spec")


@pytest.fixture
def backend() -> Iterator[H2CRecordingBackend]:
    with H2CRecordingBackend("grpc") as server:
        yield server


def scope_for(
    method: str = "GET",
    headers: Sequence[tuple[bytes, bytes]] = (),
    raw_path: bytes = b"/a%20b",
    query: bytes = b"",
) -> Scope:
    scope: Scope = {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": "/a b",
        "raw_path": raw_path,
        "query_string": query,
        "headers": [(b"host", b"app.test"), *headers],
        "client": ("10.1.2.3", 5555),
    }
    scope[SCOPE_KEY] = prepare(scope)
    return scope


def receiver(chunks: Sequence[bytes] = (b"",)) -> Receive:
    queue = list(chunks)

    async def receive() -> Message:
        if not queue:
            await asyncio.sleep(30)  # a client that stays: only the response ends the call
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    return receive


async def call(
    server: Server, scope: Scope, chunks: Sequence[bytes] = (b"",), send: Send | None = None
) -> list[Message]:
    sent: list[Message] = []

    async def record(message: Message) -> None:
        sent.append(message)
        if send is not None:
            await send(message)

    await server(scope, receiver(chunks), record)
    return sent


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent[1:])


def h2c_server(backend: H2CRecordingBackend, holder: ClientHolder, **options: bool) -> Server:
    return Server(f"h2c://127.0.0.1:{backend.port}", holder, **options)


def run(
    main: Callable[[ClientHolder], Awaitable[None]], holder: ClientHolder | None = None
) -> None:
    """Run ``main`` on a fresh loop with a holder closed at the end, as the lifespan does."""
    owner = holder or ClientHolder()

    async def go() -> None:
        try:
            await main(owner)
        finally:
            await owner.aclose()

    asyncio.run(go())


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        yield sock.getsockname()[1]


# -- on the wire ------------------------------------------------------------------------


def test_the_connection_opens_with_the_http2_preface_without_an_upgrade_round_trip() -> None:
    first: list[bytes] = []

    async def main() -> None:
        got = asyncio.Event()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            first.append(await reader.read(4096))
            got.set()
            writer.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = H2CTransport()
        request = transport.forward(
            UpstreamRequest(
                b"GET", (b"http", b"127.0.0.1", port), b"x.test", b"/", [], httpx.ByteStream(b""), {},
                has_body=False,
            )
        )  # fmt: skip
        with pytest.raises(httpx.TransportError):  # the server hung up on us
            await asyncio.wait_for(request, 5)
        await asyncio.wait_for(got.wait(), 5)
        await transport.aclose()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    # The client preface, then our SETTINGS and the HEADERS: no HTTP/1.1 request line.
    assert first[0].startswith(PREFACE)
    assert b"HTTP/1.1" not in first[0] and b"pgrade" not in first[0]


def test_request_reaches_the_h2c_server_with_gos_header_block(
    backend: H2CRecordingBackend,
) -> None:
    sent: list[Message] = []

    async def main(holder: ClientHolder) -> None:
        headers = [
            (b"cookie", b"a=1;b=2;  c=3"),
            (b"te", b"trailers"),
            (b"connection", b"keep-alive, X-Drop"),
            (b"x-drop", b"1"),
            (b"x-keep", b"2"),
        ]
        sent.extend(await call(h2c_server(backend, holder), scope_for(headers=headers)))

    run(main)
    assert (sent[0]["status"], body_of(sent)) == (200, b"Hello grpc\n")
    (request,) = backend.requests
    assert request.http_version == "HTTP/2.0"
    assert request.headers[:4] == (
        (":authority", "app.test"),
        (":method", "GET"),
        (":path", "/a%20b"),
        (":scheme", "http"),
    )
    names = [k for k, _ in request.headers]
    assert request.header_values("cookie") == ["a=1", "b=2", "c=3"]  # one field per pair
    assert request.header("te") == "trailers" and request.header("x-keep") == "2"
    assert not {"host", "connection", "x-drop", "transfer-encoding"} & set(names)
    assert request.header("x-forwarded-for") == "10.1.2.3"
    assert request.header("accept-encoding") == "gzip"  # added, as Go's transport does


def test_pass_host_header_false_sends_the_server_address_as_authority(
    backend: H2CRecordingBackend,
) -> None:
    async def main(holder: ClientHolder) -> None:
        await call(h2c_server(backend, holder, pass_host_header=False), scope_for())

    run(main)
    assert backend.requests[0].header(":authority") == f"127.0.0.1:{backend.port}"


def test_bodies_with_and_without_a_length_get_gos_framing(backend: H2CRecordingBackend) -> None:
    async def main(holder: ClientHolder) -> None:
        server = h2c_server(backend, holder)
        length = [(b"content-length", b"6")]
        await call(server, scope_for("POST", length), [b"abc", b"def"])
        await call(server, scope_for("POST", [(b"transfer-encoding", b"chunked")]), [b"x", b"y"])
        await call(server, scope_for("POST", [(b"content-length", b"0")]))

    run(main)
    fixed, chunked, empty = backend.requests
    assert (fixed.body, fixed.header("content-length")) == (b"abcdef", "6")
    assert (chunked.body, chunked.header("content-length")) == (b"xy", None)
    assert (empty.body, empty.header("content-length")) == (b"", "0")


def test_large_bodies_stream_both_ways_past_the_flow_control_windows() -> None:
    upload = [bytes([n]) * 300_000 for n in range(10)]  # 3 MB, the server's window is 64 KiB
    answer = b"z" * 3_000_000  # three times our stream window
    sent: list[Message] = []
    with H2CRecordingBackend("big", body=answer) as backend:

        async def main(holder: ClientHolder) -> None:
            scope = scope_for("POST", [(b"transfer-encoding", b"chunked")])
            sent.extend(await call(h2c_server(backend, holder), scope, upload))

        run(main)
        assert backend.requests[0].body == b"".join(upload)
    assert body_of(sent) == answer
    assert len(sent) > 3  # relayed as it came, not as one buffered message


def test_the_response_streams_to_the_client_before_the_server_finishes() -> None:
    client_has_first = threading.Event()

    async def two_parts(request: RecordedRequest, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/plain")])
        await reply.send(b"first ")
        # The second part only comes once the client holds the first.
        assert await asyncio.to_thread(client_has_first.wait, 10)
        await reply.send(b"second", end=True)

    async def send(message: Message) -> None:
        if message.get("body") == b"first ":
            client_has_first.set()

    sent: list[Message] = []
    with H2CRecordingBackend("stream", responder=two_parts) as backend:

        async def main(holder: ClientHolder) -> None:
            sent.extend(await call(h2c_server(backend, holder), scope_for(), send=send))

        run(main)
    assert [m.get("body") for m in sent[1:]] == [b"first ", b"second", b""]


# -- connections ------------------------------------------------------------------------


def test_concurrent_requests_are_streams_of_one_connection(backend: H2CRecordingBackend) -> None:
    statuses: list[int] = []

    async def main(holder: ClientHolder) -> None:
        server = h2c_server(backend, holder)
        results = await asyncio.gather(*(call(server, scope_for()) for _ in range(20)))
        statuses.extend(sent[0]["status"] for sent in results)
        assert holder.h2c.connections() == 1

    backend.delay = 0.2  # all twenty are in flight together
    run(main)
    assert statuses == [200] * 20
    assert (backend.h2_connections, backend.count) == (1, 20)


def test_a_connection_at_the_servers_stream_limit_makes_another() -> None:
    statuses: list[int] = []
    with H2CRecordingBackend("one-at-a-time", max_concurrent_streams=1, delay=0.2) as backend:

        async def main(holder: ClientHolder) -> None:
            server = h2c_server(backend, holder)
            await call(server, scope_for())  # learns the server's SETTINGS
            results = await asyncio.gather(*(call(server, scope_for()) for _ in range(3)))
            statuses.extend(sent[0]["status"] for sent in results)

        run(main)
        assert backend.h2_connections == 3  # the first one, and one more per waiting request
    assert statuses == [200] * 3


def test_a_burst_beyond_the_stream_limit_opens_only_the_connections_it_needs() -> None:
    statuses: list[int] = []
    with H2CRecordingBackend("busy", delay=0.3) as backend:  # 100 streams per connection

        async def main(holder: ClientHolder) -> None:
            server = h2c_server(backend, holder)
            results = await asyncio.gather(*(call(server, scope_for()) for _ in range(250)))
            statuses.extend(sent[0]["status"] for sent in results)

        run(main)
        assert backend.h2_connections == 3  # not one per request left without room
    assert statuses == [200] * 250


def test_idle_connections_close_after_idle_conn_timeout(backend: H2CRecordingBackend) -> None:
    transport = ServersTransport("default", "st", ORIGIN, idle_conn_timeout=0.2)

    async def main(holder: ClientHolder) -> None:
        await call(h2c_server(backend, holder), scope_for())
        assert holder.h2c.connections() == 1
        await asyncio.sleep(0.5)
        assert holder.h2c.connections() == 0

    run(main, ClientHolder(transport=transport))


def test_shutdown_closes_the_h2c_connections(backend: H2CRecordingBackend) -> None:
    async def main() -> None:
        holder = ClientHolder()
        await call(h2c_server(backend, holder), scope_for())
        h2c = holder.h2c
        assert h2c.connections() == 1
        await holder.aclose()
        assert h2c.closed and h2c.connections() == 0

    asyncio.run(main())


# -- failures ---------------------------------------------------------------------------


def test_a_client_that_leaves_resets_the_stream_and_the_connection_goes_on() -> None:
    release = threading.Event()

    async def endless(request: RecordedRequest, reply: Reply) -> None:
        if request.path == "/next":
            await reply.start(200, end=True)
            return
        await reply.start(200)
        await reply.send(b"tick")
        await asyncio.to_thread(release.wait, 10)

    try:
        with H2CRecordingBackend("endless", responder=endless) as backend:

            async def main(holder: ClientHolder) -> None:
                server = h2c_server(backend, holder)
                started = asyncio.Event()

                async def send(message: Message) -> None:
                    if message.get("body") == b"tick":
                        started.set()

                task = asyncio.get_running_loop().create_task(call(server, scope_for(), send=send))
                await asyncio.wait_for(started.wait(), 5)
                task.cancel()  # what the lifecycle watcher does when the client leaves
                with pytest.raises(asyncio.CancelledError):
                    await task
                await asyncio.to_thread(until, lambda: bool(backend.resets), "the stream reset")
                sent = await call(server, scope_for(raw_path=b"/next"))
                assert sent[0]["status"] == 200

            run(main)
            assert [code for _, code in backend.resets] == [CANCEL]
            assert backend.h2_connections == 1
    finally:
        release.set()


def test_a_client_that_leaves_mid_upload_gets_nothing_and_the_stream_is_reset(
    backend: H2CRecordingBackend,
) -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"half", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    sent: list[Message] = []

    async def main(holder: ClientHolder) -> None:
        scope = scope_for("POST", [(b"content-length", b"8")])
        await h2c_server(backend, holder)(scope, receive, _append_to(sent))

    run(main)
    assert sent == []  # nobody to answer
    until(lambda: backend.count == 1)
    (request,) = backend.requests
    assert (request.body, request.complete) == (b"half", False)
    assert [code for _, code in backend.resets] == [CANCEL]


def test_response_header_timeout_is_504_and_resets_the_stream() -> None:
    transport = ServersTransport("default", "st", ORIGIN, response_header_timeout=0.2)
    sent: list[Message] = []
    with H2CRecordingBackend("slow", delay=2.0) as backend:

        async def main(holder: ClientHolder) -> None:
            sent.extend(await call(h2c_server(backend, holder), scope_for()))

        run(main, ClientHolder(transport=transport))
        until(lambda: bool(backend.resets))
        assert [code for _, code in backend.resets] == [CANCEL]
    assert (sent[0]["status"], body_of(sent)) == (504, b"Gateway Timeout")


def test_a_refused_connection_is_502() -> None:
    sent: list[Message] = []
    with refusing_port() as port:

        async def main(holder: ClientHolder) -> None:
            server = Server(f"h2c://127.0.0.1:{port}", holder)
            sent.extend(await call(server, scope_for()))

        run(main)
    assert (sent[0]["status"], body_of(sent)) == (502, b"Bad Gateway")


def test_a_reset_before_the_headers_is_502_and_one_mid_body_aborts_the_response() -> None:
    async def reset(request: RecordedRequest, reply: Reply) -> None:
        if request.path == "/mid":
            await reply.start(200, [("content-length", "100")])
            await reply.send(b"partial")
        await reply.reset(INTERNAL_ERROR)

    before: list[Message] = []
    mid: list[Message] = []
    with H2CRecordingBackend("resetting", responder=reset) as backend:

        async def main(holder: ClientHolder) -> None:
            server = h2c_server(backend, holder)
            before.extend(await call(server, scope_for()))
            with pytest.raises(UpstreamAborted, match="failed mid-response"):
                await server(scope_for(raw_path=b"/mid"), receiver(), _append_to(mid))

        run(main)
    assert (before[0]["status"], body_of(before)) == (502, b"Bad Gateway")
    assert mid[0]["status"] == 200
    assert all(m.get("more_body", True) for m in mid[1:])  # never a final, complete message


def test_a_malformed_head_is_500_and_resets_only_its_stream_of_a_shared_connection() -> None:
    """Measured on Traefik 3.7.15 (tests/conformance/test_h2c.py for each kind): Go's
    client resets the stream with PROTOCOL_ERROR, Traefik answers 500, and the streams
    beside it on the same connection, waiting for their head or mid-body, go on."""

    async def answer(request: RecordedRequest, reply: Reply) -> None:
        if request.path == "/bad":
            await reply.start_raw([(b":status", b"200"), (b"X-Upper", b"1")])
            await asyncio.sleep(0.3)  # still open: the reset reaches the server
            await reply.send(b"never relayed", end=True)
        elif request.path == "/slow-head":
            await asyncio.sleep(0.5)
            await reply.start(200)
            await reply.send(b"head after", end=True)
        else:
            await reply.start(200)
            await reply.send(b"first ")
            await asyncio.sleep(0.5)
            await reply.send(b"second", end=True)

    with H2CRecordingBackend("malformed", responder=answer) as backend:

        async def main(holder: ClientHolder) -> None:
            server = h2c_server(backend, holder)
            slow_head = asyncio.create_task(call(server, scope_for(raw_path=b"/slow-head")))
            mid_body = asyncio.create_task(call(server, scope_for(raw_path=b"/mid-body")))
            await asyncio.sleep(0.1)
            bad = await call(server, scope_for(raw_path=b"/bad"))
            assert (bad[0]["status"], body_of(bad)) == (500, b"Internal Server Error")
            for task, body in ((slow_head, b"head after"), (mid_body, b"first second")):
                sent = await task
                assert (sent[0]["status"], body_of(sent)) == (200, body)
            after = await call(server, scope_for(raw_path=b"/after"))
            assert after[0]["status"] == 200

        run(main)
        assert [code for _, code in backend.resets] == [PROTOCOL_ERROR]
        assert backend.h2_connections == 1


def test_malformed_trailers_abort_only_their_response() -> None:
    """Traefik 3.7.15: an upper-case name in trailers is a stream error in Go, so the
    response, already started, is cut short; the concurrent stream is untouched."""

    async def answer(request: RecordedRequest, reply: Reply) -> None:
        await reply.start(200)
        await reply.send(b"part ")
        await asyncio.sleep(0.2 if request.path == "/bad" else 0.5)
        if request.path == "/bad":
            await reply.start_raw([(b"X-Trailer", b"1")], end=True)
        else:
            await reply.send(b"whole", end=True)

    with H2CRecordingBackend("trailers", responder=answer) as backend:

        async def main(holder: ClientHolder) -> None:
            server = h2c_server(backend, holder)
            good = asyncio.create_task(call(server, scope_for(raw_path=b"/good")))
            bad: list[Message] = []
            with pytest.raises(UpstreamAborted, match="invalid header field name"):
                await server(scope_for(raw_path=b"/bad"), receiver(), _append_to(bad))
            assert bad[0]["status"] == 200
            assert all(m.get("more_body", True) for m in bad[1:])  # never complete
            sent = await good
            assert (sent[0]["status"], body_of(sent)) == (200, b"part whole")

        run(main)
        assert backend.h2_connections == 1


def test_a_pseudo_header_in_trailers_ends_the_whole_connection_as_in_go() -> None:
    """Go's processTrailers makes it a connection error (GOAWAY PROTOCOL_ERROR): in
    Traefik 3.7.15 the stream waiting for its head on that connection gets 500 and a
    response mid-body is aborted; the next request opens a new connection."""

    async def answer(request: RecordedRequest, reply: Reply) -> None:
        if request.path == "/waiting":
            await asyncio.sleep(0.5)
            await reply.start(200, end=True)
            return
        await reply.start(200)
        await reply.send(b"part ")
        await asyncio.sleep(0.2)
        if request.path == "/bad":
            await reply.start_raw([(b":status", b"200")], end=True)
        elif request.path != "/after":
            await asyncio.sleep(0.3)
        await reply.send(b"end", end=True)

    with H2CRecordingBackend("trailers", responder=answer) as backend:

        async def main(holder: ClientHolder) -> None:
            server = h2c_server(backend, holder)
            waiting = asyncio.create_task(call(server, scope_for(raw_path=b"/waiting")))
            streaming: list[Message] = []
            mid_body = asyncio.create_task(
                server(scope_for(raw_path=b"/mid-body"), receiver(), _append_to(streaming))
            )
            await asyncio.sleep(0.05)
            with pytest.raises(UpstreamAborted, match="pseudo-header in trailers"):
                await server(scope_for(raw_path=b"/bad"), receiver(), _append_to([]))
            sent = await waiting
            assert (sent[0]["status"], body_of(sent)) == (500, b"Internal Server Error")
            with pytest.raises(UpstreamAborted):
                await mid_body
            after = await call(server, scope_for(raw_path=b"/after"))
            assert (after[0]["status"], body_of(after)) == (200, b"part end")

        run(main)
        assert backend.h2_connections == 2


def test_a_refused_stream_is_retried_once_when_the_request_has_no_body() -> None:
    refused: set[str] = set()

    async def refuse_once(request: RecordedRequest, reply: Reply) -> None:
        if request.path not in refused:
            refused.add(request.path)
            await reply.reset(REFUSED_STREAM)
            return
        await reply.start(200, end=True)

    results: list[int] = []
    with H2CRecordingBackend("refusing", responder=refuse_once) as backend:

        async def main(holder: ClientHolder) -> None:
            server = h2c_server(backend, holder)
            for method, length in (("GET", None), ("POST", b"4")):
                headers = [(b"content-length", length)] if length else []
                sent = await call(
                    server, scope_for(method, headers, raw_path=b"/" + method.encode()), [b"body"]
                )
                results.append(sent[0]["status"])

        run(main)
        assert [r.method for r in backend.requests] == ["GET", "GET", "POST"]
    assert results == [200, 502]  # a body may have been read: never sent twice


# -- protocol choice --------------------------------------------------------------------


def test_a_request_asking_for_an_upgrade_goes_to_the_h2c_server_over_http11(
    backend: H2CRecordingBackend,
) -> None:
    headers = [(b"connection", b"Upgrade"), (b"upgrade", b"foo")]

    async def main(holder: ClientHolder) -> None:
        sent = await call(h2c_server(backend, holder), scope_for(headers=headers))
        assert sent[0]["status"] == 200

    run(main)
    (request,) = backend.requests
    assert request.http_version == "HTTP/1.1"
    assert (backend.h2_connections, backend.http1_connections) == (0, 1)


class _WebSocketEcho:
    """An HTTP/1.1 WebSocket server: it answers with the HTTP version it was reached in."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            info = {"echo": message.get("text"), "http_version": scope["http_version"]}
            await send({"type": "websocket.send", "text": json.dumps(info)})


H2C_ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: h2c, namespace: default}
spec:
  routes:
    - match: Host(`h2c.test`)
      services: [{name: grpc, port: 80, scheme: h2c}]
"""


def test_a_websocket_to_an_h2c_server_is_an_http11_upgrade_as_in_traefik() -> None:
    with serve_app(_WebSocketEcho()) as backend_url:
        config = load_config_text(H2C_ROUTE, backends={"default/grpc:80": backend_url})
        service = config.routes[0].service
        assert isinstance(service, ServersService) and service.servers[0].startswith("h2c://")
        with serve_app(create_app(config)) as gateway_url:
            port = gateway_url.rsplit(":", 1)[1]
            sock = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
            with connect("ws://h2c.test/", sock=sock, open_timeout=10) as client:
                client.send("hello")
                answer = json.loads(client.recv(timeout=10))
    assert answer == {"echo": "hello", "http_version": "1.1"}


# -- through the whole gateway ----------------------------------------------------------

FAILOVER = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: h2c, namespace: default}
spec:
  routes:
    - match: Host(`failover.test`)
      services: [{name: fo, kind: TraefikService}]
    - match: Host(`mirror.test`)
      services: [{name: mirror, kind: TraefikService}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: fo, namespace: default}
spec:
  failover:
    service: {name: down, port: 80, scheme: h2c}
    fallback: {name: up, port: 80, scheme: h2c}
    errors: {status: ["500-599"]}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: mirror, namespace: default}
spec:
  mirroring:
    name: up
    port: 80
    scheme: h2c
    mirrors: [{name: copy, port: 80, scheme: h2c, percent: 100}]
"""


def test_failover_and_mirroring_send_the_body_to_h2c_servers_over_http2() -> None:
    with (
        H2CRecordingBackend("down", status=503) as down,
        H2CRecordingBackend("up") as up,
        H2CRecordingBackend("copy") as copy,
    ):
        backends = {
            "default/down:80": down.url,
            "default/up:80": up.url,
            "default/copy:80": copy.url,
        }
        with serve_app(create_app(load_config_text(FAILOVER, backends=backends))) as url:
            with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
                failed_over = client.post("/", headers={"Host": "failover.test"}, content=b"once")
                mirrored = client.post("/", headers={"Host": "mirror.test"}, content=b"twice")
            copy.wait_for_requests(1)
        assert (failed_over.status_code, failed_over.text) == (200, "Hello up\n")
        assert mirrored.status_code == 200
        assert [r.body for r in down.requests] == [b"once"]
        assert [r.body for r in up.requests] == [b"once", b"twice"]
        assert [(r.http_version, r.body) for r in copy.requests] == [("HTTP/2.0", b"twice")]


def test_a_health_check_with_scheme_h2c_probes_over_http2(backend: H2CRecordingBackend) -> None:
    class Balancer:
        def set_status(self, child: str, up: bool) -> None:
            pass

    reasons: list[str | None] = []
    check = HealthCheck(ORIGIN, path="/health", scheme="h2c")

    async def main(holder: ClientHolder) -> None:
        checker = ServerHealthChecker("s", check, Balancer(), [], holder)
        assert checker.probe_url(backend.url) == f"h2c://127.0.0.1:{backend.port}/health"
        reasons.append(await checker.check(backend.url))

    run(main)
    assert reasons == [None]
    (probe,) = backend.requests
    assert (probe.http_version, probe.path) == ("HTTP/2.0", "/health")


# -- configuration ----------------------------------------------------------------------

SERVICE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`a.test`)
      services: [{name: grpc, port: 80, scheme: %s%s}]
"""


def test_scheme_h2c_makes_every_server_url_h2c() -> None:
    def servers(backends: dict[str, str] | None) -> tuple[str, ...]:
        (route,) = load_config_text(SERVICE % ("h2c", ""), backends=backends).routes
        assert isinstance(route.service, ServersService)
        return route.service.servers

    assert servers(None) == ("h2c://grpc.default.svc:80",)  # the in-cluster name
    assert servers({"default/grpc:80": "http://10.0.0.7:8080"}) == ("h2c://10.0.0.7:8080",)
    assert servers({"default/grpc:80": "h2c://10.0.0.7:8080"}) == ("h2c://10.0.0.7:8080",)


def test_an_unknown_scheme_is_refused_with_its_field_path() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(SERVICE % ("h3", ""), filename="r.yaml")
    assert [str(issue) for issue in info.value.issues] == [
        "r.yaml:7: IngressRoute default/r: spec.routes[0].services[0].scheme: "
        'must be http, https or h2c, got "h3"'
    ]


def test_h2c_through_a_transport_with_disable_http2_is_refused() -> None:
    text = SERVICE % ("h2c", ", serversTransport: h1") + (
        "---\napiVersion: traefik.io/v1alpha1\nkind: ServersTransport\n"
        "metadata: {name: h1, namespace: default}\nspec: {disableHTTP2: true}\n"
    )
    with pytest.raises(
        ConfigError, match=r"disableHTTP2: true \(Traefik answers every request 500\)"
    ):
        load_config_text(text)
    load_config_text(text.replace("disableHTTP2: true", "disableHTTP2: false"))


def _append_to(messages: list[Message]) -> Send:
    async def send(message: Message) -> None:
        messages.append(message)

    return send
