"""``serve``'s WebSocket protocol: uvicorn's, able to hand the connection to a tunnel.

Traefik proxies a WebSocket by hijacking the client's connection after the backend's
``101`` and copying bytes. An ASGI server normally keeps the connection and hands the
app whole messages, which costs a slow reader up to two messages of memory (uvicorn
assembles each, then holds its frame in the write buffer). Under ``serve`` the server
is ours, so it offers the :data:`~.context.TUNNEL_KEY` extension: a leaf that sends a
``websocket.accept`` carrying a :class:`~..transport.tunnel.Tunnel` gets the client's
connection joined to the backend's, after the backend's ``101`` head (written as Go
writes it: :meth:`~..transport.tunnel.Tunnel.response_head`).
Any other ``websocket.accept`` (or a refusal) is uvicorn's usual handshake.

Between the upgrade request and the app's answer the protocol reads on, so that a
client leaving is noticed, but keeps what the client sends (a client must wait for the
``101``; at most :data:`EARLY_LIMIT` bytes are kept before reading pauses): it goes to
the backend first through the tunnel, or to uvicorn's frame parser otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_path_with_query_string,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .context import TUNNEL_KEY, tunnel_of

if TYPE_CHECKING:
    from ..transport.tunnel import Tunnel

__all__ = ["EARLY_LIMIT", "TunnelWebSocketProtocol"]

EARLY_LIMIT = 64 * 1024
"""Bytes a client may send before the handshake's answer that are kept; past it the
connection is not read until the answer is written."""


class TunnelWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets (Sans-I/O) protocol with the tunnel extension."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._early: list[bytes] = []
        self._early_size = 0
        self._early_paused = False
        self._tunnel: Tunnel | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # a valid upgrade: the app runs from here
            self.scope["extensions"][TUNNEL_KEY] = {}

    def data_received(self, data: bytes) -> None:
        if self.handshake_initiated and not self.handshake_complete:
            # Waiting for the app's answer: keep the bytes for whoever takes them.
            self._early.append(data)
            self._early_size += len(data)
            if self._early_size > EARLY_LIMIT and not self._early_paused:
                self._early_paused = True
                self.transport.pause_reading()
            return
        super().data_received(data)

    def _take_early(self) -> bytes:
        early = b"".join(self._early)
        self._early.clear()
        self._early_size = 0
        if self._early_paused:
            self._early_paused = False
            self.transport.resume_reading()
        return early

    async def send(self, message: Any) -> None:
        if (
            message["type"] == "websocket.accept"
            and not self.handshake_complete
            and self.initial_response is None
        ):
            tunnel = tunnel_of(message)
            if tunnel is not None:
                self._join(tunnel, message.get("headers", []))
                return
            await super().send(message)
            early = self._take_early()
            if early and not self.transport.is_closing():
                super().data_received(early)
            return
        await super().send(message)

    def _join(self, tunnel: Tunnel, headers: list[tuple[bytes, bytes]]) -> None:
        """Write the backend's ``101`` and give the connection to ``tunnel``."""
        if self.disconnected or self.transport.is_closing():
            raise ClientDisconnected()
        self.logger.info(
            '%s - "WebSocket %s" [tunnelled]',
            get_client_addr(self.scope),
            get_path_with_query_string(self.scope),
        )
        self.handshake_complete = True
        self.close_sent = True  # uvicorn writes nothing on this connection any more
        self._tunnel = tunnel
        self.transport.write(tunnel.response_head(headers))
        # Reading resumes with the tunnel's protocol in place: no byte reaches this one.
        tunnel.join(self.transport, self._take_early(), on_lost=self.connection_lost)

    def shutdown(self) -> None:
        if self._tunnel is not None:
            # The server stops: the tunnel's connections are dropped, as a process
            # exit drops Traefik's hijacked ones (there is no frame boundary to close at).
            self._tunnel.abort()
            return
        super().shutdown()
