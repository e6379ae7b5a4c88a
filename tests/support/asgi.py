"""Calling a balancer or the gateway directly, as an ASGI app, and reading what it sent."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Scope


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
