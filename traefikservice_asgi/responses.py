"""The few responses the gateway itself writes, byte for byte as Traefik writes them.

Go's ``http.Error`` (used for ``no available server`` and the router's 404) adds a
newline, ``Content-Type: text/plain; charset=utf-8`` and ``X-Content-Type-Options:
nosniff``; Traefik's proxy error handler writes only the status text, with no newline and
no Content-Type (``Bad Gateway``). Both are sent as raw ASGI messages: a response class
would cost more than the two messages it produces.
"""

from __future__ import annotations

from starlette.types import Send

from .entrypoint.context import NO_BACKEND_ANSWER

__all__ = [
    "STATUS_TEXT",
    "send_bad_request",
    "send_go_error",
    "send_options_star",
    "send_proxy_error",
]

STATUS_TEXT = {
    413: "Request Entity Too Large",
    499: "Client Closed Request",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


async def send_go_error(send: Send, status: int, text: str) -> None:
    """What Go's ``http.Error(w, text, status)`` sends."""
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_proxy_error(send: Send, status: int) -> None:
    """What Traefik's reverse proxy sends when forwarding fails: the bare status text."""
    body = STATUS_TEXT[status].encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode())],
            NO_BACKEND_ANSWER: True,  # the backend never answered
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_bad_request(send: Send, text: str) -> None:
    """What Go's HTTP server writes for a request it refuses before any handler runs
    (``400 Bad Request: malformed Host header``): the text, no newline, and the connection
    closed. Go puts the text in the status line too, and sends no ``Content-Length``;
    under ASGI the reason phrase is the server's and the length is given."""
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"connection", b"close"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_options_star(send: Send) -> None:
    """Go's ``globalOptionsHandler``: ``OPTIONS *`` answered by the server itself, 200
    with ``Content-Length: 0``."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})
