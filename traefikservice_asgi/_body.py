"""A request body that must be read once and sent more than once (mirroring).

Shared by every strategy that replays a body, so the buffering rules live in one place:
read at most ``limit`` bytes (``limit < 0``: no limit); past the limit, stop buffering and
give the main service the bytes already read followed by the rest of the stream, exactly
as Traefik stitches them back (``maxBodySize`` exceeded: served, not mirrored).
"""

from __future__ import annotations

from starlette.types import Message, Receive

__all__ = ["BufferedBody", "has_body", "read_body", "replay"]

_DISCONNECT: Message = {"type": "http.disconnect"}


def has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request framing announces a body (HTTP/1.1: Content-Length > 0 or
    Transfer-Encoding); a request with neither has none, whatever its method."""
    for key, value in headers:
        k = key.lower()
        if k == b"transfer-encoding":
            return True
        if k == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


class BufferedBody:
    """What :func:`read_body` read: the chunks, and whether that was the whole body."""

    __slots__ = ("_receive", "chunks", "complete", "disconnected", "size")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.disconnected = False

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def replay(self) -> Receive:
        """A ``receive`` for the main service: the buffered chunks, then (if the body was
        larger than the limit) the rest of the original stream."""
        chunks = list(self.chunks)
        complete = self.complete
        original = self._receive
        disconnected = self.disconnected

        async def receive() -> Message:
            if chunks:
                chunk = chunks.pop(0)
                more = bool(chunks) or not complete
                return {"type": "http.request", "body": chunk, "more_body": more}
            if complete and not disconnected:
                return {"type": "http.request", "body": b"", "more_body": False}
            if disconnected:
                return _DISCONNECT
            return await original()

        return receive


async def read_body(receive: Receive, limit: int) -> BufferedBody:
    """Buffer the request body, up to ``limit`` bytes (``< 0``: all of it)."""
    body = BufferedBody(receive)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.disconnected = True
            return body
        chunk: bytes = message.get("body", b"")
        if chunk:
            body.chunks.append(chunk)
            body.size += len(chunk)
        if not message.get("more_body", False):
            body.complete = limit < 0 or body.size <= limit
            return body
        if 0 <= limit < body.size:
            return body


def replay(data: bytes) -> Receive:
    """A ``receive`` that yields ``data`` once, then reports the client as gone, which is
    what a copy with no client behind it looks like."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return _DISCONNECT
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return receive
