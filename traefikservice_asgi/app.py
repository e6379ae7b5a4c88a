"""``create_app``: the gateway on its own, answering 404 like Traefik when no route matches."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from .config import Config, ConfigError, ConfigIssue, ConfigSource
from .config.loader import no_route_message
from .middleware import TraefikServiceMiddleware, _reusable, log_warnings
from .options import GatewayOptions
from .responses import send_go_error

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from .options import OptionKeywords

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


class _Gateway(TraefikServiceMiddleware):
    """The middleware as the whole server: Go's server checks and ``OPTIONS *`` first."""

    answers_as_server = True


def create_app(
    config: Config | ConfigSource,
    options: GatewayOptions | None = None,
    **keywords: Unpack[OptionKeywords],
) -> TraefikServiceMiddleware:
    """A standalone gateway: the middleware around a 404 app, answering as Traefik's
    server does before routing (``400`` for a malformed, missing or repeated ``Host``,
    ``200`` for ``OPTIONS *``). Options as for :class:`TraefikServiceMiddleware`.

    A configuration without any route is a :class:`ConfigError` here: the gateway
    would answer 404 to every request. Traefik starts anyway, since its providers may
    add routers later; ours come from these files only, so it is always a mistake (an
    empty file, a wrong folder, a misspelt ``apiVersion``). The middleware accepts it
    (every request then goes to the wrapped app) and logs a warning.
    """
    options = GatewayOptions.of(options, **keywords)
    where: ConfigSource = "the configuration"
    source: ConfigSource | None = None
    if not isinstance(config, Config):
        source = where = config = _reusable(config)
        config = options.load(config)
        log_warnings(config)
    if not config.routes:
        raise ConfigError([ConfigIssue(no_route_message(where))])
    gateway = _Gateway(not_found, config, options)
    gateway.source = source  # what a reload reads again
    return gateway
