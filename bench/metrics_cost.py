"""What Traefik's metrics cost the gateway: ``serve`` without and with ``--admin-port``.

Two measurements, loopback only, every process stopped by its PID:

1. In process: CPU µs per request of the observation alone (the entry point recording
   and the server recording around a stub that answers at once, both behind the entry
   point's client watch), best of 5.
2. The whole gateway in process: ``create_app`` on bench/config/routes.yaml called as
   an ASGI app by 64 concurrent tasks (no HTTP server in front) on ``wrr.bench``, to a
   real backend in another process; the CPU time of this process per request, metrics
   off and on paired in each round (the order alternating), the median of the rounds'
   differences. Only the gateway's own work is timed, so the shared box's other load
   moves it far less than the wrk figures.
3. Under load: ``wrk -c64`` on ``wrr.bench`` of bench/config/routes.yaml, the gateway
   without and with ``--admin-port`` (scraped every second meanwhile), paired in each
   round (off then on, on then off in the next: a drift of the box's load falls on
   both); req/s and the gateway's CPU per request (from /proc/PID/stat), reported as
   the median of the rounds' paired ratios (req/s) and differences (CPU), each
   round's own beside them. The load average is printed before and after: the box
   is shared, and a round next to someone else's run reads low.

    python bench/metrics_cost.py [--rounds 3] [--duration 5] [--no-wrk]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ROOT / "bench" / "config" / "routes.yaml"
TICKS = os.sysconf("SC_CLK_TCK")


def in_process(n: int = 100_000) -> tuple[float, float]:
    """(µs per request bare, µs per request observed) of a stub leaf behind the entry
    point's client watch: the entry point's recording around the routing (counted by
    the watch's own wrappers), and a server's record of its exchange, as
    ``TraefikServiceMiddleware`` and ``proxy.Server`` do them."""
    from traefikservice_asgi.entrypoint.forwarding import prepare
    from traefikservice_asgi.entrypoint.lifecycle import serve_watched
    from traefikservice_asgi.observability import ObservabilityOptions
    from traefikservice_asgi.observability.metrics import Metrics
    from traefikservice_asgi.observability.observe import Observer, ServerRecorder

    start = {"type": "http.response.start", "status": 200, "headers": []}
    body = {"type": "http.response.body", "body": b"Hello app-v1\n"}
    size = len(body["body"])

    async def nothing(message: Any) -> None:
        return None

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    metrics = Metrics(ObservabilityOptions(metrics=True))
    observer = Observer(metrics, None)
    recorder = ServerRecorder("http://127.0.0.1:1", metrics.service("s@kubernetescrd"), metrics)
    headers = [(b"host", b"wrr.bench"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
    forward = prepare({"type": "http", "method": "GET", "path": "/", "headers": headers})
    perf = time.perf_counter

    async def leaf(scope: Any, receive: Any, send: Any) -> None:
        began = perf()
        sent = [0, 0]
        try:
            sent[0] = 200
            await send(start)
            sent[1] += size
            await send(body)
        finally:
            recorder.record(scope, forward, began, sent[0], sent[1], 0)

    async def bare_leaf(scope: Any, receive: Any, send: Any) -> None:
        await send(start)
        await send(body)

    async def run(observed: bool) -> float:
        t0 = time.process_time()
        for _ in range(n):
            scope = {"type": "http", "method": "GET", "headers": headers}
            if observed:
                exchange = observer.begin(scope, forward)
                try:
                    await serve_watched(
                        leaf, scope, receive, nothing, has_body=False, counted=exchange
                    )
                finally:
                    observer.end(scope, exchange)
            else:
                await serve_watched(bare_leaf, scope, receive, nothing, has_body=False)
        return (time.process_time() - t0) / n * 1e6

    bare = min(asyncio.run(run(False)) for _ in range(5))
    observed = min(asyncio.run(run(True)) for _ in range(5))
    return bare, observed


def whole_gateway(
    backend_url: str, rounds: int, n: int = 20_000, concurrency: int = 64
) -> dict[str, list[float]]:
    """CPU µs per request of the whole gateway, called in process, off and on."""
    import uvloop

    from traefikservice_asgi import create_app
    from traefikservice_asgi.observability import ObservabilityOptions

    backends = {f"default/{name}:80": backend_url for name in ("app-v1", "app-v2")}
    headers = [(b"host", b"wrr.bench"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]

    async def run(metrics: bool) -> float:
        app = create_app(
            [str(ROUTES)], backends=backends, observability=ObservabilityOptions(metrics=metrics)
        )
        never = asyncio.Event()

        async def receive() -> Any:
            await never.wait()  # the body was given with the scope's first message

        async def send(message: Any) -> None:
            return None

        async def worker(count: int) -> None:
            for _ in range(count):
                scope = {
                    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                    "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
                    "query_string": b"", "root_path": "", "headers": headers,
                    "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
                }  # fmt: skip
                first = True

                async def receive_once() -> Any:
                    nonlocal first
                    if first:
                        first = False
                        return {"type": "http.request", "body": b"", "more_body": False}
                    return await receive()

                await app(scope, receive_once, send)

        await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm the pools
        t0 = time.process_time()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        cpu = (time.process_time() - t0) / (n // concurrency * concurrency) * 1e6
        await app.aclose()
        return cpu

    results: dict[str, list[float]] = {"off": [], "on": []}
    for index in range(rounds):
        for mode in _order(index):
            results[mode].append(uvloop.run(run(mode == "on")))
    return results


def _order(index: int) -> tuple[str, str]:
    """The modes of round ``index``: off first, then on first in the next round."""
    return ("off", "on") if index % 2 == 0 else ("on", "off")


def _backend() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    backend = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.backend_app:app_v1", "--port",
         str(port), "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait(f"{url}/")
    return backend, url


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, host: str | None = None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers={"Host": host} if host else {})
            urllib.request.urlopen(request, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def under_load(
    backend_url: str, rounds: int, duration: float
) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for index in range(rounds):
        for mode in _order(index):
            results[mode].append(_one(mode, backend_url, duration))
    return results


def _one(mode: str, backend_url: str, duration: float) -> tuple[float, float]:
    port, admin = _free_port(), _free_port()
    args = [sys.executable, "-m", "traefikservice_asgi", "serve", str(ROUTES), "--port",
            str(port), "--log-level", "warning"]  # fmt: skip
    for name in ("app-v1", "app-v2"):
        args += ["--backend", f"default/{name}:80={backend_url}"]
    if mode == "on":
        args += ["--admin-port", str(admin)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        _wait(f"http://127.0.0.1:{port}/", "wrr.bench")
        if mode == "on":

            def scrape() -> None:
                while not stop.wait(1.0):
                    urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read()

            threading.Thread(target=scrape, daemon=True).start()
        cpu0 = _cpu(proc.pid)
        out = subprocess.run(
            ["wrk", "-t2", "-c64", f"-d{int(duration)}s", "-H", "Host: wrr.bench",
             f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cpu = _cpu(proc.pid) - cpu0
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        assert match and total, out
        return float(match.group(1)), cpu / int(total.group(1)) * 1e6
    finally:
        stop.set()
        proc.terminate()
        proc.wait(10)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _load() -> str:
    return "load average " + " ".join(f"{n:.2f}" for n in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--no-wrk", action="store_true", help="skip the measurement under wrk")
    options = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {_load()}")
    bare, observed = in_process()
    print(f"in process: stub {bare:.2f} µs/req, observed {observed:.2f} µs/req, "
          f"observation {observed - bare:.2f} µs/req")  # fmt: skip
    backend, backend_url = _backend()
    try:
        whole = whole_gateway(backend_url, options.rounds)
        differences = [on - off for off, on in zip(whole["off"], whole["on"], strict=True)]
        for index, (off, on) in enumerate(zip(whole["off"], whole["on"], strict=True)):
            print(f"whole gateway in process, round {index + 1}: off {off:.1f}, on {on:.1f} "
                  f"µs/req, CPU {on - off:+.1f} µs/req")  # fmt: skip
        print(f"whole gateway in process, median of the rounds: "
              f"CPU {_median(differences):+.1f} µs/req")  # fmt: skip
        if options.no_wrk:
            return
        results = under_load(backend_url, options.rounds, options.duration)
    finally:
        backend.terminate()
        backend.wait(10)
    ratios, extra = [], []
    for index, ((off_rps, off_cpu), (on_rps, on_cpu)) in enumerate(
        zip(results["off"], results["on"], strict=True)
    ):
        ratios.append(on_rps / off_rps)
        extra.append(on_cpu - off_cpu)
        print(f"wrk round {index + 1} ({' then '.join(_order(index))}): off {off_rps:.0f} "
              f"req/s {off_cpu:.1f} µs CPU/req; on {on_rps:.0f} req/s {on_cpu:.1f} µs CPU/req; "
              f"req/s {100 * (ratios[-1] - 1):+.1f} %, CPU {extra[-1]:+.1f} µs/req")  # fmt: skip
    print(f"wrk, median of the rounds' pairs: req/s {100 * (_median(ratios) - 1):+.1f} %, "
          f"CPU {_median(extra):+.1f} µs/req")  # fmt: skip
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {_load()}")


if __name__ == "__main__":
    main()
