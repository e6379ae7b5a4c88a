"""Kubernetes objects for tests, and ``serve --kubernetes`` in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from traefikservice_asgi.config import Config
from traefikservice_asgi.providers.kubernetes import Connection, KubernetesProvider

from .fake_apiserver import FakeApiServer
from .procs import stop_process
from .traefik import TraefikProcess, free_port

__all__ = [
    "KubeGateway",
    "Loads",
    "Scenario",
    "middleware",
    "route",
    "run_provider",
    "secret",
    "service",
    "slice_",
    "traefik_kube_routers",
    "weighted",
]

_WAIT = 20.0


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def slice_(name: str, port: int, *addresses: str, port_name: str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-abcde",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
    }


def weighted(v1: int, v2: int, *, sticky: bool = False) -> dict[str, Any]:
    """TraefikService ``default/canary``: app-v1 and app-v2 (port 80) at these weights."""
    spec: dict[str, Any] = {
        "services": [
            {"name": "app-v1", "port": 80, "weight": v1},
            {"name": "app-v2", "port": 80, "weight": v2},
        ]
    }
    if sticky:
        spec["sticky"] = {"cookie": {}}
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "TraefikService",
        "metadata": {"name": "canary", "namespace": "default"},
        "spec": {"weighted": spec},
    }


def route(
    name: str, host: str, service: dict[str, Any], middlewares: Sequence[str] = ()
) -> dict[str, Any]:
    """IngressRoute ``default/<name>``: ``Host(host)`` to ``service``, through the
    Middlewares named (``name`` or ``namespace/name``), in order."""
    rule: dict[str, Any] = {"match": f"Host(`{host}`)", "kind": "Rule", "services": [service]}
    if middlewares:
        rule["middlewares"] = [
            dict(zip(("namespace", "name"), m.split("/"), strict=True)) if "/" in m else {"name": m}
            for m in middlewares
        ]
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"entryPoints": ["web"], "routes": [rule]},
    }


def middleware(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """Middleware ``<namespace>/<name>`` of ``spec`` (``stripPrefix={...}``)."""
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def secret(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    """Secret ``<namespace>/<name>`` as the API sends it: ``data`` base64-encoded."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


Loads = Callable[[int], Awaitable[None]]
"""``await loads(n)``: wait (bounded) until the provider has handed on ``n`` configurations."""
Scenario = Callable[[FakeApiServer, list[Config], Loads], Awaitable[None]]


def run_provider(
    scenario: Scenario, *objs: dict[str, Any], faults: Sequence[int] = (), **provider: Any
) -> KubernetesProvider:
    """A :class:`KubernetesProvider` (in process, 50 ms throttle, ``provider`` its
    keywords) on a fake API server holding ``objs``; ``scenario`` runs once the first
    configuration is in, with the server, the configurations so far and ``loads``.
    ``faults``: status codes the first API requests answer."""
    with FakeApiServer(bookmark_interval=0.2) as api:
        api.put(*objs)
        api.fail_next.extend(faults)  # the first requests answer these (a 5xx)
        configs: list[Config] = []

        async def main() -> KubernetesProvider:
            prov = KubernetesProvider(
                Connection(api.url), configs.append, throttle=0.05, **provider
            )
            task = asyncio.create_task(prov.run())

            async def loads(n: int) -> None:
                for _ in range(400):  # bounded: 10 s
                    if len(configs) >= n:
                        return
                    await asyncio.sleep(0.025)
                raise AssertionError(f"{len(configs)} configurations, expected {n}")

            try:
                await loads(1)
                await scenario(api, configs, loads)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return prov

        return asyncio.run(main())


class KubeGateway:
    """``serve --kubernetes`` in a subprocess."""

    def __init__(
        self, api: FakeApiServer, log: Path, *, throttle: str = "0.5s", extra: Sequence[str] = ()
    ) -> None:
        self.port = free_port()
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "traefikservice_asgi",
                "serve",
                "--kubernetes",
                "--kubernetes-endpoint",
                api.url,
                "--port",
                str(self.port),
                "--kubernetes-throttle",
                throttle,
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log = log
        deadline = time.monotonic() + _WAIT
        while True:
            try:
                httpx.get(self.url, timeout=1.0)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"serve --kubernetes did not start:\n{log.read_text()}"
                    ) from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def traefik_kube_routers(
    objects: Sequence[dict[str, Any]],
    tmp_path: Path,
    *,
    routers: int = 1,
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The ``@kubernetescrd`` routers of the real Traefik's API (name, rule, status,
    error) once its kubernetesCRD provider (with ``options``) has read ``objects`` from a
    fake API server and made at least ``routers`` of them."""
    with FakeApiServer() as api:
        api.put(*objects)
        with TraefikProcess(
            {},
            tmp_path=tmp_path,
            kubernetes_endpoint=api.url,
            kubernetes_routers=routers,
            kubernetes_options=options,
            allow_router_errors=True,
        ) as traefik:
            return [r for r in traefik.routers if str(r.get("name")).endswith("@kubernetescrd")]
