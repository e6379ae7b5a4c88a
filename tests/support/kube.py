"""Kubernetes objects for tests, and ``serve --kubernetes`` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from .fake_apiserver import FakeApiServer
from .traefik import free_port

__all__ = ["KubeGateway", "route", "service", "slice_", "weighted"]

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


def route(name: str, host: str, service: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "entryPoints": ["web"],
            "routes": [{"match": f"Host(`{host}`)", "kind": "Rule", "services": [service]}],
        },
    }


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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
