"""Running the gateway under uvicorn, in one process or several.

The ``serve`` command only parses its options into a
:class:`~traefikservice_asgi.options.GatewayOptions` and calls :func:`run`, as uvicorn's
own CLI does. With ``workers > 1`` uvicorn needs an importable app factory
(``traefikservice_asgi.serve:app_from_env``); the configuration paths and the options
travel to each worker as JSON in two environment variables. The configuration is loaded
and validated once in the parent first, so a bad file is reported once and no worker
starts.

Live configuration: the files are watched (``options.watch``, on for the ``serve``
command), and ``SIGHUP`` reloads them at once, in place: with one worker the gateway's
own loop handles it; with several, the parent process (uvicorn's supervisor, which
would restart its workers on ``SIGHUP``) forwards it to each worker instead, so no
process restarts and every worker keeps its balancer state (see ``reload.py``). Each
worker watches the files itself.

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
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from .app import create_app
from .config import Config
from .config.loader import read_config_files
from .entrypoint.server import DEFAULT_MAX_HEADER_BYTES, EntryPointConfig, RespondingTimeouts
from .exceptions import ConfigError
from .middleware import TraefikServiceMiddleware, log_warnings
from .middlewares.plugin import plugin_problem
from .observability.workers import ENV_METRICS_DIR, SnapshotWriter, WithSnapshots
from .options import GatewayOptions
from .providers.kubernetes import DEFAULT_THROTTLE, Connection, KubernetesProvider

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


YOUNG_COLLECTION_THRESHOLD = 50_000
"""``serve``'s threshold of young (generation 0) collections, CPython's 700 otherwise.

A young collection walks every young object alive, and under load those are the
requests in flight: at 64 concurrent connections, CPython's default made a collection
every few dozen requests, each walking all of them, about a tenth of ``serve``'s
instructions per request (bench/README.md). A request leaves no reference cycles
(tests/test_reference_cycles.py), so collecting less often frees nothing later that
mattered; the rare cyclic garbage (an exception's traceback) waits for the next one."""


def _freeze_startup_objects() -> None:
    """Move everything alive after startup (config, routes, modules) out of the garbage
    collector's view: it is never garbage, and scanning it on every full collection
    shows up as tail latency under load (bench/README.md); and make young collections
    rare (:data:`YOUNG_COLLECTION_THRESHOLD`). Only the ``serve`` process does this; a
    library user's process is left alone."""
    gc.collect()
    gc.freeze()
    _collect_young_rarely()


def _collect_young_rarely() -> None:
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def app_from_env() -> TraefikServiceMiddleware | WithSnapshots:
    """The app factory each uvicorn worker imports (``--workers N``); with an admin
    port, its counters are written where the parent's ``/metrics`` adds them up."""
    paths, options = os.environ.get(ENV_CONFIG), os.environ.get(ENV_OPTIONS)
    if not paths or not options:
        raise RuntimeError(
            f"{ENV_CONFIG} or {ENV_OPTIONS} is not set: "
            "start workers with traefikservice_asgi.serve.run"
        )
    _hold_sighup()
    if not logging.getLogger().handlers:  # a spawned worker: log as the parent does (cli.py)
        logging.basicConfig(
            level=logging.getLogger("uvicorn.error").getEffectiveLevel(),
            format="%(levelname)s: %(name)s: %(message)s",
        )
    app = create_app(json.loads(paths), GatewayOptions.from_json(options))
    app.reloader.enable_sighup()
    _freeze_startup_objects()
    directory = os.environ.get(ENV_METRICS_DIR)
    if directory and app.metrics is not None:
        return WithSnapshots(app, SnapshotWriter(app.metrics, directory))
    return app


def _hold_sighup() -> None:
    """Ignore ``SIGHUP`` until the lifespan installs the reload handler: its default
    action would end the process."""
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _forwarding_supervisor(config: Any, sockets: list[Any]) -> Any:
    """uvicorn's multi-process supervisor, except that ``SIGHUP`` is passed on to every
    worker (each reloads its configuration in place) instead of restarting them."""
    from uvicorn.supervisors import Multiprocess

    class ForwardingSupervisor(Multiprocess):
        def handle_hup(self) -> None:
            pids = [process.pid for process in self.processes if process.pid is not None]
            logging.getLogger("traefikservice_asgi.reload").info(
                "SIGHUP: reloading the configuration in workers %s", pids
            )
            for pid in pids:
                # A worker that just died is restarted by uvicorn, with the new files.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)

    return ForwardingSupervisor(config, sockets=sockets)


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
    admin_port: int | None = None,
    admin_host: str = "127.0.0.1",
) -> TraefikServiceMiddleware:
    """Serve the gateway on the YAML files or folders ``paths`` until interrupted.
    Raises ``ConfigError`` before listening if the configuration is invalid; returns the
    (parent's) app for its warnings.

    Traefik trusts no client ``X-Forwarded-*`` by default, so uvicorn must not either
    (``proxy_headers``); it adds no ``Server`` header of its own and logs no access by
    default. ``access_log`` here is uvicorn's own; Traefik's is an observability
    option. ``admin_port``: serve ``/metrics``, ``/ping`` and ``/api/*`` there.

    The client side is Traefik's entry point (:mod:`.entrypoint.server`): the request
    head is bounded by ``max_header_bytes`` and connections by ``timeouts``.
    """
    import uvicorn

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
    _hold_sighup()
    try:
        if workers <= 1:
            app.reloader.enable_sighup()
            config = EntryPointConfig(app, **common)
            if admin_port is not None:
                from .observability.serving import run_with_admin

                started = run_with_admin(app, config, admin_host, admin_port)
            else:
                server = uvicorn.Server(config)
                server.run()
                started = server.started
            if not started:
                raise RuntimeError(f"uvicorn could not start on {host}:{port}")
        else:
            os.environ[ENV_CONFIG] = json.dumps(list(paths))
            os.environ[ENV_OPTIONS] = options.to_json()
            stop_admin = None
            if admin_port is not None:  # the parent serves the sum of the workers' counters
                from .observability.serving import start_admin_thread

                directory = tempfile.mkdtemp(prefix="traefikservice-asgi-metrics-")
                os.environ[ENV_METRICS_DIR] = directory
                stop_admin = start_admin_thread(app, port, admin_host, admin_port, directory)
            # uvicorn.run's multi-process branch, with SIGHUP forwarded, not restarting;
            # the config (and its entry point protocol) is each worker's.
            config = EntryPointConfig(
                "traefikservice_asgi.serve:app_from_env", factory=True, workers=workers, **common
            )
            sock = config.bind_socket()
            try:
                _forwarding_supervisor(config, [sock]).run()
            finally:
                sock.close()
                if stop_admin is not None:
                    stop_admin()
                    shutil.rmtree(os.environ.pop(ENV_METRICS_DIR), ignore_errors=True)
    except KeyboardInterrupt:
        pass
    return app


