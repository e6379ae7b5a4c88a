"""The benchmark's backends: the smallest ASGI app that answers like the blog's nginx pods.

Raw ASGI (no framework) so that the backend costs as little CPU as uvicorn allows and the
proxy in front of it dominates what is measured. Served as ``backend_app:app_v1`` and
``backend_app:app_v2`` by uvicorn with uvloop + httptools, one process each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def hello(name: str) -> App:
    """An app answering ``Hello <name>\\n`` to every request (the body is not read)."""
    body = f"Hello {name}\n".encode()
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
    }
    answer = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send(start)
            await send(answer)

    return app


app_v1 = hello("app-v1")
app_v2 = hello("app-v2")
