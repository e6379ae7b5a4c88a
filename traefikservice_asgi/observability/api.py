"""A read-only subset of Traefik 3.7's API (``pkg/api``), in its JSON shapes:
``/api/version``, ``/api/overview``, ``/api/rawdata``, ``/api/http/routers[/{name}]``,
``/api/http/services[/{name}]``. Names are provider-qualified (``…@kubernetescrd``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..config import (
    FailoverService,
    HRWService,
    MirroringService,
    Route,
    ServersService,
    Service,
    WeightedService,
)

if TYPE_CHECKING:
    from ..middleware import TraefikServiceMiddleware

__all__ = ["TRAEFIK_VERSION", "Api"]

TRAEFIK_VERSION = "3.7.15"
CODENAME = "langres"
PROVIDER = "kubernetescrd"
_OBSERVABILITY = {
    "accessLogs": True,
    "metrics": True,
    "tracing": True,
    "traceVerbosity": "minimal",
}


def _q(name: str) -> str:
    return f"{name}@{PROVIDER}"


class Api:
    """Answers computed from the middleware's current configuration."""

    def __init__(self, gateway: TraefikServiceMiddleware) -> None:
        self.gateway = gateway
        self.start = time.time()

    def answer(self, path: str, query: bytes) -> Any | None:
        path = path.rstrip("/")
        if path == "/api/version":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.start))
            return {"Version": TRAEFIK_VERSION, "Codename": CODENAME, "startDate": stamp + "Z"}
        routers, services = self._routers(), self._services()
        if path == "/api/overview":
            return self._overview(routers, services)
        if path == "/api/rawdata":
            return {"routers": routers, "services": services}
        for prefix, table in (("/api/http/routers", routers), ("/api/http/services", services)):
            if path == prefix:
                return [dict(value, name=name) for name, value in sorted(table.items())]
            if path.startswith(prefix + "/"):
                name = unquote(path[len(prefix) + 1 :])
                found = table.get(name)
                return None if found is None else dict(found, name=name)
        return None

    def _routers(self) -> dict[str, Any]:
        entry_point = self.gateway.observability.entry_point
        out: dict[str, Any] = {}
        for route in _every_router(self.gateway.config.routes):
            out[_q(route.name)] = {
                "entryPoints": [entry_point],
                **({"service": route.service.name} if route.service is not None else {}),
                "rule": route.rule.text,
                "priority": route.priority,
                "observability": dict(_OBSERVABILITY),
                "status": "enabled",
                "using": [entry_point],
                "provider": PROVIDER,
                "priorityStr": str(route.priority),
            }
        return out

    def _services(self) -> dict[str, Any]:
        out: dict[str, Any] = {}

        def walk(service: Service) -> None:
            name = _q(service.name)
            if name in out:
                return
            entry: dict[str, Any]
            if isinstance(service, ServersService):
                balancer: dict[str, Any] = {
                    "servers": [
                        {"url": url, "fenced": True} if url in service.fenced else {"url": url}
                        for url in service.servers
                    ],
                    "strategy": service.strategy,
                    "passHostHeader": service.pass_host_header,
                    "responseForwarding": {"flushInterval": "100ms"},
                }
                entry = {"loadBalancer": balancer, "type": "loadbalancer"}
                entry["serverStatus"] = self._server_status(name, service.servers)
            elif isinstance(service, WeightedService):
                entry = {
                    "weighted": {
                        "services": [{"name": c.name, "weight": c.weight} for c in service.children]
                    },
                    "type": "weighted",
                }
                for child in service.children:
                    walk(child.service)
            elif isinstance(service, HRWService):
                entry = {
                    "highestRandomWeight": {
                        "services": [{"name": c.name, "weight": c.weight} for c in service.children]
                    },
                    "type": "highestrandomweight",
                }
                for child in service.children:
                    walk(child.service)
            elif isinstance(service, MirroringService):
                entry = {
                    "mirroring": {
                        "service": service.main.name,
                        "mirrorBody": service.mirror_body,
                        "maxBodySize": service.max_body_size,
                        "mirrors": [
                            {"name": m.name, "percent": m.percent} for m in service.mirrors
                        ],
                    },
                    "type": "mirroring",
                }
                walk(service.main)
                for mirror in service.mirrors:
                    walk(mirror.service)
            elif isinstance(service, FailoverService):
                entry = {
                    "failover": {"service": service.main_name, "fallback": service.fallback_name},
                    "type": "failover",
                }
                walk(service.main)
                walk(service.fallback)
            else:  # pragma: no cover - every kind is above
                entry = {}
            entry["status"] = "enabled"
            entry["provider"] = PROVIDER
            out[name] = entry

        used: dict[str, list[str]] = {}
        for route in _every_router(self.gateway.config.routes):
            if route.service is None:
                continue  # a parent router (parentRefs): its children have the services
            walk(route.service)
            used.setdefault(_q(route.service.name), []).append(_q(route.name))
        for name, routers in used.items():  # Traefik lists only the routers' own services
            out[name]["usedBy"] = sorted(set(routers))
        return out

    def _server_status(self, service: str, urls: tuple[str, ...]) -> dict[str, str]:
        metrics = self.gateway.metrics
        status = {url: "UP" for url in urls}
        if metrics is None:
            return status
        for (name, url), value in metrics.server_up.items():
            if name == service:
                status[url] = "UP" if value else "DOWN"
        return status

    @staticmethod
    def _overview(routers: dict[str, Any], services: dict[str, Any]) -> dict[str, Any]:
        zero = {"total": 0, "warnings": 0, "errors": 0}
        return {
            "http": {
                "routers": dict(zero, total=len(routers)),
                "services": dict(zero, total=len(services)),
                "middlewares": dict(zero),
            },
            "tcp": {"routers": dict(zero), "services": dict(zero), "middlewares": dict(zero)},
            "udp": {"routers": dict(zero), "services": dict(zero)},
            "certificates": dict(zero),
            "features": {"tracing": "", "metrics": "Prometheus", "accessLog": True},
            "providers": ["KubernetesCRD"],
        }


def _every_router(routes: Sequence[Route]) -> Iterator[Route]:
    """Every router, parents (multi-layer routing) followed by their children."""
    for route in routes:
        yield route
        yield from _every_router(route.children)
