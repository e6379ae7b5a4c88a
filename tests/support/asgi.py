"""Calling a balancer directly, as an ASGI app, and reading what it sent."""

from __future__ import annotations

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
