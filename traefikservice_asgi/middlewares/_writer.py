"""A Go ``http.ResponseWriter`` over an ASGI ``send``, for middlewares ported from Go
response writers (``compress``'s): a header map edited until ``WriteHeader``, then body
writes, ``Flush`` and the end of the answer.

The header map is the ``http.response.start`` message's header list (lowercase names,
in order); :meth:`write_header` sends that message once (Go ignores a second
``WriteHeader``), :meth:`write` a body message, :meth:`finish` the last one.
"""

from __future__ import annotations

from starlette.types import Message, Send

__all__ = ["GoResponseWriter", "flushes_each_write"]


def flushes_each_write(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether Go's ``ReverseProxy`` flushes after every write of this answer: one of
    unknown length (no ``Content-Length``: chunked) or a ``text/event-stream``
    (``flushInterval`` -1); others are flushed every 100 ms, which an answer read at
    once never reaches."""
    length = False
    for name, value in headers:
        if name == b"content-length":
            length = True
        elif name == b"content-type" and value.split(b";")[0].strip().lower() == (
            b"text/event-stream"
        ):
            return True
    return not length


class GoResponseWriter:
    """The client's side of the answer, written as a Go handler writes it."""

    __slots__ = ("_send", "_start", "headers", "started")

    def __init__(self, send: Send, start: Message, headers: list[tuple[bytes, bytes]]) -> None:
        self._send = send
        self._start = start
        self.headers = headers
        self.started = False

    def get(self, name: bytes) -> bytes:
        """The first value of ``name`` (``b""`` when absent), Go's ``Header().Get``."""
        for key, value in self.headers:
            if key == name:
                return value
        return b""

    def has(self, name: bytes) -> bool:
        return any(key == name for key, _ in self.headers)

    def delete(self, name: bytes) -> None:
        self.headers[:] = [(key, value) for key, value in self.headers if key != name]

    def set(self, name: bytes, value: bytes) -> None:
        self.delete(name)
        self.headers.append((name, value))

    async def write_header(self, status: int) -> None:
        if not self.started:
            self.started = True
            await self._send({**self._start, "status": status, "headers": self.headers})

    async def write(self, data: bytes) -> None:
        if data:
            await self.write_header(200)
            await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def finish(self) -> None:
        await self.write_header(200)
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})
