"""``buffering`` (Traefik's ``pkg/middlewares/buffering``, vulcand/oxy v2's ``buffer``):
the whole request body is read before the request goes on, and the whole answer before
it is relayed.

Request: one announcing a ``Content-Length`` over ``maxRequestBodyBytes`` (0: none), or
whose body grows past it, is answered ``413`` ``Request Entity Too Large``; otherwise
it goes on with its length known (``Content-Length``, never chunked). Answer: held whole
(``Content-Length`` added when it had none and holds at most 2048 bytes, as Go's server
does for an answer written at once); one growing past ``maxResponseBodyBytes`` is
answered ``500`` ``Internal Server Error`` instead. The first ``mem*BodyBytes`` bytes
(0: 1 MiB, multibuf's default) are kept in memory, the rest in a temporary file, as
multibuf does. A request with a body is sent again, the same body replayed, while
``retryExpression`` holds for the last answer (at most 10 attempts).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config._oxy_predicate import And, Expression, NetworkError, Or
from ..config.middlewares import Buffering as BufferingConfig
from ..entrypoint.context import forward_of, replace_forward

__all__ = ["Buffering", "holds"]

DEFAULT_MEM_BYTES = 1 << 20  # multibuf's DefaultMemBytes, taken for 0
MAX_ATTEMPTS = 10  # oxy's DefaultMaxRetryAttempts
_PIECE = 1 << 16
_GO_BUFFER = 2048  # Go's bufferBeforeChunkingSize
_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def holds(expression: Expression, method: str, attempt: int, status: int) -> bool:
    """Whether oxy's predicate holds after ``attempt`` tries, the last answered
    ``status`` (``IsNetworkError``: 502 or 504)."""
    if isinstance(expression, NetworkError):
        return status in (502, 504)
    if isinstance(expression, And):
        return holds(expression.left, method, attempt, status) and holds(
            expression.right, method, attempt, status
        )
    if isinstance(expression, Or):
        return holds(expression.left, method, attempt, status) or holds(
            expression.right, method, attempt, status
        )
    value = {"Attempts": attempt, "ResponseCode": status, "RequestMethod": method}
    return _COMPARE[expression.op](value[expression.function], expression.value)


class _Spool:
    """multibuf's buffer: ``mem`` bytes in memory, the rest in a temporary file."""

    __slots__ = ("file", "size")

    def __init__(self, mem: int) -> None:
        # Closed by close(), once the request is done (it outlives any one block).
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=mem or DEFAULT_MEM_BYTES
        )
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def pieces(self) -> Iterator[bytes]:
        self.file.seek(0)
        return iter(lambda: self.file.read(_PIECE), b"")

    def receive(self) -> Receive:
        """The body again, from the start, as ``http.request`` messages."""
        self.file.seek(0)
        done = False

        async def receive() -> Message:
            nonlocal done
            if done:
                return {"type": "http.disconnect"}
            piece = self.file.read(_PIECE)
            done = len(piece) < _PIECE
            return {"type": "http.request", "body": piece, "more_body": not done}

        return receive

    def close(self) -> None:
        self.file.close()


async def _status_text(send: Send, status: int, text: bytes) -> None:
    """oxy's error handlers: ``WriteHeader`` and the status text, no ``Content-Type``
    (Go's server adds the length)."""
    headers = [(b"content-length", str(len(text)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


class _Answer:
    """oxy's ``bufferWriter``: the status, the headers and the body, held."""

    def __init__(self, limit: int, mem: int) -> None:
        self.limit = limit
        self.start: Message | None = None
        self.body = _Spool(mem)
        self.too_large = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body" and not self.too_large:
            data = message.get("body", b"")
            if self.limit and self.body.size + len(data) > self.limit:
                self.too_large = True  # the rest is read and dropped
            else:
                self.body.write(data)

    @property
    def status(self) -> int:
        return self.start["status"] if self.start is not None else 0

    def expects_body(self, method: str) -> bool:
        headers = dict(reversed(self.start["headers"])) if self.start is not None else {}
        grpc = headers.get(b"grpc-status", b"")
        return not (
            method == "HEAD"
            or 100 <= self.status < 200
            or self.status in (204, 304)
            or headers.get(b"content-length") == b"0"
            or (grpc and grpc != b"0")
        )

    async def relay(self, send: Send, method: str) -> None:
        """The answer held, read back from the spool piece by piece."""
        start = self.start or {"type": "http.response.start", "status": 200, "headers": []}
        size = self.body.size if self.expects_body(method) else 0
        headers = list(start.get("headers", ()))
        framed = any(k in (b"content-length", b"transfer-encoding") for k, _ in headers)
        body_allowed = not (100 <= self.status < 200 or self.status in (204, 304))
        # Go's server gives an answer written whole, within its 2048-byte buffer, a length.
        if not framed and body_allowed and size <= _GO_BUFFER and (size or method != "HEAD"):
            headers.append((b"content-length", str(size).encode()))
        await send({**start, "headers": headers})
        for piece in self.body.pieces() if size else ():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Buffering:
    def __init__(self, app: ASGIApp, config: BufferingConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.config
        forward = forward_of(scope)
        limit = config.max_request_body_bytes
        if limit and forward.content_length is not None and forward.content_length > limit:
            await _status_text(send, 413, b"Request Entity Too Large")
            return
        body = _Spool(config.mem_request_body_bytes)
        try:
            if forward.has_body:
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client is gone
                    body.write(message.get("body", b""))
                    if limit and body.size > limit:
                        await _status_text(send, 413, b"Request Entity Too Large")
                        return
                    if not message.get("more_body", False):
                        break
            scope = replace_forward(scope, content_length=body.size or None, chunked=False)
            await self._attempts(scope, body, send, forward.method)
        finally:
            body.close()

    async def _attempts(self, scope: Scope, body: _Spool, send: Send, method: str) -> None:
        config = self.config
        attempt = 1
        while True:
            answer = _Answer(config.max_response_body_bytes, config.mem_response_body_bytes)
            try:
                await self.app(scope, body.receive(), answer.send)
                if answer.too_large:
                    await _status_text(send, 500, b"Internal Server Error")
                    return
                expression = config.retry_expression
                if (
                    not body.size
                    or expression is None
                    or attempt > MAX_ATTEMPTS
                    or not holds(expression, method, attempt, answer.status)
                ):
                    await answer.relay(send, method)
                    return
            finally:
                answer.body.close()
            attempt += 1
