"""Human-readable routes and service trees, for ``check``."""

from __future__ import annotations

from .config import (
    Config,
    FailoverService,
    HRWService,
    MirroringService,
    Route,
    ServersService,
    Service,
    WeightedService,
)

__all__ = ["describe"]


def _label(service: Service) -> str:
    if isinstance(service, ServersService):
        sticky = f", sticky cookie {service.sticky.name}" if service.sticky else ""
        host = "" if service.pass_host_header else ", passHostHeader false"
        if service.transport is not None:
            t = service.transport
            host += f", serversTransport {t.namespace}/{t.name}"
        if service.health_check is not None:
            hc = service.health_check
            host += f", healthCheck {hc.method} {hc.path or '/'} every {hc.interval:g}s"
        servers = (
            ", ".join(f"{s} (fenced)" if s in service.fenced else s for s in service.servers)
            or "no server (503)"
        )
        return f"servers {service.name}: {servers} (from {service.source}{sticky}{host})"
    if isinstance(service, WeightedService):
        sticky = f", sticky cookie {service.sticky.name}" if service.sticky else ""
        return f"weighted {service.name}{sticky}"
    if isinstance(service, HRWService):
        return f"highestRandomWeight {service.name} (by client IP)"
    if isinstance(service, FailoverService):
        ranges = ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in service.status)
        on = f"on status {ranges}" if ranges else "on the main's health check only"
        return (
            f"failover {service.name} ({on}, maxRequestBodyBytes {service.max_request_body_bytes})"
        )
    return (
        f"mirroring {service.name} (mirrorBody {str(service.mirror_body).lower()}, "
        f"maxBodySize {service.max_body_size})"
    )


def _tree(service: Service, prefix: str, out: list[str]) -> None:
    entries: list[tuple[str, Service]] = []
    if isinstance(service, (WeightedService, HRWService)):
        entries = [(f"weight {c.weight}: ", c.service) for c in service.children]
    elif isinstance(service, FailoverService):
        entries = [("main: ", service.main), ("fallback: ", service.fallback)]
    elif isinstance(service, MirroringService):
        entries = [("main: ", service.main)]
        entries += [(f"mirror {m.percent} %: ", m.service) for m in service.mirrors]
    for i, (tag, child) in enumerate(entries):
        last = i == len(entries) - 1
        out.append(f"{prefix}{'└── ' if last else '├── '}{tag}{_label(child)}")
        _tree(child, prefix + ("    " if last else "│   "), out)


def _router(route: Route, prefix: str, out: list[str]) -> None:
    """A router's service tree, or (a parent) its child routers, each with its own."""
    if route.children:
        out.append(f"{prefix}└── child routers, in matching order (none matches: 404):")
        prefix += "    "
        for i, child in enumerate(route.children):
            last = i == len(route.children) - 1
            out.append(f"{prefix}{'└── ' if last else '├── '}{_heading(child)}")
            _router(child, prefix + ("    " if last else "│   "), out)
    elif route.service is not None:
        out.append(f"{prefix}└── {_label(route.service)}")
        _tree(route.service, prefix + "    ", out)


def _heading(route: Route) -> str:
    return (
        f"{route.rule.text}  (priority {route.priority}, router {route.name}, "
        f"{route.origin.file}:{route.origin.line})"
    )


def describe(config: Config) -> str:
    out = [f"{len(config.routes)} route(s), in matching order:"]
    for route in config.routes:
        out.append(_heading(route))
        _router(route, "", out)
    return "\n".join(out)
