"""The builder's hooks: count each server under its leaf service, and each health check
result as ``traefik_service_server_up``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..proxy import Server
from .metrics import Metrics
from .observe import ServerRecorder

__all__ = ["observe_servers", "record_server_up"]

PROVIDER = "kubernetescrd"


def observe_servers(metrics: Metrics, service: str, servers: Sequence[Server]) -> None:
    """Make each of ``servers`` count its exchanges under the leaf service ``service``."""
    stats = metrics.service(f"{service}@{PROVIDER}")
    for server in servers:
        server.recorder = ServerRecorder(server.url, stats, metrics)


class _RecordingStatus:
    """A balancer as its health checker sees it, recording every result."""

    __slots__ = ("balancer", "metrics", "service")

    def __init__(self, metrics: Metrics, service: str, balancer: Any) -> None:
        self.metrics = metrics
        self.service = service
        self.balancer = balancer

    def set_status(self, child: str, up: bool) -> None:
        self.metrics.server_up[(self.service, child)] = 1.0 if up else 0.0
        self.balancer.set_status(child, up)


def record_server_up(metrics: Metrics, service: str, balancer: Any) -> Any:
    """``balancer`` for its health checker: every result also sets the server's gauge."""
    return _RecordingStatus(metrics, f"{service}@{PROVIDER}", balancer)
