"""Main-path latency with 100 % mirroring to a mirror that answers after 3 s, against the
same run without mirroring; and the gateway's memory while copies pile up.

    python bench/mirror_latency.py [--requests 6000] [--rounds 12] [--rate 1000] [--body 0]

One gateway process (`traefikservice-asgi serve`) serves three hosts with the same main
backend: `plain.test` and `plain2.test` (no mirror) and `mirrored.test` (100 % to a 3 s
mirror). Each round runs the three one after the other, in an order rotated from round
to round, so all three see the same machine; a first round warms them up (the copies'
thousand connections are opened there, once, as a long-running gateway opens them once)
and is printed but not counted. Latency is measured per request by keep-alive
raw-socket clients in this process, at the same offered load (`--rate`, default 1000
req/s; `--rate 0` saturates the process, where every copy's CPU becomes queueing for
the main path).

The result is the median over rounds of the p99 ratio mirrored / plain: on a shared VM
a single millisecond-long stall landing in one run moves a p99 by 2x, and the median is
not moved by a few such rounds. The same median for plain2 / plain, two identical
routes without a mirror, is the control: the noise floor of the machine during this
very run. `--body N` sends POSTs with N-byte bodies, so copies hold buffered bodies
(the gateway's RSS is sampled every 50 ms). Copies beyond the gateway's limits are
dropped and counted: the totals are read from the gateway's summary at shutdown.
Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

BACKEND = r"""
import asyncio, sys, uvicorn
DELAY = float(sys.argv[2])
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            await send({"type": m["type"] + ".complete"})
            if m["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    if DELAY:
        await asyncio.sleep(DELAY)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello app-v1\n"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", backlog=4096,
            limit_concurrency=None, timeout_keep_alive=30)
"""

# The mirror: a bare asyncio protocol answering every request after DELAY seconds. It
# stands for a mirror on another machine, so its own CPU (uvicorn spends ~0.3 ms per new
# connection, and a burst of copies opens a thousand) is kept out of this machine's
# measurement of the gateway as far as possible.
MIRROR = r"""
import asyncio, re, sys
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
DELAY = float(sys.argv[2])
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello mirror\n"
LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")
class Mirror(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            length = LENGTH.search(head)
            self.buffer = rest[int(length.group(1)) if length else 0:]
            asyncio.get_running_loop().call_later(DELAY, self.answer)
    def answer(self):
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)
async def main():
    server = await asyncio.get_running_loop().create_server(
        Mirror, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    await server.serve_forever()
asyncio.run(main())
"""

CONFIG = """apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: m, namespace: default}
spec:
  routes:
    - match: Host(`plain.test`)
      services: [{name: main, port: 80}]
    - match: Host(`plain2.test`)
      services: [{name: main, port: 80}]
    - match: Host(`mirrored.test`)
      services: [{name: mirrored, kind: TraefikService}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: mirrored, namespace: default}
spec:
  mirroring:
    name: main
    port: 80
    mirrors: [{name: slow, port: 80, percent: 100}]
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def client(
    port: int,
    request: bytes,
    count: int,
    latencies: list[float],
    interval: float,
    offset: float,
) -> None:
    """One keep-alive connection; with ``interval`` > 0 it sends on a fixed schedule
    (open loop: a late answer does not delay the next send's slot), so every host sees
    the same offered load and latency is not queueing behind a saturated process."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    start = loop.time() + offset  # clients staggered: a smooth load, not bursts
    try:
        for i in range(count):
            if interval:
                delay = start + i * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def request_bytes(host: str, body: int) -> bytes:
    if not body:
        return f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    head = f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {body}\r\n\r\n"
    return head.encode() + b"b" * body


class RssSampler(threading.Thread):
    """The gateway's resident memory every 50 ms; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            found = re.search(r"VmRSS:\s+(\d+)", status)
            if found:
                self.peak = max(self.peak, int(found.group(1)) * 1024)


def idle_priority(enabled: bool) -> list[str]:
    """A command prefix running the mirror at the kernel's idle priority (SCHED_IDLE).

    The mirror stands for another machine. Here it shares CPU 0 with the clients and the
    main backend, whose timing is the measurement: at normal priority, its bursts (a
    thousand requests read in one second, a thousand answers written three seconds
    later) delay the main backend's answers and the clients' clocks, and that delay
    would be charged to the gateway. At idle priority it runs only when they do not.
    """
    if not enabled or not shutil.which("chrt"):
        return []
    return ["chrt", "--idle", "0"]


