"""``TraefikServiceMiddleware``: route matching requests into TraefikService trees.

A pure ASGI middleware in Starlette's style: ``__init__`` loads, validates and builds
everything (a bad config fails at startup, not on the first request: Starlette builds
its middleware on the first ASGI call, the lifespan, so run uvicorn with
``--lifespan on`` or its ``lifespan="auto"`` takes the failure for "lifespan
unsupported" and keeps serving 500s); the warnings of a configuration it loads are
logged once, on ``traefikservice_asgi.config``; ``__call__``
looks at ``scope["type"]`` first and hands anything it does not own to the wrapped app
untouched. What the configuration became is one :class:`~.runtime.Runtime` (routes,
clients, health checks, mirror pool), held by one reference that a reload will swap.
The health checks start with the ASGI lifespan (or the first request, without one), and
the lifespan's shutdown (or :meth:`~TraefikServiceMiddleware.aclose`) stops the health
checks, then waits for the mirrors, then closes the clients, within a bounded time.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .builder import build_runtime
from .config import Config, ConfigSource, no_route_message
from .entrypoint.context import FORWARD_KEY
from .entrypoint.forwarding import Forward, InvalidRequest, prepare, trusted_peers
from .entrypoint.lifecycle import serve_watched
from .healthcheck import HealthChecks
from .loadbalancer.mirror_pool import MirrorPool
from .observability import AccessLog, AdminApp, Metrics, Observer
from .observability.observe import Exchange
from .observability.outdated import configured
from .observability.own import own_metrics
from .options import GatewayOptions
from .proxy import http_responses_as_websocket
from .reload import Reloader, ReloadStats, ReloadSummary
from .responses import send_bad_request, send_options_star
from .rules import RequestView
from .runtime import Route, Runtime

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from .options import OptionKeywords

__all__ = ["TraefikServiceMiddleware", "log_warnings"]

config_logger = logging.getLogger("traefikservice_asgi.config")


def _reusable(source: ConfigSource) -> ConfigSource:
    """``source`` as something that can be read twice (an iterator cannot)."""
    return source if isinstance(source, (str, os.PathLike)) else list(source)


def log_warnings(config: Config) -> None:
    """Log each of ``config.warnings`` once, at warning level, and each issue of what
    ``skip_invalid`` left out (``config.skipped``) at error level, as Traefik logs what
    its provider skips (``check`` prints both)."""
    for warning in config.warnings:
        config_logger.warning("%s", warning)
    for issue in config.skipped:
        config_logger.error("skipped: %s", issue)


class TraefikServiceMiddleware:
    """Send requests matching an IngressRoute rule to its TraefikService.

    ``config`` is a :class:`~traefikservice_asgi.config.Config` or paths to YAML files or
    folders. The options are a :class:`~traefikservice_asgi.options.GatewayOptions`, or
    its fields as keyword arguments (which override ``options``' own): ``backends`` maps
    ``"namespace/name:port"`` to a server URL; ``client`` is an ``httpx.AsyncClient`` to
    use instead of the gateway's own (it is not closed by the gateway);
    ``allow_cross_namespace``; ``skip_invalid`` leaves out (and logs) what has a problem
    and serves the rest, as Traefik's provider does; ``forwarded_trusted_ips`` (IPs or CIDRs) and
    ``forwarded_insecure`` say whose ``X-Forwarded-*`` headers are kept, as Traefik's
    entry point ``forwardedHeaders.trustedIPs``/``insecure`` (by default nobody's);
    ``mirror_limits`` bounds mirror copies (:class:`~traefikservice_asgi.MirrorLimits`);
    ``rng`` seeds the order in which children are added to balancers, which Traefik
    randomises (it decides only ties, e.g. which of two equal-weight children goes
    first).

    Requests Go's HTTP server refuses before any handler (a malformed, missing or repeated
    ``Host``, an invalid target) are answered ``400`` as Go answers them when a route
    matches; the others go to the wrapped app, whose own server accepted them.
    ``OPTIONS *`` (the whole server's options) is never routed: it goes to the wrapped
    app. The standalone gateway (:func:`~traefikservice_asgi.create_app`) is the server,
    so, as Traefik's, it answers all of these itself before routing.
    """

    #: True when the middleware is the whole server (``create_app``): it then refuses
    #: bad requests and answers ``OPTIONS *`` before routing, as Go's server does.
    answers_as_server: ClassVar[bool] = False

    def __init__(
        self,
        app: ASGIApp,
        config: Config | ConfigSource,
        options: GatewayOptions | None = None,
        **keywords: Unpack[OptionKeywords],
    ) -> None:
        self.app = app
        self.options = options = GatewayOptions.of(options, **keywords)
        config_source_name: ConfigSource = "the configuration"
        #: The paths the configuration was read from (None: given a Config), re-read
        #: by :meth:`reload`.
        self.source: ConfigSource | None = None
        if not isinstance(config, Config):
            self.source = config_source_name = config = _reusable(config)
            config = options.load(config)
            log_warnings(config)
        if not config.routes:
            config_logger.warning("%s", no_route_message(config_source_name))
        self.config = config
        self._trusted = trusted_peers(
            options.forwarded_trusted_ips, insecure=options.forwarded_insecure
        )
        self.observability = obs = options.observability
        self.metrics: Metrics | None = Metrics(obs) if obs.metrics else None
        self.access_log: AccessLog | None = (
            AccessLog(obs.access_log_format, obs.access_log_file, obs.entry_point)
            if obs.access_log
            else None
        )
        self._observer: Observer | None = (
            Observer(self.metrics, self.access_log) if obs.enabled else None
        )
        self.shutting_down = False
        # The servers are wrapped whenever something observes: the access log needs the
        # service, URL and status of the server that answered, as the metrics do.
        self._recorder = self.metrics or (Metrics(obs) if obs.enabled else None)
        self.runtime: Runtime = build_runtime(config, options, self._recorder)
        self._reloader = Reloader(self)
        if self.metrics is not None:
            self.metrics.extra.append(self._own_metrics)
            self.metrics.outdated.set_configuration(configured(config))
        self._admin_app: AdminApp | None = None

    @property
    def recorder(self) -> Metrics | None:
        """What counts each server's exchanges (metrics, access log), the same object
        across reloads so that counters carry on."""
        return self._recorder

    @property
    def admin_app(self) -> AdminApp:
        """The admin ASGI app (``/metrics``, ``/ping``, ``/api/*``) of this middleware:
        serve it on a listener of its own; the main one never answers these paths."""
        if self._admin_app is None:
            self._admin_app = AdminApp(self)
        return self._admin_app

    def _own_metrics(self) -> Iterator[Any]:
        return own_metrics(self.runtime)

    # ------------------------------------------------------------- live configuration
    async def reload(self, config: Config | None = None) -> ReloadSummary:
        """Apply a new configuration without a restart: ``config``, or the same paths
        read again. It is built to the side (in a thread), then swapped in one
        assignment; requests in flight finish on the previous one, which is closed
        once they are done; unchanged services keep their state (``reuse.py``).
        Returns what changed; raises ``ConfigError`` and keeps serving the current
        configuration if the new one is invalid. Reloads run one at a time."""
        return await self._reloader.reload(config)

    @property
    def reload_stats(self) -> ReloadStats:
        """Reloads applied and failed, and when (for metrics)."""
        return self._reloader.stats

    @property
    def reloader(self) -> Reloader:
        """The reloads, the file watcher and the SIGHUP handler of this middleware."""
        return self._reloader

    @property
    def routes(self) -> tuple[Route, ...]:
        """The current runtime's routes, in matching order."""
        return self.runtime.routes

    @property
    def mirror_pool(self) -> MirrorPool:
        """The current runtime's mirror pool."""
        return self.runtime.mirror_pool

    @property
    def health_checks(self) -> HealthChecks:
        """The current runtime's health checks."""
        return self.runtime.health_checks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        # One runtime for the whole request, counted while it runs: a reload closes the
        # runtime it replaced once its count is back to 0.
        runtime = self.runtime
        in_flight = runtime.in_flight
        in_flight.count += 1
        try:
            if runtime.checking:
                runtime.start()  # no lifespan: the first request starts the health checks
            if (
                scope.get("method") == "OPTIONS"
                and scope.get("raw_path") == b"*"
                and not scope.get("query_string")
            ):
                if self.answers_as_server:  # Go's serverHandler, before any routing
                    await send_options_star(send)
                else:
                    await self.app(scope, receive, send)  # the server's business
                return
            forward: Forward | None = None
            if self.answers_as_server:
                try:
                    forward = prepare(scope, trusted=self._trusted)
                except InvalidRequest as error:
                    if kind == "websocket":
                        send = http_responses_as_websocket(scope, send)
                    await send_bad_request(send, error.reply)
                    return
            # Recorded by two calls around the routing, not a wrapping coroutine; and
            # the routing inline, not a coroutine of its own (bench/README.md).
            observer = self._observer
            exchange: Exchange | None = None
            if observer is not None:
                exchange = observer.begin(scope, forward)
            try:
                # The Host prepare found, unless the target was not in raw_path (where
                # prepare and the view may not read the same target).
                view = (
                    RequestView(scope, forward.host)
                    if forward is not None and scope.get("raw_path")
                    else RequestView(scope)
                )
                for route in runtime.index.candidates(view):
                    if route.rule.matches(view):
                        await self._serve(route, view, scope, receive, send, forward, exchange)
                        return
                if exchange is not None:
                    receive, send = exchange.counting(receive, send, kind == "websocket")
                await self.app(scope, receive, send)
            finally:
                if exchange is not None:
                    observer.end(scope, exchange)  # type: ignore[union-attr]
        finally:
            in_flight.count -= 1

    def _serve(
        self,
        route: Route,
        view: RequestView,
        scope: Scope,
        receive: Receive,
        send: Send,
        forward: Forward | None,
        exchange: Exchange | None,
    ) -> Awaitable[None]:
        """The awaitable that sends the request to ``route`` (whose rule matched)."""
        if route.children:
            route = route.under(view)
        scope = dict(scope)
        websocket = scope["type"] == "websocket"
        if exchange is not None:
            exchange.router = route.observed
            if websocket:
                receive, send = exchange.counting(receive, send, websocket)
        if websocket:
            send = http_responses_as_websocket(scope, send)
        if forward is None:
            try:
                forward = prepare(scope, trusted=self._trusted)
            except InvalidRequest as error:
                if exchange is not None and not websocket:
                    receive, send = exchange.counting(receive, send)
                return send_bad_request(send, error.reply)
        scope[FORWARD_KEY] = forward  # (context.set_forward, one call less)
        if websocket:
            # The WebSocket proxy watches the client itself (websocket.py).
            return route.handler(scope, receive, send)
        # An exchange is counted by serve_watched's own wrappers (no layer of its own).
        has_body = forward.chunked or bool(forward.content_length)  # (has_body, inline)
        return serve_watched(route.call, scope, receive, send, has_body=has_body, counted=exchange)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receiver() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.shutting_down = True  # /ping answers 503 from now on
            return message

        async def sender(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.runtime.start()
                self._reloader.start(watch=self.options.watch, throttle=self.options.throttle)
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.aclose()
            await send(message)

        await self.app(scope, receiver, sender)

    async def aclose(self) -> None:
        """Stop the health checks, wait (bounded) for mirror copies in flight, then
        close the clients (and stop watching the configuration)."""
        self.shutting_down = True
        await self._reloader.aclose()
        await self.runtime.aclose()
        if self.access_log is not None:
            self.access_log.close()
