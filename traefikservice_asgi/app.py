"""``create_app``: the gateway on its own, answering 404 like Traefik when no route matches."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import httpx
from starlette.types import Receive, Scope, Send

from ._mirror_pool import MirrorLimits
from ._responses import send_go_error
from .config import Config, ConfigSource
from .middleware import TraefikServiceMiddleware

__all__ = ["create_app"]


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """What Traefik answers when no router matches: Go's ``http.NotFound``. Also
    completes the lifespan protocol, so the gateway runs under any ASGI server."""
    if scope["type"] == "http":
        await send_go_error(send, 404, "404 page not found")
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    config: Config | ConfigSource,
    *,
    backends: Mapping[str, str | Sequence[str]] | None = None,
    client: httpx.AsyncClient | None = None,
    allow_cross_namespace: bool = False,
    forwarded_trusted_ips: Sequence[str] = (),
    forwarded_insecure: bool = False,
    mirror_limits: MirrorLimits | None = None,
    rng: random.Random | None = None,
) -> TraefikServiceMiddleware:
    """A standalone gateway: the middleware around a 404 app. Options as for
    :class:`TraefikServiceMiddleware`."""
    return TraefikServiceMiddleware(
        not_found,
        config,
        backends=backends,
        client=client,
        allow_cross_namespace=allow_cross_namespace,
        forwarded_trusted_ips=forwarded_trusted_ips,
        forwarded_insecure=forwarded_insecure,
        mirror_limits=mirror_limits,
        rng=rng,
    )
