"""``TraefikServiceMiddleware``: route matching requests into TraefikService trees.

A pure ASGI middleware in Starlette's style: ``__init__`` loads, validates and builds
everything (a bad config fails at startup, not on the first request); ``__call__``
looks at ``scope["type"]`` first and hands anything it does not own to the wrapped app
untouched. It owns the shared ``httpx.AsyncClient``, the in-flight mirror copies and the
health check tasks; the health checks start with the ASGI lifespan (or the first request,
without one), and the lifespan's shutdown (or :meth:`aclose`) stops the health checks,
then waits for the mirrors, then closes the clients, within a bounded time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._forwarding import SCOPE_KEY, InvalidRequest, prepare, trusted_peers
from ._lifecycle import serve_watched
from ._mirror_pool import MirrorLimits, MirrorPool
from ._responses import send_go_error
from .builder import BuiltRoute, build_routes
from .config import Config, ConfigSource, load_config
from .healthcheck import HealthChecks
from .proxy import http_responses_as_websocket
from .rules import RequestView
from .transport import ClientHolder

__all__ = ["TraefikServiceMiddleware"]


class TraefikServiceMiddleware:
    """Send requests matching an IngressRoute rule to its TraefikService.

    ``config`` is a :class:`~traefikservice_asgi.config.Config` or paths to YAML files or
    folders. ``backends`` maps ``"namespace/name:port"`` to a server URL. ``client`` is
    an ``httpx.AsyncClient`` to use instead of the gateway's own (it is not closed by the
    gateway). ``forwarded_trusted_ips`` (IPs or CIDRs) and ``forwarded_insecure`` say
    whose ``X-Forwarded-*`` headers are kept, as Traefik's entry point
    ``forwardedHeaders.trustedIPs``/``insecure`` (by default nobody's). ``mirror_limits``
    bounds mirror copies (:class:`~traefikservice_asgi.MirrorLimits`). ``rng`` seeds the
    order in which children are added to balancers, which Traefik randomises (it decides
    only ties, e.g. which of two equal-weight children goes first).
    """

    def __init__(
        self,
        app: ASGIApp,
        config: Config | ConfigSource,
        *,
        backends: Mapping[str, str | Sequence[str]] | None = None,
        client: httpx.AsyncClient | None = None,
        allow_cross_namespace: bool = False,
        forwarded_trusted_ips: Sequence[str] = (),
        forwarded_insecure: bool = False,
        mirror_limits: MirrorLimits | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        if not isinstance(config, Config):
            config = load_config(
                config, backends=backends, allow_cross_namespace=allow_cross_namespace
            )
        self.config = config
        self._trusted = trusted_peers(forwarded_trusted_ips, insecure=forwarded_insecure)
        self.mirror_pool = MirrorPool(mirror_limits)
        self._holder = ClientHolder(client, copy_idle=self.mirror_pool.limits.max_in_flight)
        built = build_routes(config, self._holder, self.mirror_pool, rng)
        self.routes: tuple[BuiltRoute, ...] = built.routes
        self._holders = (self._holder, *built.holders)
        self.health_checks = HealthChecks(built.health_checkers)
        self._checking = bool(built.health_checkers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            if self._checking:
                self.health_checks.start()  # no lifespan: the first request starts them
            view = RequestView(scope)
            for route in self.routes:
                if route.rule.matches(view):
                    scope = dict(scope)
                    websocket = scope["type"] == "websocket"
                    if websocket:
                        send = http_responses_as_websocket(scope, send)
                    try:
                        forward = prepare(scope, trusted=self._trusted)
                    except InvalidRequest:
                        await send_go_error(send, 400, "400 Bad Request")
                        return
                    scope[SCOPE_KEY] = forward
                    if websocket:
                        # The WebSocket proxy watches the client itself (websocket.py).
                        await route.handler(scope, receive, send)
                    else:
                        await serve_watched(
                            route.handler, scope, receive, send, has_body=forward.has_body
                        )
                    return
        elif scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sender(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.health_checks.start()
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.aclose()
            await send(message)

        await self.app(scope, receive, sender)

    async def aclose(self) -> None:
        """Stop the health checks, wait (bounded) for mirror copies in flight, then
        close the shared client."""
        await self.health_checks.aclose()
        await self.mirror_pool.aclose()
        for holder in self._holders:
            await holder.aclose()
