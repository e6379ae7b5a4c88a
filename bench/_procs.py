"""Starting and stopping the benchmark's servers: backends, our gateway, the naive proxy.

Every process is started with its output in a log file under the run's temporary folder
and registered on an ``ExitStack`` that terminates it (then kills it) by its own PID, so
nothing outlives the benchmark, even on Ctrl-C. Readiness is polled with a deadline, never
a fixed sleep. Traefik itself is started through ``tests/support/traefik.py``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:  # tests/ (shared process helpers, Traefik)
    sys.path.append(str(BENCH_DIR.parent))

from tests.support.procs import stop_process  # noqa: E402

_READY_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
# Loopback probes must never go through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class Server:
    """A running server: where it listens and which process to account CPU to."""

    name: str
    url: str
    pid: int


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(
    url: str,
    host: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
) -> tuple[int, dict[str, str], bytes]:
    """One GET (status, lower-cased headers, body); HTTP errors are answers, not exceptions."""
    sent = {**(headers or {}), **({"Host": host} if host else {})}
    request = urllib.request.Request(url, headers=sent)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers.items()), exc.read()


def _lower(items: object) -> dict[str, str]:
    """Headers with lower-case names (servers differ in case)."""
    return {str(k).lower(): str(v) for k, v in items}  # type: ignore[attr-defined]


def wait_ready(server: Server, proc: subprocess.Popen[bytes], host: str | None, log: Path) -> None:
    """Poll ``server`` until it answers 200 (for ``host``); fail with the log's tail."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError):
            if get(server.url, host, timeout=1.0)[0] == 200:
                return
        time.sleep(0.05)  # poll interval of a bounded wait
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{server.name} did not become ready at {server.url}:\n{tail}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` by its PID, kill it if it does not go within 5 s (the tests'
    own :func:`tests.support.procs.stop_process`)."""
    stop_process(proc, _STOP_TIMEOUT, _STOP_TIMEOUT)


def spawn(
    stack: contextlib.ExitStack,
    name: str,
    command: list[str],
    *,
    logs: Path,
    host: str | None = None,
    env: dict[str, str] | None = None,
    port: int,
) -> Server:
    """Start ``command`` (listening on ``port``), stop it when ``stack`` closes, wait ready."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    stack.callback(stop, proc)
    server = Server(name, f"http://127.0.0.1:{port}/", proc.pid)
    wait_ready(server, proc, host, log)
    return server


def uvicorn_command(app: str, port: int, *, fast: bool = True) -> list[str]:
    """uvicorn serving ``bench/<app>``, 1 process, no access log, no proxy-header trust."""
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), app]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log", "--no-proxy-headers", "--no-server-header", "--lifespan", "off"]
    if fast:
        command += ["--loop", "uvloop", "--http", "httptools"]
    return command


def gateway_executable() -> str:
    """The ``traefikservice-asgi`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "traefikservice-asgi"
    found = str(beside) if beside.exists() else shutil.which("traefikservice-asgi")
    if found is None:
        raise RuntimeError("traefikservice-asgi not installed: pip install -e .")
    return found


def gateway_supports_workers() -> bool:
    """Whether ``traefikservice-asgi serve`` has a ``--workers`` option (it may not yet)."""
    done = subprocess.run(
        [gateway_executable(), "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return "--workers" in done.stdout


def gateway_command(
    config: Path, backends: dict[str, str], port: int, workers: int | None
) -> list[str]:
    """``traefikservice-asgi serve`` on ``config``; ``--workers`` only when asked for."""
    command = [gateway_executable(), "serve", str(config), "--port", str(port)]
    command += ["--log-level", "warning"]
    for key, url in backends.items():
        command += ["--backend", f"{key}={url}"]
    if workers is not None:
        command += ["--workers", str(workers)]
    return command
