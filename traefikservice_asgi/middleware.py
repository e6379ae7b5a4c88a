"""``TraefikServiceMiddleware``: route matching requests into TraefikService trees.

A pure ASGI middleware in Starlette's style: ``__init__`` loads, validates and builds
everything (a bad config fails at startup, not on the first request); ``__call__``
looks at ``scope["type"]`` first and hands anything it does not own to the wrapped app
untouched. It owns the shared ``httpx.AsyncClient`` and the in-flight mirror copies; the
ASGI lifespan (or :meth:`aclose`) closes both, mirrors first, within a bounded time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._background import BackgroundTasks
from ._forwarding import SCOPE_KEY, prepare
from .builder import BuiltRoute, build_routes
from .config import Config, ConfigSource, load_config
from .proxy import ClientHolder
from .rules import RequestView

__all__ = ["TraefikServiceMiddleware"]


class TraefikServiceMiddleware:
    """Send requests matching an IngressRoute rule to its TraefikService.

    ``config`` is a :class:`~traefikservice_asgi.config.Config` or paths to YAML files or
    folders. ``backends`` maps ``"namespace/name:port"`` to a server URL. ``client`` is
    an ``httpx.AsyncClient`` to use instead of the gateway's own (it is not closed by the
    gateway). ``mirror_shutdown_timeout`` bounds how long shutdown waits for mirror copies
    still in flight. ``rng`` seeds the order in which children are added to balancers,
    which Traefik randomises (it decides only ties, e.g. which of two equal-weight
    children goes first).
    """

    def __init__(
        self,
        app: ASGIApp,
        config: Config | ConfigSource,
        *,
        backends: Mapping[str, str | Sequence[str]] | None = None,
        client: httpx.AsyncClient | None = None,
        allow_cross_namespace: bool = False,
        mirror_shutdown_timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        if not isinstance(config, Config):
            config = load_config(
                config, backends=backends, allow_cross_namespace=allow_cross_namespace
            )
        self.config = config
        self._holder = ClientHolder(client)
        self.mirror_tasks = BackgroundTasks()
        self._mirror_shutdown_timeout = mirror_shutdown_timeout
        self.routes: tuple[BuiltRoute, ...] = build_routes(
            config, self._holder, self.mirror_tasks, rng
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            view = RequestView(scope)
            for route in self.routes:
                if route.rule.matches(view):
                    scope = dict(scope)
                    scope[SCOPE_KEY] = prepare(scope)
                    await route.handler(scope, receive, send)
                    return
        elif scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sender(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.aclose()
            await send(message)

        await self.app(scope, receive, sender)

    async def aclose(self) -> None:
        """Wait (bounded) for mirror copies in flight, then close the shared client."""
        await self.mirror_tasks.aclose(self._mirror_shutdown_timeout)
        await self._holder.aclose()
