"""Serve any ASGI app under a real uvicorn server in a background thread.

    with serve_app(create_app(config=[...], backends={...})) as base_url:
        httpx.get(base_url, headers={"Host": "traefikservice-wrr.kubesre.lc"})

The server listens on a socket bound to 127.0.0.1:<ephemeral port> before the thread starts,
runs the app's lifespan (``lifespan="on"``: a failing startup is an error here), and is
stopped (graceful, then forced, both bounded) when the ``with`` block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

__all__ = ["GatewayError", "StartedServer", "serve_app", "serve_cli", "wait_for_copies"]

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0
_FORCE_STOP_TIMEOUT = 5.0


class StartedServer(uvicorn.Server):
    """A uvicorn server that says when it listens (``await server.ready.wait()``), for
    tests that run it on their own event loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


_DEFAULTS: dict[str, Any] = {
    "lifespan": "on",
    "proxy_headers": False,
    "server_header": False,
    "log_level": "warning",
}


class GatewayError(RuntimeError):
    """The app could not be served (startup failed or timed out), or did not stop."""


@contextlib.contextmanager
def serve_app(app: Any, **uvicorn_options: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1; yield its base URL ``http://127.0.0.1:PORT``.

    ``uvicorn_options`` are passed to ``uvicorn.Config`` and override the defaults
    ``lifespan="on", proxy_headers=False, server_header=False, log_level="warning"``.
    ``host``/``port``/``fd``/``uds`` are not accepted: the socket is always our own.
    """
    for forbidden in ("host", "port", "fd", "uds"):
        if forbidden in uvicorn_options:
            raise TypeError(f"serve_app() binds its own socket; {forbidden!r} is not accepted")
    config = uvicorn.Config(app, **{**_DEFAULTS, **uvicorn_options})
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit on startup failure, or anything else
            failure.append(exc)

    thread: threading.Thread | None = None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        thread = threading.Thread(target=run, name=f"uvicorn-127.0.0.1:{port}", daemon=True)
        thread.start()
        _wait_started(server, thread, port, failure)
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            if thread is not None:
                _stop(server, thread)
        finally:
            sock.close()


def wait_for_copies(app: Any, timeout: float = 5.0) -> None:
    """Block until the gateway ``app``, served by :func:`serve_app` in another thread,
    has no mirror copy in flight (its answers read, its connections released). The pool
    lives in the server thread's event loop, which the test cannot await, so its count is
    polled, with a deadline."""
    deadline = time.monotonic() + timeout
    while app.mirror_pool.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.mirror_pool.in_flight == 0, f"{app.mirror_pool.in_flight} copies still in flight"


def _wait_started(
    server: uvicorn.Server, thread: threading.Thread, port: int, failure: list[BaseException]
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise GatewayError(f"uvicorn exited during startup: {failure[0] if failure else '?'!r}")
        if time.monotonic() > deadline:
            raise GatewayError(f"uvicorn did not start within {_START_TIMEOUT}s")
        thread.join(0.01)
    while True:  # started => listening; check that a connection really is accepted
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise GatewayError(f"uvicorn does not accept connections: {exc}") from exc
            thread.join(0.01)


def _stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(_STOP_TIMEOUT)
    if thread.is_alive():
        server.force_exit = True
        thread.join(_FORCE_STOP_TIMEOUT)
    if thread.is_alive():
        raise GatewayError(f"uvicorn did not stop within {_STOP_TIMEOUT + _FORCE_STOP_TIMEOUT}s")


@contextlib.contextmanager
def serve_cli(
    paths: list[str],
    backends: dict[str, str],
    *extra_args: str,
    start_timeout: float = 20.0,
    check_exit: bool = False,
) -> Iterator[str]:
    """Run ``traefikservice-asgi serve PATHS --backend ...`` as a subprocess on a free
    127.0.0.1 port; yield its base URL once it answers; stop it by PID (SIGINT, then kill).
    With ``check_exit``, a serve that does not exit 0 on SIGINT is an error."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    args = [
        sys.executable,
        "-m",
        "traefikservice_asgi",
        "serve",
        *paths,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra_args,
    ]
    for key, url in backends.items():
        args += ["--backend", f"{key}={url}"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    completed = False
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise GatewayError(f"serve exited with {proc.returncode}:\n{output}")
            try:
                httpx.get(
                    f"http://127.0.0.1:{port}/", headers={"Host": "readiness.invalid"}, timeout=1
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise GatewayError(f"serve did not answer within {start_timeout} s") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        completed = True
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_FORCE_STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
    if check_exit and completed and proc.returncode != 0:
        raise GatewayError(f"serve exited with {proc.returncode} on SIGINT, not 0")
