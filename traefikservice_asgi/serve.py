"""Running the gateway under uvicorn, in one process or several.

The ``serve`` command only parses its options into a
:class:`~traefikservice_asgi.options.GatewayOptions` and calls :func:`run`, as uvicorn's
own CLI does. With ``workers > 1`` uvicorn needs an importable app factory
(``traefikservice_asgi.serve:app_from_env``); the configuration paths and the options
travel to each worker as JSON in two environment variables. The configuration is loaded
and validated once in the parent first, so a bad file is reported once and no worker
starts.

Each worker keeps its own balancer state (EDF schedule, sticky tables, mirror counters),
exactly as several Traefik replicas behind one Service do: the pick sequence of a
worker is Traefik's; the interleaving of the workers' sequences is the kernel's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .app import create_app
from .builder import build_runtime
from .config import Config
from .config.loader import read_config_files
from .entrypoint.server import DEFAULT_MAX_HEADER_BYTES, EntryPointConfig, RespondingTimeouts
from .middleware import TraefikServiceMiddleware, log_warnings
from .options import GatewayOptions
from .providers.kubernetes import DEFAULT_THROTTLE, Connection, KubernetesProvider
from .runtime import Runtime

__all__ = [
    "ENV_CONFIG",
    "ENV_OPTIONS",
    "app_from_env",
    "apply_config",
    "run",
    "run_kubernetes",
    "serve_kubernetes",
]

ENV_CONFIG = "TRAEFIKSERVICE_ASGI_CONFIG"
"""The configuration paths, as a JSON list, for the workers."""
ENV_OPTIONS = "TRAEFIKSERVICE_ASGI_OPTIONS"
"""The options, as :meth:`GatewayOptions.to_json` writes them, for the workers."""

logger = logging.getLogger("traefikservice_asgi.serve")


def _on_sighup(signum: int, frame: object) -> None:
    logger.warning(
        "SIGHUP received: configuration reload is not supported yet; restart to apply changes"
    )


def _freeze_startup_objects() -> None:
    """Move everything alive after startup (config, routes, modules) out of the garbage
    collector's view: it is never garbage, and scanning it on every full collection
    shows up as tail latency under load (bench/README.md). Only the ``serve`` process
    does this; a library user's process is left alone."""
    gc.collect()
    gc.freeze()


def app_from_env() -> TraefikServiceMiddleware:
    """The app factory each uvicorn worker imports (``--workers N``)."""
    paths, options = os.environ.get(ENV_CONFIG), os.environ.get(ENV_OPTIONS)
    if not paths or not options:
        raise RuntimeError(
            f"{ENV_CONFIG} or {ENV_OPTIONS} is not set: "
            "start workers with traefikservice_asgi.serve.run"
        )
    gateway_options = GatewayOptions.from_json(options)
    # Loaded here, not by create_app, so that the parent alone logs the warnings.
    config = gateway_options.load(json.loads(paths))
    app = create_app(config, gateway_options)
    _freeze_startup_objects()
    return app


