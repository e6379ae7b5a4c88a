"""A request body that must be sent more than once (mirroring, failover), kept within bounds.

Shared by every strategy that replays a body, so the rules live in one place.

* Mirroring: Traefik reads the whole body into memory before the main service sees a
  byte; here the body streams to the main service as it arrives and a :class:`Tee` keeps
  a copy on the side, bounded by ``maxBodySize`` and by the gateway's mirror buffer
  budget. Past either bound the copy is dropped for that request, and the main service
  is unaffected. :func:`replay` feeds a copy to a mirror, which has no client behind it.
* Failover on status codes: the body must be whole *before* the main service runs,
  because a body over ``maxRequestBodyBytes`` is refused with a 413 before anything is
  sent (Traefik's ``mirror.NewReusableRequest``, which reads ``limit + 1`` bytes to tell
  "exactly the limit" from "over it"). :func:`read_body` buffers it and
  :func:`replay_live` gives it to the main service and, if need be, to the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Receive

from .mirror_pool import MirrorPool

__all__ = ["Buffered", "Tee", "read_body", "replay", "replay_live"]

_DISCONNECT: Message = {"type": "http.disconnect"}


class Tee:
    """A ``receive`` for the main service that keeps a bounded copy of the body.

    After the main service has run: ``complete`` says the whole body went by and was
    kept (``data``); otherwise ``overflow`` names why the copy was given up, or the client
    left (``disconnected``), or the main service did not read the body to its end.
    ``size`` bytes of the pool's budget are held until the caller releases them.
    """

    __slots__ = (
        "_limit",
        "_pool",
        "_receive",
        "chunks",
        "complete",
        "disconnected",
        "overflow",
        "size",
    )

    def __init__(self, receive: Receive, limit: int, pool: MirrorPool) -> None:
        self._receive = receive
        self._limit = limit
        self._pool = pool
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.disconnected = False
        self.overflow: str | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            return message
        chunk: bytes = message.get("body", b"")
        if chunk and self.overflow is None:
            if 0 <= self._limit < self.size + len(chunk):
                self._give_up(f"body larger than maxBodySize {self._limit}")
            elif not self._pool.reserve(len(chunk)):
                self._give_up("mirror buffer budget exhausted")
            else:
                self.chunks.append(chunk)
                self.size += len(chunk)
        if not message.get("more_body", False) and self.overflow is None:
            self.complete = True
        return message

    def _give_up(self, reason: str) -> None:
        self.overflow = reason
        self._pool.release(self.size)
        self.chunks = []
        self.size = 0


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


@dataclass(frozen=True, slots=True)
class Buffered:
    """A request body read ahead by :func:`read_body`.

    ``too_large``: more than ``limit`` bytes were sent (``data`` holds what was read, at
    most ``limit + 1`` bytes). ``disconnected``: the client left before the body ended.
    """

    data: bytes
    too_large: bool = False
    disconnected: bool = False


async def read_body(receive: Receive, limit: int) -> Buffered:
    """Read the whole request body from ``receive``, at most ``limit`` bytes (-1: no
    limit). Stops as soon as more than ``limit`` bytes have arrived, without waiting for
    the rest, as Traefik's ``io.ReadFull`` of ``limit + 1`` bytes does."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return Buffered(b"".join(chunks), disconnected=True)
        chunk: bytes = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
            if 0 <= limit < size:
                return Buffered(b"".join(chunks), too_large=True)
        if not message.get("more_body", False):
            return Buffered(b"".join(chunks))


def replay_live(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that yields ``first`` once, then hands over to the client's own
    ``receive``: a buffered request replayed to a service while its client is still
    connected (so a later ``receive`` still reports the client leaving).

    ``first`` is ``{"type": "http.request", "body": data}`` for an HTTP request, or the
    ``websocket.connect`` a WebSocket handshake starts with.
    """
    sent = False

    async def receive_replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return first

    return receive_replayed
