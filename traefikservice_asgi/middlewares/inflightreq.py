"""``inFlightReq`` (Traefik's ``inflightreq`` on oxy's ``connlimit``): at most ``amount``
requests of one source are served at a time; one more is answered ``429`` with oxy's
body ``max connections reached: <amount>``. The source is the ``sourceCriterion``,
by default the request's host (``requestHost``). A request counts from the moment it
passes until its answer is sent whole (the next app returned), a WebSocket session
for as long as it is open; ``amount`` 0 refuses everything, as oxy's ``>=`` does."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import InFlightReq as InFlightReqConfig
from ._answer import send_text
from ._source import source_getter

__all__ = ["InFlightReq"]


class InFlightReq:
    def __init__(self, app: ASGIApp, config: InFlightReqConfig) -> None:
        self.app = app
        self.amount = config.amount
        self.source = source_getter(config.source_criterion)
        self.body = b"max connections reached: %d" % config.amount
        self.connections: dict[str, int] = {}  # source -> requests in flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = self.source(scope)
        connections = self.connections
        if connections.get(token, 0) >= self.amount:
            await send_text(send, 429, self.body)
            return
        connections[token] = connections.get(token, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = connections[token] - 1
            if left:
                connections[token] = left
            else:
                del connections[token]  # oxy: "otherwise it would grow forever"
