"""The admin listener's ASGI app: ``/metrics``, ``/ping`` and a read-only ``/api``.

Traefik serves these on its ``traefik`` entry point; ``serve --admin-port`` serves this
app on a listener of its own, and :attr:`TraefikServiceMiddleware.admin_app` is the same
app for embedded use. The main listener never answers these paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from .api import Api

if TYPE_CHECKING:
    from ..middleware import TraefikServiceMiddleware

__all__ = ["AdminApp"]


async def _answer(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AdminApp:
    """``/metrics`` (Prometheus text, OpenMetrics on request), ``/ping`` (``200 OK``,
    ``503`` once shutdown has begun) and ``/api/*`` of one middleware."""

    def __init__(self, gateway: TraefikServiceMiddleware, collector: Any = None) -> None:
        self.gateway = gateway
        self.collector = collector  # by default, one over the gateway's own metrics
        self.shutting_down = False
        self.api = Api(gateway)
        self._registry: Any = None
        self.routes: dict[str, Callable[[Scope, Send], Any]] = {
            "/metrics": self._metrics,
            "/ping": self._ping,
        }

    def registry(self) -> Any:
        """The ``prometheus_client`` registry holding this gateway's collector."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            from .metrics import MetricsCollector

            registry = CollectorRegistry(auto_describe=False)
            metrics = self.gateway.metrics
            if self.collector is not None:
                registry.register(self.collector)
            elif metrics is not None:
                registry.register(MetricsCollector(metrics))
            self._registry = registry
        return self._registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self.shutting_down = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        handler = self.routes.get(path)
        if handler is not None:
            await handler(scope, send)
        elif path.startswith("/api/"):
            found = self.api.answer(path, scope.get("query_string", b""))
            if found is None:
                await _answer(send, 404, b"404 page not found\n")
            else:
                body = json.dumps(found, separators=(",", ":")).encode() + b"\n"
                await _answer(send, 200, body, b"application/json")
        else:
            await _answer(send, 404, b"404 page not found\n")

    async def _ping(self, scope: Scope, send: Send) -> None:
        if self.shutting_down or self.gateway.shutting_down:
            await _answer(send, 503, b"Service Unavailable")
        else:
            await _answer(send, 200, b"OK")

    async def _metrics(self, scope: Scope, send: Send) -> None:
        if self.gateway.metrics is None:
            await _answer(send, 404, b"404 page not found\n")
            return
        from prometheus_client.exposition import choose_encoder

        accept = ""
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry())
        await _answer(send, 200, body, content_type.encode())
