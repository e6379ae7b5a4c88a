"""The forwarding leaf, against respx: request framing, response filtering, error mapping."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import itertools

import httpx
import pytest
import respx
from starlette.types import Message, Scope

from traefikservice_asgi.entrypoint.context import FORWARD_KEY as SCOPE_KEY
from traefikservice_asgi.entrypoint.context import NO_BACKEND_ANSWER, REQUEST_NOT_SENT
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.proxy import Server, UpstreamAborted
from traefikservice_asgi.proxy.http import INFLATE_PIECE
from traefikservice_asgi.transport import ClientHolder


def scope_for(
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
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
        "headers": [(b"host", b"app.test"), *(headers or [])],
        "client": ("10.1.2.3", 5555),
    }
    scope[SCOPE_KEY] = prepare(scope)
    return scope


def run(server: Server, scope: Scope, chunks: list[bytes] | None = None) -> list[Message]:
    sent: list[Message] = []
    queue = list(chunks or [b""])

    async def receive() -> Message:
        if not queue:
            return {"type": "http.disconnect"}
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    async def send(message: Message) -> None:
        sent.append(message)

    async def go() -> None:
        try:
            await server(scope, receive, send)
        finally:
            await server._holder.client.aclose()  # the "user's" client: closed by its owner

    asyncio.run(go())
    return sent


def server(url: str = "http://127.0.0.9:8080", **kwargs: bool) -> Server:
    # A client of the user's: it goes through client.send, where respx intercepts it.
    return Server(url, ClientHolder(httpx.AsyncClient()), **kwargs)


@respx.mock
def test_request_keeps_raw_path_client_host_and_no_library_headers() -> None:
    route = respx.get("http://127.0.0.9:8080/a%20b?x=1&y=2").respond(200, text="ok")
    sent = run(server(), scope_for(query=b"x=1;y=2"))
    request = route.calls.last.request
    assert request.headers["host"] == "app.test"
    assert "user-agent" not in request.headers  # no python-httpx User-Agent
    assert request.headers["accept-encoding"] == "gzip"
    assert "content-length" not in request.headers
    assert request.headers["x-forwarded-for"] == "10.1.2.3"
    assert sent[0]["status"] == 200


@respx.mock
def test_pass_host_header_false_sends_the_server_host() -> None:
    route = respx.get(url__startswith="http://127.0.0.9:8080/").respond(204)
    run(server(pass_host_header=False), scope_for())
    assert route.calls.last.request.headers["host"] == "127.0.0.9:8080"


@respx.mock
def test_post_without_body_sends_content_length_0_like_go() -> None:
    route = respx.post(url__startswith="http://127.0.0.9:8080/").respond(200)
    run(server(), scope_for("POST"))
    assert route.calls.last.request.headers["content-length"] == "0"


@respx.mock
def test_body_is_streamed_with_its_content_length() -> None:
    route = respx.put(url__startswith="http://127.0.0.9:8080/").respond(200)
    run(server(), scope_for("PUT", [(b"content-length", b"6")]), [b"abc", b"def"])
    request = route.calls.last.request
    assert request.headers["content-length"] == "6"
    assert "transfer-encoding" not in request.headers
    assert request.read() == b"abcdef"


@respx.mock
def test_chunked_body_is_sent_chunked_never_with_both_framings() -> None:
    route = respx.post(url__startswith="http://127.0.0.9:8080/").respond(200)
    headers = [(b"transfer-encoding", b"chunked"), (b"content-length", b"3")]
    run(server(), scope_for("POST", headers), [b"ab", b"c"])
    request = route.calls.last.request
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers
    assert request.read() == b"abc"


@respx.mock
def test_response_hop_by_hop_connection_listed_and_date_headers_are_dropped() -> None:
    respx.get(url__startswith="http://127.0.0.9:8080/").respond(
        200,
        headers=[
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("X-Backend", "v1"),
        ],
        content=b"hello",
    )
    start, *bodies = run(server(), scope_for())
    assert start["headers"] == [
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"x-backend", b"v1"),
        (b"content-length", b"5"),
    ]
    assert b"".join(m.get("body", b"") for m in bodies) == b"hello"
    assert bodies[-1]["more_body"] is False


@respx.mock
def test_answers_with_names_seen_before_are_filtered_as_the_first_one() -> None:
    # The second answer's names are all known (kept, or dropped whatever their value):
    # filtered without the loop, to the same headers; a 204's and a 304's still lose
    # what Go suppresses for them.
    answer = [("x-seen", "1"), ("date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("keep-alive", "5")]
    respx.get(url__startswith="http://127.0.0.9:8080/").respond(200, headers=answer, content=b"ok")
    first, again = (run(server(), scope_for())[0]["headers"] for _ in range(2))
    assert first == again == [(b"x-seen", b"1"), (b"content-length", b"2")]
    no_body = [(b"x-seen", b"1"), (b"content-type", b"text/plain")]
    for status, kept in ((204, no_body), (304, no_body[:1])):
        respx.get(url__startswith="http://127.0.0.9:8080/").respond(
            status, headers=[*answer, ("content-type", "text/plain"), ("content-length", "0")]
        )
        assert run(server(), scope_for())[0]["headers"] == kept


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (httpx.ConnectError("refused"), 502, b"Bad Gateway"),
        (httpx.RemoteProtocolError("garbage"), 502, b"Bad Gateway"),
        (httpx.ReadError("reset"), 502, b"Bad Gateway"),
        (httpx.ConnectTimeout("slow dial"), 504, b"Gateway Timeout"),
        (httpx.ReadTimeout("no headers"), 504, b"Gateway Timeout"),
    ],
)
@respx.mock
def test_transport_failures_map_to_traefiks_status_and_body(
    error: Exception, status: int, body: bytes
) -> None:
    respx.get(url__startswith="http://127.0.0.9:8080/").mock(side_effect=error)
    start, end = run(server(), scope_for())
    not_sent = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
    assert start == {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-length", str(len(body)).encode())],
        NO_BACKEND_ANSWER: True,  # written by the gateway: not the backend's first byte
        # no connection: the request was never sent (a retry tries again)
        **({REQUEST_NOT_SENT: True} if not_sent else {}),
    }
    assert end == {"type": "http.response.body", "body": body}


def test_backend_failing_mid_body_aborts_the_response_instead_of_completing_it() -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b"partial"
            raise httpx.ReadError("connection reset mid-body")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": "100"}, stream=Broken())

    holder = ClientHolder(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(UpstreamAborted, match="failed mid-response"):
        asyncio.run(Server("http://127.0.0.9:8080", holder)(scope_for(), receive, send))
    assert sent[0]["status"] == 200
    assert all(m.get("more_body", True) for m in sent[1:])  # never a final, complete message


def test_server_url_must_be_http_with_a_host() -> None:
    with pytest.raises(ValueError, match="http"):
        Server("ftp://x", ClientHolder())


@pytest.mark.parametrize("split", [1, 3], ids=["one-chunk", "three-chunks"])
def test_gzip_answer_is_inflated_in_pieces_no_message_over_the_bound(split: int) -> None:
    # A bomb (32 MiB from ~32 KiB) ending with text, so order and tail are checked too.
    payload_parts = [bytes(32 * 1024 * 1024), b"the end\n" * 1000]
    bomb = gzip.compress(b"".join(payload_parts), compresslevel=9, mtime=0)
    expected = hashlib.sha256(b"".join(payload_parts))
    del payload_parts
    cut = [len(bomb) * i // split for i in range(split + 1)]

    class Chunks(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for start, end in itertools.pairwise(cut):
                yield bomb[start:end]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept-encoding"] == "gzip"  # added by the gateway
        return httpx.Response(200, headers={"content-encoding": "gzip"}, stream=Chunks())

    holder = ClientHolder(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    digest, sizes, ends = hashlib.sha256(), [], []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:  # records sizes; keeps no body
        if message["type"] == "http.response.body":
            digest.update(message["body"])
            sizes.append(len(message["body"]))
            ends.append(message["more_body"])

    asyncio.run(Server("http://127.0.0.9:8080", holder)(scope_for(), receive, send))
    assert max(sizes) <= INFLATE_PIECE
    assert digest.hexdigest() == expected.hexdigest()
    assert ends.count(False) == 1 and ends[-1] is False
