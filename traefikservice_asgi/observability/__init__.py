"""Observability as Traefik 3.7 offers it: Prometheus metrics with Traefik's names,
``/ping``, a read-only API and access logs (see docs/reference/metrics.md)."""

from .accesslog import AccessLog
from .admin import AdminApp
from .metrics import Metrics, MetricsCollector
from .observe import Observer, ServerRecorder
from .options import DEFAULT_BUCKETS, ObservabilityOptions

__all__ = [
    "DEFAULT_BUCKETS",
    "AccessLog",
    "AdminApp",
    "Metrics",
    "MetricsCollector",
    "ObservabilityOptions",
    "Observer",
    "ServerRecorder",
]
