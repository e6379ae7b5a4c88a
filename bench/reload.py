"""Reload a 1,000-route configuration under load: the reload time (from the gateway's
log), the event loop's longest stall during each reload (measured inside the gateway by
its opt-in loop-lag sampler, ``TRAEFIKSERVICE_ASGI_LOOP_LAG``, and logged), and the
latency of requests during reloads against steady state, measured from outside (p50,
p99, max: a stalled event loop shows as a latency spike).

    python bench/reload.py [--routes 1000] [--clients 16] [--reloads 5] [--steady 4] [--trace]
    python bench/reload.py --in-process [--routes 1000] [--reloads 5] [--compare collector]
    python bench/reload.py --in-process --compare pacing [--busy 8]

``--in-process`` reloads the gateway in this process with no traffic and no other
thread of ours: the stall of each reload alone (a 1 ms sampler) and the cycle
collector's passes during it, alternating reloads as built with reloads of another
arm, so that the shared box's load moves both arms alike: ``--compare collector``, the
collector left on (as before it was off while building, then ``gc.freeze``);
``--compare pacing``, the loading thread not paced (as before ``reload.Pacer``). With
``--busy N`` the loop is kept busy meanwhile by N tasks, each 0.5 ms of Python work per
iteration (a busy gateway's loop; the pacing only matters then).

``--trace`` loads ``bench/trace/sitecustomize.py`` into the gateway and prints where the
stalls fell: each phase's duration and the loop-lag samples over 4 ms (10 ms) during the
reloads by the phase then running, and each reload's longest stall from its start to
the swap against the same length of time just before it.

Everything on 127.0.0.1: one backend process, the gateway (`serve --no-watch`, reloaded
by SIGHUP so the moment is known), the clients in this process. Bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from traefikservice_asgi.observability.looplag import ENV_LOOP_LAG

BACKEND = r"""
import asyncio, sys
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
    except Exception:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manifest(routes: int, generation: int) -> str:
    docs = []
    for i in range(routes):
        # Each reload changes one service's weights (the others keep their state).
        w = 1 + (generation if i == 0 else 0)
        docs.append(
            f"apiVersion: traefik.io/v1alpha1\nkind: TraefikService\n"
            f"metadata: {{name: s{i}, namespace: default}}\nspec:\n  weighted:\n"
            f"    services: [{{name: a, port: 80, weight: {w}}}, {{name: b, port: 80, weight: 1}}]\n"
        )
    matches = "\n".join(
        f"    - match: Host(`h{i}.test`)\n      services: [{{name: s{i}, kind: TraefikService}}]"
        for i in range(routes)
    )
    docs.append(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\n"
        f"metadata: {{name: r, namespace: default}}\nspec:\n  routes:\n{matches}\n"
    )
    return "\n---\n".join(docs)


