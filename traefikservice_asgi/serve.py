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

import gc
import json
import os
import shutil
import tempfile
from collections.abc import Sequence

from .app import create_app
from .middleware import TraefikServiceMiddleware
from .observability.workers import ENV_METRICS_DIR, SnapshotWriter, WithSnapshots
from .options import GatewayOptions

__all__ = ["ENV_CONFIG", "ENV_OPTIONS", "app_from_env", "run"]

ENV_CONFIG = "TRAEFIKSERVICE_ASGI_CONFIG"
"""The configuration paths, as a JSON list, for the workers."""
ENV_OPTIONS = "TRAEFIKSERVICE_ASGI_OPTIONS"
"""The options, as :meth:`GatewayOptions.to_json` writes them, for the workers."""


def _freeze_startup_objects() -> None:
    """Move everything alive after startup (config, routes, modules) out of the garbage
    collector's view: it is never garbage, and scanning it on every full collection
    shows up as tail latency under load (bench/README.md). Only the ``serve`` process
    does this; a library user's process is left alone."""
    gc.collect()
    gc.freeze()


def app_from_env() -> TraefikServiceMiddleware | WithSnapshots:
    """The app factory each uvicorn worker imports (``--workers N``); with an admin
    port, its counters are written where the parent's ``/metrics`` adds them up."""
    paths, options = os.environ.get(ENV_CONFIG), os.environ.get(ENV_OPTIONS)
    if not paths or not options:
        raise RuntimeError(
            f"{ENV_CONFIG} or {ENV_OPTIONS} is not set: "
            "start workers with traefikservice_asgi.serve.run"
        )
    app = create_app(json.loads(paths), GatewayOptions.from_json(options))
    _freeze_startup_objects()
    directory = os.environ.get(ENV_METRICS_DIR)
    if directory and app.metrics is not None:
        return WithSnapshots(app, SnapshotWriter(app.metrics, directory))
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
    """
    import uvicorn

    options = options or GatewayOptions()
    app = create_app(list(paths), options)  # validates: errors surface here, once
    _freeze_startup_objects()
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
    }
    if admin_port is not None and workers <= 1:
        from .observability.serving import run_with_admin

        run_with_admin(app, common, admin_host, admin_port)
    elif workers <= 1:
        uvicorn.run(app, **common)  # type: ignore[arg-type]
    else:
        os.environ[ENV_CONFIG] = json.dumps(list(paths))
        os.environ[ENV_OPTIONS] = options.to_json()
        stop_admin = None
        if admin_port is not None:  # the parent serves the sum of the workers' counters
            from .observability.serving import start_admin_thread

            directory = tempfile.mkdtemp(prefix="traefikservice-asgi-metrics-")
            os.environ[ENV_METRICS_DIR] = directory
            stop_admin = start_admin_thread(app, port, admin_host, admin_port, directory)
        try:
            uvicorn.run(
                "traefikservice_asgi.serve:app_from_env",
                factory=True,
                workers=workers,
                **common,  # type: ignore[arg-type]
            )
        finally:
            if stop_admin is not None:
                stop_admin()
                shutil.rmtree(os.environ.pop(ENV_METRICS_DIR), ignore_errors=True)
    return app
