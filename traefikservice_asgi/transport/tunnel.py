"""Two connections joined byte for byte: what Traefik does after a ``101``.

Go's ``httputil.ReverseProxy`` answers an upgrade by hijacking the client's connection
and the backend's, then copying bytes both ways (``switchProtocolCopier``) until either
side ends, when both are closed. A :class:`Tunnel` is that copy on two asyncio
transports: the frames of a WebSocket cross untouched (extensions, pings, close codes
included), and nothing is parsed or assembled.

Memory is bounded by flow control, not by what the peers send: bytes read from one side
are written to the other at once, and when the other's write buffer passes
:data:`HIGH_WATER` the first side stops being read (``pause_reading``) until it drains
below the low-water mark. A reader that reads nothing therefore stops the tunnel reading
its peer, whose own writes then block in the kernel: TCP backpressure end to end. Per
direction the gateway holds at most ``HIGH_WATER`` plus one socket read (asyncio and
uvloop read at most 256 KiB at a time), so a tunnel holds at most :data:`MAX_HELD`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

__all__ = ["HIGH_WATER", "MAX_HELD", "READ_SIZE", "Tunnel", "canonical_header_key"]

HIGH_WATER = 64 * 1024
"""Bytes waiting in one side's write buffer above which the other side is not read."""
LOW_WATER = 16 * 1024
"""Bytes waiting below which reading resumes (asyncio's default ratio)."""
READ_SIZE = 256 * 1024
"""The most one socket read returns (asyncio's selector transports and uvloop)."""
MAX_HELD = 2 * (HIGH_WATER + READ_SIZE)
"""The most a tunnel holds in its two write buffers."""


_NOT_WRITTEN = frozenset({b"Content-Length", b"Transfer-Encoding", b"Trailer"})
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def canonical_header_key(name: bytes) -> bytes:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``sec-websocket-accept`` is
    ``Sec-Websocket-Accept``; a name with a byte outside the token set is kept as is."""
    if not name or any(byte not in _TOKEN for byte in name):
        return name
    return b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))


class _End(asyncio.Protocol):
    """One side of the tunnel: what it reads is written to ``peer``'s transport."""

    __slots__ = ("lost", "on_lost", "peer", "transport", "tunnel")

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.transport: asyncio.Transport | None = None
        self.peer: _End | None = None
        self.lost = False
        self.on_lost: Callable[[Exception | None], None] | None = None

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.open:
            peer.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        """This side finished sending: as in Go, the first side to finish ends the
        tunnel (what either side still has to write is flushed first)."""
        self.tunnel.close()
        return False  # closed (after flushing) either way; TLS ignores True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.tunnel.end_lost(exc)
        if self.on_lost is not None:
            self.on_lost(exc)

    # Flow control: this side's writes are backed up, so stop reading its peer.
    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.open:
            peer.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.open:
            peer.transport.resume_reading()  # type: ignore[union-attr]


class Tunnel:
    """Bytes both ways between the backend's connection (given first, once its ``101``
    has been read) and the client's (given by the ASGI server, :meth:`join`)."""

    __slots__ = ("_backend", "_client", "_done", "_pending", "error", "status_line")

    def __init__(
        self,
        backend: asyncio.Transport,
        pending: bytes = b"",
        status_line: bytes = b"HTTP/1.1 101 Switching Protocols",
    ) -> None:
        """``backend``: the server's connection, taken from its protocol; ``pending``:
        what it sent after its ``101`` and was read with it (written to the client on
        :meth:`join`); ``status_line``: the backend's, relayed as Go relays it (its
        version and reason). The backend is not read until the client joins."""
        self.status_line = status_line
        self._backend = _End(self)
        self._client = _End(self)
        self._backend.peer, self._client.peer = self._client, self._backend
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending = pending
        self.error: Exception | None = None
        backend.pause_reading()
        backend.set_protocol(self._backend)
        self._backend.connection_made(backend)

    def response_head(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The ``101`` head for the client, written as Go's ``Response.Write`` writes the
        backend's response in ``handleUpgradeResponse``: its status line, then the
        headers by canonical name in sorted order (values of one name in the order
        given: what the balancers set first, such as a sticky cookie, then the
        backend's), without ``Content-Length``, ``Transfer-Encoding`` or ``Trailer``."""
        grouped: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            grouped.setdefault(canonical_header_key(name), []).append(value)
        lines = [self.status_line, b"\r\n"]
        for name in sorted(grouped):
            if name in _NOT_WRITTEN:
                continue
            for value in grouped[name]:
                value = value.replace(b"\r", b" ").replace(b"\n", b" ").strip(b" \t")
                lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def join(
        self,
        client: asyncio.Transport,
        early: bytes = b"",
        on_lost: Callable[[Exception | None], None] | None = None,
    ) -> None:
        """The client's connection, its ``101`` written: ``early`` is what it sent after
        its upgrade request and before the answer, passed on to the backend first;
        ``on_lost`` is called when the client's connection is gone (the server's own
        bookkeeping)."""
        client.set_protocol(self._client)
        self._client.connection_made(client)
        self._client.on_lost = on_lost
        if self._backend.open and early:
            self._backend.transport.write(early)  # type: ignore[union-attr]
        if self._pending:
            client.write(self._pending)
            self._pending = b""
        if not self._backend.open:  # the backend left meanwhile: flush and end
            self.close()
            return
        if client.get_write_buffer_size() <= HIGH_WATER:
            # Else the client's transport is paused (its resume_writing resumes this).
            self._backend.transport.resume_reading()  # type: ignore[union-attr]

    def close(self) -> None:
        """End both sides: each transport writes what it holds, then closes."""
        for end in (self._backend, self._client):
            if end.open:
                end.transport.close()  # type: ignore[union-attr]
        self._check_done()

    def abort(self) -> None:
        """Drop both sides at once (errors, shutdown, a client that never joined)."""
        for end in (self._backend, self._client):
            if end.open:
                end.transport.abort()  # type: ignore[union-attr]
        self._check_done()

    def end_lost(self, exc: Exception | None) -> None:
        """One side's connection is gone: after an error the other is dropped at once,
        after a clean close it flushes first."""
        if exc is not None:
            if self.error is None:
                self.error = exc
            self.abort()
        else:
            self.close()

    def _check_done(self) -> None:
        if not self._backend.open and not self._client.open and not self._done.done():
            self._done.set_result(None)

    async def wait(self) -> None:
        """Until both connections are closed."""
        await asyncio.shield(self._done)

    def held(self) -> int:
        """Bytes waiting in the two write buffers now."""
        return sum(
            end.transport.get_write_buffer_size()
            for end in (self._backend, self._client)
            if end.transport is not None and not end.lost
        )