async def load(port: int, clients: int, until: float, routes: int) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []

    async def one(k: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            i = k
            while time.monotonic() < until:
                t0 = time.monotonic()
                r = await c.get("/", headers={"Host": f"h{i % routes}.test"})
                samples.append((t0, time.monotonic() - t0))
                assert r.status_code == 200, r.status_code
                i += clients

    await asyncio.gather(*(one(k) for k in range(clients)))
    return samples


PHASES = ("parse_documents", "resolve", "load", "summarize", "build_runtime")
"""Innermost first: a stall is put in the first of these running when it ended."""


def breakdown(trace: dict[str, list[list[Any]]]) -> None:
    """Print where the loop stalled during the reloads of a ``--trace`` run."""
    phases, stalls = trace["phases"], trace["stalls"]
    reloads = [(began, ended) for name, began, ended in phases if name == "reload"]
    durations: dict[str, list[float]] = {}
    for name, began, ended in phases:
        durations.setdefault(name, []).append((ended - began) * 1000)
    print(
        "phase durations (ms, median): "
        + ", ".join(
            f"{n} {statistics.median(v):.0f}"
            for n in (*PHASES, "reload")
            if (v := durations.get(n))
        )
        + " (load: read, YAML, the documents read, resolve)"
    )
    over4: dict[str, int] = {}
    over10: dict[str, int] = {}
    for ended, late in stalls:
        if not any(began <= ended <= end for began, end in reloads):
            continue
        running = {n for n, b, e in phases if n in PHASES and b <= ended <= e}
        where = next((n for n in PHASES if n in running), "on the loop")
        over4[where] = over4.get(where, 0) + 1
        if late > 0.010:
            over10[where] = over10.get(where, 0) + 1
    print(f"stalls over 4 ms during the reloads, by phase: {over4}; over 10 ms: {over10}")

    def longest(a: float, b: float) -> float:
        return max([late * 1000 for ended, late in stalls if a <= ended <= b] + [0.0])

    during = [longest(b, e) for b, e in reloads]
    before = [longest(b - 0.1 - (e - b), b - 0.1) for b, e in reloads]
    print(
        "longest stall start->swap (ms): "
        + ", ".join(f"{v:.0f}" for v in during)
        + "; the same length just before: "
        + ", ".join(f"{v:.0f}" for v in before)
    )


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0.0


def in_process(routes: int, reloads: int, compare: str, busy: int) -> int:
    """Reload ``reloads`` times in this process, without load: each reload's duration,
    the loop's longest stall during it and in the second after, the collector's passes
    over 2 ms (generation, ms); alternating the ``compare`` arm."""
    import gc

    from traefikservice_asgi import create_app
    from traefikservice_asgi.observability.looplag import LoopLag

    tmp = Path(tempfile.mkdtemp())
    path = tmp / "routes.yaml"
    path.write_text(manifest(routes, 0))
    backends = {"default/a:80": "http://127.0.0.1:9", "default/b:80": "http://127.0.0.1:9"}
    app = create_app([str(path)], backends=backends)
    passes: list[tuple[int, float]] = []
    began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            passes.append((info["generation"], (time.perf_counter() - began[0]) * 1000))

    class _CollectorLeftOn:
        """``gc`` as reload.py sees it, its disable and freeze made no-ops."""

        def __getattr__(self, name: str) -> object:
            return (lambda: None) if name in ("disable", "freeze") else getattr(gc, name)

    import traefikservice_asgi.reload as reload_module

    paced = getattr(reload_module, "Pacer", None)  # None: a gateway from before pacing

    class _Unpaced(paced or object):  # type: ignore[misc]
        """The pacer with an endless slice: the thread never gives way."""

        def __init__(self, loop: asyncio.AbstractEventLoop, slice_: float | None = None) -> None:
            super().__init__(loop, float("inf"))  # type: ignore[call-arg]

    running = [True]

    async def spin() -> None:
        while running[0]:
            until = time.perf_counter() + 0.0005
            while time.perf_counter() < until:
                pass
            await asyncio.sleep(0)

    async def scenario() -> None:
        spinners = [asyncio.ensure_future(spin()) for _ in range(busy)]
        lag = LoopLag(0.001)
        lag.start()
        for g in range(1, 2 * reloads + 1):
            other = g % 2 == 0
            if compare == "collector":
                arm = "collector on " if other else "as built     "
                reload_module.gc = _CollectorLeftOn() if other else gc  # type: ignore[assignment]
            else:
                arm = "not paced    " if other else "as built     "
                reload_module.Pacer = _Unpaced if other else paced  # type: ignore[misc]
            path.write_text(manifest(routes, g))
            await asyncio.sleep(0.2)
            lag.take()
            passes.clear()
            summary = await app.reload()
            during = lag.take()
            await asyncio.sleep(1.0)
            after = lag.take()
            slow = [(gen, round(ms, 1)) for gen, ms in passes if ms > 2]
            print(
                f"{arm} reload {summary.duration * 1000:.0f} ms: longest stall {during * 1000:.1f} ms "
                f"during, {after * 1000:.1f} ms in the second after; collector passes over "
                f"2 ms: {slow or 'none'}"
            )
        reload_module.gc = gc
        if paced is not None:
            reload_module.Pacer = paced  # type: ignore[misc]
        running[0] = False
        await asyncio.gather(*spinners)
        lag.stop()
        await app.aclose()

    gc.callbacks.append(on_gc)
    try:
        asyncio.run(scenario())
    finally:
        gc.callbacks.remove(on_gc)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--steady", type=float, default=4.0)
    ap.add_argument("--in-process", action="store_true", help="no load: the reload alone")
    ap.add_argument("--compare", choices=("collector", "pacing"), default="collector")
    ap.add_argument("--busy", type=int, default=0, help="in process: tasks keeping the loop busy")
    ap.add_argument("--trace", action="store_true", help="where the stalls fell, by phase")
    args = ap.parse_args()
    if args.in_process:
        return in_process(args.routes, args.reloads, args.compare, args.busy)
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "routes.yaml"
    path.write_text(manifest(args.routes, 0))
    bport, gport = free_port(), free_port()
    backend = subprocess.Popen([sys.executable, "-c", BACKEND, str(bport)])
    log = (tmp / "gateway.log").open("wb")
    env = {**os.environ, ENV_LOOP_LAG: "1"}
    if args.trace:
        here = str(Path(__file__).resolve().parent / "trace")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (here, env.get("PYTHONPATH"))))
        env["RELOAD_TRACE"] = str(tmp / "trace")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "traefikservice_asgi", "serve", str(path), "--no-watch",
         "--port", str(gport), "--log-level", "info",
         "--backend", f"default/a:80=http://127.0.0.1:{bport}",
         "--backend", f"default/b:80=http://127.0.0.1:{bport}"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{gport}/", headers={"Host": "h0.test"}, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or gateway.poll() is not None:
                    print((tmp / "gateway.log").read_text())
                    return 1
                time.sleep(0.1)

        async def scenario() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
            steady = await load(gport, args.clients, time.monotonic() + args.steady, args.routes)
            windows: list[tuple[float, float]] = []
            until = time.monotonic() + args.reloads * 2.0 + 1.0
            task = asyncio.create_task(load(gport, args.clients, until, args.routes))
            await asyncio.sleep(0.5)
            for g in range(1, args.reloads + 1):
                path.write_text(manifest(args.routes, g))
                t0 = time.monotonic()
                gateway.send_signal(signal.SIGHUP)
                await asyncio.sleep(2.0)
                windows.append((t0, t0 + 2.0))
            return steady, await task

        steady, during = asyncio.run(scenario())
    finally:
        gateway.send_signal(signal.SIGINT)
        try:
            gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()
        backend.terminate()
        backend.wait(5)
        log.close()
    text = (tmp / "gateway.log").read_text()
    times = [
        float(m) for m in re.findall(r"configuration reloaded \(SIGHUP\).* in ([0-9.]+) ms", text)
    ]
    stalls = [
        float(m)
        for m in re.findall(r"longest stall ([0-9.]+) ms during the reload \(SIGHUP\)", text)
    ]
    after = [
        float(m)
        for m in re.findall(r"during the reload \(SIGHUP\), ([0-9.]+) ms in the second after", text)
    ]  # gateways before the split logged the reload and the second after as one stall
    between = [float(m) for m in re.findall(r"longest stall ([0-9.]+) ms between reloads", text)]
    s = [d for _, d in steady]
    r = [d for _, d in during]
    print(f"routes {args.routes}, clients {args.clients}, reloads {len(times)} of {args.reloads}")
    print(f"reload time (load+validate+build, ms): {', '.join(f'{t:.0f}' for t in times)}")
    print(
        "longest event loop stall per reload (ms, target <= 20): "
        + ", ".join(f"{t:.1f}" for t in stalls)
    )
    if after:
        print(
            "longest stall in the second after each swap (ms): "
            + ", ".join(f"{t:.1f}" for t in after)
        )
    print(
        "longest stall before each reload, without one (ms; the first: the steady phase): "
        + ", ".join(f"{t:.1f}" for t in between)
    )
    for label, v in (("steady", s), ("during reloads", r)):
        print(
            f"{label:>15}: {len(v)} requests, p50 {pct(v, 0.5) * 1000:.1f} ms, "
            f"p99 {pct(v, 0.99) * 1000:.1f} ms, max {max(v) * 1000:.1f} ms"
        )
    print(f"p99 during reloads / steady: {pct(r, 0.99) / pct(s, 0.99):.2f}x")
    if args.trace:
        import json

        breakdown(json.loads((tmp / f"trace.{gateway.pid}").read_text()))
    return 0 if len(times) == args.reloads else 1


if __name__ == "__main__":
    sys.exit(main())