def cpu_split(pin: bool) -> tuple[list[str], list[str]]:
    """Command prefixes putting the gateway on the last CPU and the backends on CPU 0.

    The latency compared is the gateway's: with the clients, the main backend and the
    mirror (which stands for other machines) on the gateway's CPU, their own bursts of
    work, e.g. the mirror accepting a thousand connections, would count against it.
    """
    cpus = os.cpu_count() or 1
    if not pin or cpus < 2 or not shutil.which("taskset"):
        return [], []
    return ["taskset", "-c", str(cpus - 1)], ["taskset", "-c", "0"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


HOSTS = ("plain.test", "plain2.test", "mirrored.test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000, help="per host and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=12, help="rounds counted")
    parser.add_argument("--body", type=int, default=0, help="bytes of body per request (POST)")
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="offered requests/s for all clients together; 0: as fast as they can",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not give the gateway a CPU of its own (taskset)",
    )
    parser.add_argument(
        "--normal-priority-mirror",
        dest="idle_mirror",
        action="store_false",
        help="run the mirror at normal priority instead of SCHED_IDLE",
    )
    parser.add_argument(
        "gateway_args",
        nargs="*",
        help="extra `serve` options after --, e.g. -- --mirror-max-in-flight 100",
    )
    args = parser.parse_args()
    if args.pin and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})  # the clients share CPU 0 with the backends
    main_port, slow_port, gw_port = free_port(), free_port(), free_port()
    log_lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.yaml").write_text(CONFIG)
        gateway_cpus, other_cpus = cpu_split(args.pin)
        mirror = [*other_cpus, *idle_priority(args.idle_mirror), sys.executable, "-c", MIRROR]
        serve = [*gateway_cpus, sys.executable, "-m", "traefikservice_asgi", "serve", tmp]
        serve += ["--port", str(gw_port), "--log-level", "warning"]
        serve += ["--backend", f"default/main:80=http://127.0.0.1:{main_port}"]
        serve += ["--backend", f"default/slow:80=http://127.0.0.1:{slow_port}"]
        procs = [
            subprocess.Popen([*other_cpus, sys.executable, "-c", BACKEND, str(main_port), "0"]),
            subprocess.Popen([*mirror, str(slow_port), "3"]),
            subprocess.Popen(
                [*serve, *args.gateway_args], cwd=ROOT, stderr=subprocess.PIPE, text=True
            ),
        ]
        gateway = procs[2]
        assert gateway.stderr is not None
        reader = threading.Thread(target=lambda: log_lines.extend(gateway.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        results: dict[str, list[float]] = {h: [] for h in HOSTS}
        round_p99: dict[str, list[float]] = {h: [] for h in HOSTS}
        warmup: dict[str, float] = {}
        cpu = dict.fromkeys(HOSTS, 0.0)
        peak_rss = dict.fromkeys(HOSTS, 0)
        try:
            for port in (main_port, gw_port):
                deadline = time.monotonic() + 20
                while True:
                    try:
                        httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "warmup.invalid"})
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline, "did not start"
                        time.sleep(0.1)
            per_client = args.requests // args.concurrency
            interval = args.concurrency / args.rate if args.rate else 0.0
            for round_ in range(-1, args.rounds):  # round -1: the warm-up
                for host in HOSTS[round_ % 3 :] + HOSTS[: round_ % 3]:
                    this_round: list[float] = []
                    request = request_bytes(host, args.body)

                    async def run(
                        request: bytes = request, this_round: list[float] = this_round
                    ) -> None:
                        clients = (
                            client(
                                gw_port,
                                request,
                                per_client,
                                this_round,
                                interval,
                                interval * k / args.concurrency,
                            )
                            for k in range(args.concurrency)
                        )
                        await asyncio.wait_for(asyncio.gather(*clients), 300)

                    cpu_before = cpu_seconds(gateway.pid)
                    sampler = RssSampler(gateway.pid)
                    sampler.start()
                    asyncio.run(run())
                    sampler.stop.set()
                    sampler.join()
                    if round_ < 0:
                        warmup[host] = percentile(this_round, 99)
                        continue
                    results[host].extend(this_round)
                    round_p99[host].append(percentile(this_round, 99))
                    cpu[host] += cpu_seconds(gateway.pid) - cpu_before
                    peak_rss[host] = max(peak_rss[host], sampler.peak)
                    if host == "mirrored.test":
                        # Let the round's last copies end before the next run: their
                        # answers are work of the mirrored run, not of the next one.
                        time.sleep(3.5)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(15)
            reader.join(2)
    report(args, results, round_p99, warmup, cpu, peak_rss, log_lines)


def report(
    args: argparse.Namespace,
    results: dict[str, list[float]],
    round_p99: dict[str, list[float]],
    warmup: dict[str, float],
    cpu: dict[str, float],
    peak_rss: dict[str, int],
    log_lines: list[str],
) -> None:
    load = f"{args.rate:g} req/s offered" if args.rate else "as fast as possible (saturated)"
    body = f", {args.body}-byte POST bodies" if args.body else ""
    print(
        f"{args.rounds} rounds x {args.requests} requests per host, {args.concurrency} "
        f"clients, {load}{body}"
    )
    plain = warmup["plain.test"]
    print(
        "  warm-up round (not counted): p99 "
        + ", ".join(f"{h} {warmup[h] * 1000:.2f} ms" for h in HOSTS)
        + f"; mirrored / plain {warmup['mirrored.test'] / plain:.2f}"
    )
    for host, values in results.items():
        print(
            f"  {host:14s} p50 {percentile(values, 50) * 1000:6.2f} ms  p99 {percentile(values, 99) * 1000:6.2f} ms"
            f"  mean {statistics.fmean(values) * 1000:6.2f} ms  n={len(values)}"
            f"  gateway CPU {cpu[host] / len(values) * 1e6:4.0f} us/request"
            f"  peak RSS {peak_rss[host] / 2**20:5.1f} MiB"
        )
    for other in ("mirrored.test", "plain2.test"):
        pooled = percentile(results[other], 99) / percentile(results["plain.test"], 99)
        # Each round's runs are minutes apart at most, so they share the machine's mood:
        # the median of the rounds' ratios is not moved by a few stalls of the (virtual)
        # machine landing in one run, which move a pooled p99 by a factor of two.
        ratios = [o / p for p, o in zip(round_p99["plain.test"], round_p99[other], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        role = "acceptance: <= 1.10" if other == "mirrored.test" else "control: the noise floor"
        print(
            f"  p99 {other} / plain.test: median of {len(ratios)} rounds "
            f"{statistics.median(ratios):.2f} (quartiles {q1:.2f}-{q3:.2f}; {role}), "
            f"pooled {pooled:.2f}"
        )
        print("    rounds: " + " ".join(f"{r:.2f}" for r in ratios))
    summary = next(
        (line.strip() for line in log_lines if "mirror copies:" in line), "no copy dropped"
    )
    print(f"  {summary}")


if __name__ == "__main__":
    main()
