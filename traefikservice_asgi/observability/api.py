"""A read-only subset of Traefik 3.7's API (``pkg/api``), in its JSON shapes:
``/api/version``, ``/api/overview``, ``/api/rawdata``, ``/api/http/routers[/{name}]``,
``/api/http/services[/{name}]``. Names are provider-qualified (``…@kubernetescrd``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..config import (
    FailoverService,
    HRWService,
    MirroringService,
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
        out: dict[str, Any] = {}
        for route in self.gateway.config.routes:
            out[_q(route.name)] = {
                "entryPoints": [self.gateway.observability.entry_point],
                "service": route.service.name,
                "rule": str(getattr(route.rule, "source", route.rule)),
                "priority": route.priority,
                "status": "enabled",
                "using": [self.gateway.observability.entry_point],
                "provider": PROVIDER,
            }
        return out

    def _services(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        used: dict[str, list[str]] = {}

        def walk(service: Service, router: str) -> None:
            name = _q(service.name)
            users = used.setdefault(name, [])
            if router not in users:
                users.append(router)
            if name in out:
                return
            entry: dict[str, Any]
            if isinstance(service, ServersService):
                entry = {
                    "loadBalancer": {
                        "servers": [{"url": url} for url in service.servers],
                        "passHostHeader": service.pass_host_header,
                    },
                    "type": "loadbalancer",
                }
                servers = self._server_status(name, service.servers)
                if servers is not None:
                    entry["serverStatus"] = servers
            elif isinstance(service, WeightedService):
                entry = {
                    "weighted": {
                        "services": [{"name": c.name, "weight": c.weight} for c in service.children]
                    },
                    "type": "weighted",
                }
                for child in service.children:
                    walk(child.service, router)
            elif isinstance(service, HRWService):
                entry = {"type": "highestrandomweight"}
                for child in service.children:
                    walk(child.service, router)
            elif isinstance(service, MirroringService):
                entry = {
                    "mirroring": {
                        "service": service.main.name,
                        "mirrors": [
                            {"name": m.name, "percent": m.percent} for m in service.mirrors
                        ],
                    },
                    "type": "mirroring",
                }
                walk(service.main, router)
                for mirror in service.mirrors:
                    walk(mirror.service, router)
            elif isinstance(service, FailoverService):
                entry = {
                    "failover": {"service": service.main.name, "fallback": service.fallback.name},
                    "type": "failover",
                }
                walk(service.main, router)
                walk(service.fallback, router)
            else:  # pragma: no cover - every kind is above
                entry = {}
            entry["status"] = "enabled"
            entry["provider"] = PROVIDER
            out[name] = entry

        for route in self.gateway.config.routes:
            walk(route.service, _q(route.name))
        for name, entry in out.items():
            entry["usedBy"] = sorted(used.get(name, []))
        return out

    def _server_status(self, service: str, urls: tuple[str, ...]) -> dict[str, str] | None:
        metrics = self.gateway.metrics
        if metrics is None:
            return {url: "UP" for url in urls}
        status = {url: "UP" for url in urls}
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
