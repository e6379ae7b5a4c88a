"""``contentType`` (Traefik's ``pkg/middlewares/contenttype``): lets Go's server sniff
the ``Content-Type`` of an answer that has none.

Traefik's entry points stop Go from sniffing (an answer without ``Content-Type`` is
sent without one, as this gateway does); this middleware turns Go's sniffing back on
for its routes: the ``Content-Type`` becomes ``http.DetectContentType`` of the first
bytes written (:mod:`._sniff`), when the status allows a body, no ``Transfer-Encoding``
is set and at least one byte is written (an empty or ``HEAD`` answer gets none). The
head is held until the first non-empty body chunk (or the end). The deprecated
``autoDetect: false`` makes the middleware do nothing, as in Traefik.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.middlewares import ContentType as ContentTypeConfig
from ._sniff import detect_content_type

__all__ = ["ContentType"]


def _body_allowed(status: int) -> bool:
    """Go's ``bodyAllowedForStatus``."""
    return not (100 <= status <= 199 or status in (204, 304))


class ContentType:
    def __init__(self, app: ASGIApp, config: ContentTypeConfig) -> None:
        self.app = app
        self.enabled = config.auto_detect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        held: Message | None = None

        async def sniffing(message: Message) -> None:
            nonlocal held
            kind = message["type"]
            if kind == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", ())}
                typed = b"content-type" in names or b"transfer-encoding" in names
                if typed or not _body_allowed(message.get("status", 200)):
                    await send(message)
                else:
                    held = message
                return
            if kind == "http.response.body" and held is not None:
                body = message.get("body", b"")
                if not body and message.get("more_body", False):
                    return
                start, held = held, None
                if body:
                    sniffed = detect_content_type(body).encode()
                    headers = [*start.get("headers", ()), (b"content-type", sniffed)]
                    start = {**start, "headers": headers}
                await send(start)
            await send(message)

        await self.app(scope, receive, sniffing)
