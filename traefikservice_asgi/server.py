"""Running the gateway under uvicorn, in one process or several.

The ``serve`` command only parses options into :class:`GatewayOptions` and calls
:func:`run`, as uvicorn's own CLI does. With ``workers > 1`` uvicorn needs an importable
app factory (:func:`app_from_env`); the options travel to each worker as JSON in an
environment variable. The configuration is loaded and validated once in the parent
first, so a bad file is reported once and no worker starts.

Each worker keeps its own balancer state (EDF schedule, sticky tables, mirror counters),
exactly as several Traefik replicas behind one Service do: the pick sequence of a
worker is Traefik's; the interleaving of the workers' sequences is the kernel's.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ._mirror_pool import MirrorLimits
from .app import create_app
from .middleware import TraefikServiceMiddleware

__all__ = ["ENV_OPTIONS", "GatewayOptions", "app_from_env", "run"]

ENV_OPTIONS = "TRAEFIKSERVICE_ASGI_OPTIONS"


@dataclass(frozen=True)
class GatewayOptions:
    """Everything ``create_app`` needs, in a form that survives a trip through JSON."""

    paths: Sequence[str]
    backends: dict[str, list[str]] = field(default_factory=dict)
    allow_cross_namespace: bool = False
    forwarded_trusted_ips: Sequence[str] = ()
    forwarded_insecure: bool = False
    mirror_limits: MirrorLimits = field(default_factory=MirrorLimits)

    def create_app(self) -> TraefikServiceMiddleware:
        return create_app(
            list(self.paths),
            backends=self.backends,
            allow_cross_namespace=self.allow_cross_namespace,
            forwarded_trusted_ips=self.forwarded_trusted_ips,
            forwarded_insecure=self.forwarded_insecure,
            mirror_limits=self.mirror_limits,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> GatewayOptions:
        data = json.loads(text)
        data["mirror_limits"] = MirrorLimits(**data["mirror_limits"])
        return cls(**data)


def _freeze_startup_objects() -> None:
    """Move everything alive after startup (config, routes, modules) out of the garbage
    collector's view: it is never garbage, and scanning it on every full collection
    showed up as tail latency under load (p99 30-56 ms vs 26-35 ms, bench/README.md).
    Only the ``serve`` process does this; a library user's process is left alone."""
    gc.collect()
    gc.freeze()


def app_from_env() -> TraefikServiceMiddleware:
    """The app factory each uvicorn worker imports (``--workers N``)."""
    text = os.environ.get(ENV_OPTIONS)
    if not text:
        raise RuntimeError(
            f"{ENV_OPTIONS} is not set: start workers with traefikservice_asgi.server.run"
        )
    app = GatewayOptions.from_json(text).create_app()
    _freeze_startup_objects()
    return app


def run(
    options: GatewayOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = False,
) -> TraefikServiceMiddleware:
    """Serve the gateway until interrupted. Raises ``ConfigError`` before listening if
    the configuration is invalid; returns the (parent's) app for its warnings.

    Traefik trusts no client ``X-Forwarded-*`` by default, so uvicorn must not either
    (``proxy_headers``); it adds no ``Server`` header of its own and logs no access by
    default.
    """
    import uvicorn

    app = options.create_app()  # validates: errors surface here, once
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
    if workers <= 1:
        uvicorn.run(app, **common)  # type: ignore[arg-type]
    else:
        os.environ[ENV_OPTIONS] = options.to_json()
        uvicorn.run(
            "traefikservice_asgi.server:app_from_env",
            factory=True,
            workers=workers,
            **common,  # type: ignore[arg-type]
        )
    return app
