"""What to observe: :class:`ObservabilityOptions`, inert data with Traefik's defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_ENTRY_POINT",
    "ObservabilityOptions",
]

DEFAULT_BUCKETS: tuple[float, ...] = (0.1, 0.3, 1.2, 5.0)
"""Traefik's ``metrics.prometheus.buckets`` default."""

DEFAULT_ENTRY_POINT = "web"
"""The name of the entry point the gateway plays (the ``entrypoint`` label)."""

DEFAULT_ADMIN_ENTRY_POINT = "traefik"
"""The entry point Traefik serves ``/metrics``, ``/ping`` and the API on by default."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservabilityOptions:
    """Traefik's ``metrics.prometheus`` and ``accessLog`` static options.

    ``metrics`` turns the Prometheus counters on (off: nothing is counted, at no cost);
    ``entry_point`` is the ``entrypoint`` label of the traffic, ``admin_entry_point`` the
    one of the admin listener; ``add_entry_points_labels``, ``add_services_labels`` and
    ``add_routers_labels`` are Traefik's switches (defaults true, true, false);
    ``buckets`` the histogram's upper bounds. ``access_log`` turns Traefik's access log
    on, in ``access_log_format`` (``common`` or ``json``) to ``access_log_file`` (None:
    standard output).
    """

    metrics: bool = False
    entry_point: str = DEFAULT_ENTRY_POINT
    admin_entry_point: str = DEFAULT_ADMIN_ENTRY_POINT
    add_entry_points_labels: bool = True
    add_services_labels: bool = True
    add_routers_labels: bool = False
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    access_log: bool = False
    access_log_format: str = "common"
    access_log_file: str | None = None

    def __post_init__(self) -> None:
        if self.access_log_format not in ("common", "json"):
            raise ValueError(
                f"access_log_format: must be 'common' or 'json', got {self.access_log_format!r}"
            )
        if list(self.buckets) != sorted(self.buckets) or not self.buckets:
            raise ValueError(f"buckets: must be a non-empty increasing list, got {self.buckets!r}")
        object.__setattr__(self, "buckets", tuple(float(b) for b in self.buckets))

    @property
    def enabled(self) -> bool:
        """Whether anything is observed per request."""
        return self.metrics or self.access_log
