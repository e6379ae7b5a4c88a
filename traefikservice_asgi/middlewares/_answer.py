"""A middleware's own plain answer, as Go's ``WriteHeader(code)`` then ``Write(text)``
sends it through Traefik: the header written first, so no ``Content-Type`` is sniffed
(Traefik 3.7.15 sends none), and the body's length."""

from __future__ import annotations

from starlette.types import Send

__all__ = ["send_text"]


async def send_text(send: Send, status: int, body: bytes) -> None:
    """``status`` with ``body`` and its ``Content-Length``, nothing else."""
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
