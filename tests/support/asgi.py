"""Calling a balancer or the gateway directly, as an ASGI app, and reading what it sent.

The one runner of the unit tests: :func:`run` calls an app once, in a fresh event loop,
with a :func:`scope` (the keys an ASGI server sets), a :func:`receiver` of body chunks,
and returns every message the app sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 80),
}


def scope(
    method: str = "GET",
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    length: int | None = None,
    **keys: object,
) -> Scope:
    """An HTTP scope as an ASGI server builds it; ``length`` adds a ``Content-Length``,
    ``keys`` override any key (``path``, ``client``, ...)."""
    framing = [] if length is None else [(b"content-length", str(length).encode())]
    return {**HTTP_SCOPE, "method": method, "headers": [*headers, *framing], **keys}


def receiver(chunks: Sequence[bytes] = (b"",)) -> Receive:
    """The request body in ``chunks``, then ``http.disconnect`` (the client is gone)."""
    queue = list(chunks)

    async def receive() -> Message:
        if not queue:
            return {"type": "http.disconnect"}
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    return receive


class NextApp:
    """The app behind a middleware: answers ``200 ok`` and keeps every scope it got."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def run(app: ASGIApp, scope: Scope, receive: Receive | None = None) -> list[Message]:
    """Call ``app`` once in a new event loop; every message it sent."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def call() -> None:
        await app(scope, receive or receiver(), send)

    asyncio.run(call())
    return sent


async def serve(app: ASGIApp, cookie: str | None = None) -> list[Message]:
    """One GET through ``app`` (with a ``Cookie`` header if given); every message sent."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    headers = [(b"cookie", cookie.encode())] if cookie else []
    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    await app(scope, receive, send)
    return sent


def served_by(messages: list[Message]) -> str:
    """The body of the answer: the test stubs answer with their own name."""
    return b"".join(m.get("body", b"") for m in messages[1:]).decode()


async def call_gateway(
    app: ASGIApp, method: str, body: bytes, host: bytes = b"m.test"
) -> list[Message]:
    """One request through ``app`` with the scope an ASGI server builds; the client stays
    connected until the test ends. Every message sent."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/p",
        "raw_path": b"/p",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await asyncio.sleep(3600)  # the client stays until the test ends
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
