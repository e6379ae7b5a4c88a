"""Instructions per request, counted by valgrind: a measure the shared machine's noise
cannot move.

Timings on these machines move by 10-20 % with what else runs; the number of
instructions a request costs does not. This runs the whole gateway in process
(``create_app`` on bench/config/routes.yaml, called as an ASGI app, to a real backend
in another process, as ``bench/metrics_cost.py`` does) under ``valgrind
--tool=callgrind``, twice per variant (``--small`` and ``--large`` requests), and
reports the difference divided by the difference in requests: the instructions of one
request, start-up and warm-up cancelled out. The garbage collector is off in the
measured process, so that a collection landing in one run and not the other does not
show up as a cost; ``--gc`` keeps it on, to see what the garbage a request leaves
behind (reference cycles) costs in collections.

Variants: ``wrr`` (the weighted route), ``wrr-metrics`` (the same with Traefik's
metrics recorded), ``mw`` (the weighted route behind stripPrefix, headers and
rateLimit). The ratios to ``wrr`` are the costs of metrics and of the middleware chain.
The HTTP server in front (``serve``) is not included in these: its work is the same for
every variant, so the ratios here are upper bounds of the ratios under ``wrk``.

The ``serve-`` variants (``serve-wrr``, ``serve-wrr-metrics``, ``serve-mw``) count the
whole ``traefikservice-asgi serve`` process instead, as ``bench/run.py`` runs it (the
entry point's HTTP server, its threads, ``--admin-port`` for the metrics one), driven
over 16 keep-alive connections by a client in this (unmeasured) process: what ``wrk``
measures, without the machine's noise.

    python bench/instructions.py [--small 320] [--large 1600] [--baseline REV] [--gc] [VARIANT ...]

``--baseline REV`` measures the code at ``REV`` too (``git archive``, on its own bench
routes) and prints ours over base per variant.

Needs valgrind (Debian's ``valgrind``); a run takes about a minute per variant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VARIANTS = {
    # name: (Host, path, metrics)
    "wrr": ("wrr.bench", "/", False),
    "wrr-metrics": ("wrr.bench", "/", True),
    "mw": ("mw.bench", "/mw/", False),
}
SERVE = "serve-"
CONNECTIONS = 16
# The measured ``serve``: its console script's ``main`` with the collector off for good
# (serve enables it again after building a runtime; a collection is not a request's cost).
_SERVE_MAIN = (
    "import gc, os, sys\n"
    "if not os.environ.get('BENCH_KEEP_GC'): gc.disable(); gc.enable = lambda: None\n"
    "from traefikservice_asgi.cli import main; sys.argv[0] = 'traefikservice-asgi'; main()"
)
KEEP_GC = "BENCH_KEEP_GC"
"""Set (``--gc``): the measured process keeps its collector, whose runs then count: the
cost of the garbage a request leaves to it (reference cycles, objects kept alive)."""


def child(url: str, variant: str, count: int, routes: Path) -> None:
    """The measured process: ``count`` requests of ``variant``, 16 at a time."""
    import uvloop

    from traefikservice_asgi import create_app

    if not os.environ.get(KEEP_GC):
        gc.disable()
    host, path, metrics = VARIANTS[variant]
    headers = [(b"host", host.encode()), (b"user-agent", b"wrk"), (b"accept", b"*/*")]

    async def run() -> None:
        backends = {f"default/{name}:80": url for name in ("app-v1", "app-v2")}
        extra: dict[str, Any] = {}
        if metrics:  # (asked only when measured: older checkouts, as --baseline, lack it)
            from traefikservice_asgi.observability import ObservabilityOptions

            extra["observability"] = ObservabilityOptions(metrics=True)
        app = create_app([str(routes)], backends=backends, **extra)
        never = asyncio.Event()

        async def send(message: Any) -> None:
            return None

        async def worker(requests: int) -> None:
            for _ in range(requests):
                scope = {
                    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                    "method": "GET", "scheme": "http", "path": path,
                    "raw_path": path.encode(), "query_string": b"", "root_path": "",
                    "headers": headers, "client": ("127.0.0.1", 40000),
                    "server": ("127.0.0.1", 8000),
                }  # fmt: skip
                first = True

                async def receive() -> Any:
                    nonlocal first
                    if first:
                        first = False
                        return {"type": "http.request", "body": b"", "more_body": False}
                    await never.wait()

                await app(scope, receive, send)

        await asyncio.gather(*(worker(count // 16) for _ in range(16)))
        await app.aclose()

    uvloop.run(run())


_VALGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]


def _collected(stderr: str) -> int:
    match = re.search(r"Collected : (\d+)", stderr)
    assert match, stderr[-2000:]
    return int(match.group(1))


def _instructions(code: Path, routes: Path, url: str, variant: str, count: int) -> int:
    """Instructions of a child run of ``count`` requests, the package from ``code``."""
    if variant.startswith(SERVE):
        return _serve_instructions(code, routes, url, variant.removeprefix(SERVE), count)
    out = subprocess.run(
        [*_VALGRIND, sys.executable, __file__, "--child", url, variant, str(count), str(routes)],
        cwd=BENCH_DIR, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(code)},
    )  # fmt: skip
    return _collected(out.stderr)


def _serve_instructions(code: Path, routes: Path, url: str, variant: str, count: int) -> int:
    """Instructions of ``serve`` (the package from ``code``) answering ``count`` requests
    of ``variant``: started under valgrind, driven, then stopped by SIGTERM (it exits
    normally, so callgrind reports)."""
    sys.path.insert(0, str(BENCH_DIR))
    import _procs

    host, path, metrics = VARIANTS[variant]
    port = _procs.free_port()
    backends = {f"default/{name}:80": url for name in ("app-v1", "app-v2")}
    # bench/run.py's command, its console script replaced by the measured main
    serve = _procs.gateway_command(routes, backends, port, None)[1:]
    command = [*_VALGRIND, sys.executable, "-c", _SERVE_MAIN, *serve]
    if metrics:
        command += ["--admin-port", str(_procs.free_port())]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command, cwd=BENCH_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(code)},
        )  # fmt: skip
        try:
            asyncio.run(_drive(port, host, path, count, proc))
            proc.terminate()
            proc.wait(120)
        finally:
            _procs.stop(proc)
        err.seek(0)
        return _collected(err.read().decode(errors="replace"))


async def _drive(
    port: int, host: str, path: str, count: int, proc: subprocess.Popen[bytes]
) -> None:
    """``count`` GETs over :data:`CONNECTIONS` keep-alive connections, each answer read
    whole (Content-Length framing) and checked to be a 200. The first connection is
    retried until the server listens (a refused connect costs it nothing, a probe request
    would): no request but the measured ones."""
    deadline = asyncio.get_running_loop().time() + 300  # valgrind starts Python slowly
    while True:
        try:
            first = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            if proc.poll() is not None or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"serve did not listen on {port} (exit {proc.poll()})") from None
            await asyncio.sleep(0.2)  # poll interval of a bounded wait
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
    head = request.encode()

    async def connection(
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], n: int
    ) -> None:
        reader, writer = streams
        for _ in range(n):
            writer.write(head)
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
            status = answer.split(b" ", 2)[1]
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", answer)
            assert status == b"200" and length, answer
            await reader.readexactly(int(length.group(1)))
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    others = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONNECTIONS - 1)]
    await asyncio.gather(*(connection(s, count // CONNECTIONS) for s in [first, *others]))


def _per_request(code: Path, routes: Path, url: str, variant: str, small: int, large: int) -> float:
    first = _instructions(code, routes, url, variant, small)
    second = _instructions(code, routes, url, variant, large)
    return (second - first) / (large - small)


def main() -> None:
    global CONNECTIONS
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=320)
    parser.add_argument("--large", type=int, default=1600)
    parser.add_argument("--baseline", metavar="REV", help="also measure the code at REV")
    parser.add_argument("--gc", action="store_true", help="keep the collector on (its runs count)")
    parser.add_argument(
        "--connections",
        type=int,
        default=CONNECTIONS,
        help="keep-alive connections of the serve- variants (the requests in flight)",
    )
    parser.add_argument("--child", nargs=4, metavar=("URL", "VARIANT", "COUNT", "ROUTES"))
    known = [*VARIANTS, *(SERVE + name for name in VARIANTS)]
    parser.add_argument("variants", nargs="*", help=f"of {', '.join(known)}; default: all")
    options = parser.parse_args()
    CONNECTIONS = options.connections
    # Checked here: Python 3.11's argparse checks a '*' positional given nothing (as in
    # --child) against its choices as a whole, and refuses it.
    unknown = set(options.variants) - set(known)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    options.variants = options.variants or list(VARIANTS)
    if options.child:
        url, variant, count, routes = options.child
        child(url, variant, int(count), Path(routes))
        return
    if options.gc:
        os.environ[KEEP_GC] = "1"
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(BENCH_DIR))
    import _procs
    from run import export_baseline

    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        port = _procs.free_port()
        backend = _procs.spawn(
            stack,
            "uvicorn-app-v1",
            _procs.uvicorn_command("backend_app:app_v1", port),
            logs=Path(tmp),
            port=port,
        )
        url = backend.url.rstrip("/")
        codes = {"ours": REPO}
        if options.baseline:
            codes["base"] = export_baseline(options.baseline, Path(tmp) / "base")
        results: dict[tuple[str, str], float] = {}
        for variant in options.variants:
            for name, code in codes.items():
                routes = code / "bench" / "config" / "routes.yaml"
                plain = variant.removeprefix(SERVE)
                if plain == "mw" and "mw.bench" not in routes.read_text():
                    continue  # an older checkout without the middleware route
                cli = (code / "traefikservice_asgi" / "cli.py").read_text()
                if plain == "wrr-metrics" and "--admin-port" not in cli:
                    continue  # an older checkout without metrics
                value = _per_request(code, routes, url, variant, options.small, options.large)
                results[(name, variant)] = value
                print(f"{name} {variant}: {value:,.0f} instructions/request", flush=True)
    for name in codes:
        for variant in options.variants:
            plain = SERVE + "wrr" if variant.startswith(SERVE) else "wrr"
            reference, measured = results.get((name, plain)), results.get((name, variant))
            if reference and measured and variant != plain:
                extra = measured - reference
                print(f"{name} {variant} vs {plain}: {measured / reference:.3f}x ({extra:+,.0f})")
    if "base" in codes:
        for variant in options.variants:
            ours, base = results.get(("ours", variant)), results.get(("base", variant))
            if ours and base:
                print(f"{variant} ours vs base: {ours / base:.3f}x")


if __name__ == "__main__":
    main()