def run(
    paths: Sequence[str],
    options: GatewayOptions | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = False,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    timeouts: RespondingTimeouts | None = None,
) -> TraefikServiceMiddleware:
    """Serve the gateway on the YAML files or folders ``paths`` until interrupted.
    Raises ``ConfigError`` before listening if the configuration is invalid; returns the
    (parent's) app for its warnings.

    Traefik trusts no client ``X-Forwarded-*`` by default, so uvicorn must not either
    (``proxy_headers``); it adds no ``Server`` header of its own and logs no access by
    default.

    The client side is Traefik's entry point (:mod:`.entrypoint.server`): the request
    head is bounded by ``max_header_bytes`` and connections by ``timeouts``.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    options = options or GatewayOptions()
    app = create_app(list(paths), options)  # validates: errors surface here, once
    _freeze_startup_objects()
    common: dict[str, Any] = {
        "max_header_bytes": max_header_bytes,
        "timeouts": timeouts or RespondingTimeouts(),
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
    }
    try:
        if workers <= 1:
            # SIGHUP would kill the process without a word; until live reload exists, say
            # so and keep serving. (With workers, uvicorn's supervisor restarts them.)
            hup = getattr(signal, "SIGHUP", None)
            main_thread = threading.current_thread() is threading.main_thread()
            previous = signal.signal(hup, _on_sighup) if hup and main_thread else None
            try:
                server = uvicorn.Server(EntryPointConfig(app, **common))
                server.run()
            finally:
                if hup and previous is not None:
                    signal.signal(hup, previous)
            if not server.started:
                raise RuntimeError(f"uvicorn could not start on {host}:{port}")
        else:  # as uvicorn.run does; the config (and its protocol) is each worker's
            os.environ[ENV_CONFIG] = json.dumps(list(paths))
            os.environ[ENV_OPTIONS] = options.to_json()
            config = EntryPointConfig(
                "traefikservice_asgi.serve:app_from_env", factory=True, workers=workers, **common
            )
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    except KeyboardInterrupt:
        pass
    return app


# -- the Kubernetes provider ---------------------------------------------------------------

_RETIRE_AFTER = 30.0
"""Seconds an old runtime keeps its clients after a swap, for the requests it serves."""
_retiring: set[asyncio.Task[None]] = set()


async def _retire(runtime: Runtime) -> None:
    await asyncio.sleep(_RETIRE_AFTER)
    await runtime.aclose()


def apply_config(app: TraefikServiceMiddleware, config: Config) -> None:
    """Make ``config`` the one ``app`` serves: the provider's callback.

    When the middleware has live reload (``reload(config)``, which keeps unchanged
    services' state), that is used.
    """
    reload = getattr(app, "reload", None)
    if reload is not None:
        summary = reload(config)
        logger.info("configuration reloaded: %s", summary)
        return
    # TEMPORARY, until live reload (branch `live`) lands: swap the whole runtime, as
    # Traefik rebuilds everything on each reload (balancers restart, health checks start
    # again). Requests in flight keep the runtime they started with; its clients are
    # closed _RETIRE_AFTER seconds later.
    log_warnings(config)
    old, runtime = app.runtime, build_runtime(config, app.options)
    app.config, app.runtime = config, runtime
    runtime.start()
    task = asyncio.get_running_loop().create_task(_retire(old))
    _retiring.add(task)
    task.add_done_callback(_retiring.discard)
    logger.info("configuration applied: %d route(s)", len(config.routes))


async def serve_kubernetes(
    provider_factory: Callable[[Callable[[Config], None]], KubernetesProvider],
    options: GatewayOptions,
    common: dict[str, Any],
) -> None:
    """Wait for the provider's first configuration, then serve it under uvicorn while the
    provider keeps watching; each later configuration goes to :func:`apply_config`."""
    import uvicorn

    first: asyncio.Future[Config] = asyncio.get_running_loop().create_future()
    app: TraefikServiceMiddleware | None = None

    def on_config(config: Config) -> None:
        if app is None:
            if not first.done():
                first.set_result(config)
        else:
            apply_config(app, config)

    provider = provider_factory(on_config)
    watching = asyncio.create_task(provider.run(), name="kubernetes provider")
    try:
        logger.info("waiting for the Kubernetes API's first configuration")
        either: set[asyncio.Future[Any]] = {first, watching}
        done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if watching in done:
            watching.result()  # the provider failed: raise its error
        app = create_app(first.result(), options)
        server = uvicorn.Server(EntryPointConfig(app, **common))
        await server.serve()
        if not server.started:
            raise RuntimeError(f"uvicorn could not start on {common['host']}:{common['port']}")
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        for task in list(_retiring):
            task.cancel()
        if app is not None:
            await app.aclose()


def run_kubernetes(
    connection: Connection,
    options: GatewayOptions | None = None,
    *,
    paths: Sequence[str] = (),
    namespaces: Sequence[str] = (),
    label_selector: str = "",
    throttle: float = DEFAULT_THROTTLE,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    access_log: bool = False,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    timeouts: RespondingTimeouts | None = None,
) -> None:
    """Serve the gateway on the configuration the Kubernetes API gives (and the YAML
    files or folders ``paths``, read once), until interrupted (one process: the replicas
    are the Deployment's). Raises ``ConfigError`` when a path cannot be read or the first
    load fails for a reason no API object is to blame for (a bad file)."""
    options = options or GatewayOptions()
    files: list[tuple[str, str]] = []
    if paths:
        files = read_config_files(list(paths))
    load_options = {
        "backends": options.backends,
        "allow_cross_namespace": options.allow_cross_namespace,
        "allow_external_name_services": options.allow_external_name_services,
        "ingress_class": options.ingress_class,
        "cluster_dns": options.cluster_dns,
    }

    def factory(on_config: Callable[[Config], None]) -> KubernetesProvider:
        return KubernetesProvider(
            connection,
            on_config,
            namespaces=namespaces,
            label_selector=label_selector,
            load_options=load_options,
            throttle=throttle,
            files=files,
        )

    common: dict[str, Any] = {
        "max_header_bytes": max_header_bytes,
        "timeouts": timeouts or RespondingTimeouts(),
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
    }
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_kubernetes(factory, options, common))