# -- the Kubernetes provider ---------------------------------------------------------------

_applying: set[asyncio.Task[None]] = set()
"""The live reloads the provider started, held until they end."""


def apply_config(app: TraefikServiceMiddleware, config: Config) -> None:
    """Make ``config`` the one ``app`` serves: the provider's callback. A live reload
    (:meth:`TraefikServiceMiddleware.reload`): built to the side, swapped at once,
    unchanged services keep their state; reloads apply one at a time, in order."""
    log_warnings(config)
    task = asyncio.get_running_loop().create_task(_reload(app, config))
    _applying.add(task)
    task.add_done_callback(_applying.discard)


async def _reload(app: TraefikServiceMiddleware, config: Config) -> None:
    # A refused one is logged by the reloader; the last good configuration keeps serving.
    with contextlib.suppress(ConfigError):
        await app.reload(config)  # logs its one-line summary


async def serve_kubernetes(
    provider_factory: Callable[[Callable[[Config], None]], KubernetesProvider],
    options: GatewayOptions,
    common: dict[str, Any],
    *,
    admin_port: int | None = None,
    admin_host: str = "127.0.0.1",
) -> None:
    """Wait for the provider's first configuration, then serve it under uvicorn while the
    provider keeps watching; each later configuration goes to :func:`apply_config`.
    ``admin_port``: serve the admin app (``/metrics``, ``/ping``, ``/api/*``) there, on
    the same loop, from the first configuration on (so ``/ping`` is a readiness probe)."""
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
        if admin_port is not None:
            from .observability.serving import serve_with_admin

            await serve_with_admin(app, server, admin_host, admin_port)
        else:
            await server.serve()
        if not server.started:
            raise RuntimeError(f"uvicorn could not start on {common['host']}:{common['port']}")
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        for task in list(_applying):
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
    admin_port: int | None = None,
    admin_host: str = "127.0.0.1",
) -> None:
    """Serve the gateway on the configuration the Kubernetes API gives (and the YAML
    files or folders ``paths``, read once), until interrupted (one process: the replicas
    are the Deployment's). Raises ``ConfigError`` when a path cannot be read or the first
    load fails for a reason no API object is to blame for (a bad file).
    ``admin_port``: serve ``/metrics``, ``/ping`` and ``/api/*`` there once the first
    configuration is loaded (the pod's probes)."""
    options = options or GatewayOptions()
    _collect_young_rarely()  # (the reloads freeze what the API's configurations build)
    files: list[tuple[str, str]] = []
    if paths:
        files = read_config_files(list(paths))
    load_options = {
        "backends": options.backends,
        "allow_cross_namespace": options.allow_cross_namespace,
        "allow_external_name_services": options.allow_external_name_services,
        "ingress_class": options.ingress_class,
        "cluster_dns": options.cluster_dns,
        "plugins": plugin_problem,
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
        asyncio.run(
            serve_kubernetes(factory, options, common, admin_port=admin_port, admin_host=admin_host)
        )
