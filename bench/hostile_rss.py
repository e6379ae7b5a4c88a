"""Hostile clients and backends at once; print the gateway's peak RSS over idle.

    python bench/hostile_rss.py [--seconds 20] [--only bomb,flood,ws]

What runs at the same time, against one gateway (`traefikservice-asgi serve`, its own
process) in front of one backend (uvicorn, its own process):

* **gzip bomb**: the client sends no ``Accept-Encoding``, so the gateway adds ``gzip`` (as
  Go's transport does) and must inflate the answer: ~1 MiB of gzip that inflates to
  1000 MiB of zeros. The client reads it all, counting bytes.
* **header flood**: one connection sends a request line, then header lines without end
  (1 KiB each). The script stops on its own after ``--flood-mib`` MiB or ``--seconds``,
  and reports whether the gateway answered (431 expected once a request-head limit
  exists), closed the connection, or was still accepting.
* **slow WebSocket readers**: ``--ws`` clients (4) of a backend pushing 8 MiB messages as
  fast as it may; each client reads one message every ``--ws-interval`` seconds (1).

The gateway's RSS (``/proc/<pid>/status`` VmRSS) is sampled every 50 ms from a thread;
the kernel's own high-water mark (VmHWM, reset after the warm-up) is read at the end too,
so a peak between two samples is not missed. Idle RSS is read after a warm-up request.
The gateway runs whichever ``traefikservice_asgi`` the interpreter imports (the editable
install, or ``PYTHONPATH``); its path is printed first.
Prints the peak minus idle and PASS/FAIL against ``--budget-mib`` (64). Loopback only;
every loop bounded by ``--seconds``; every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

MIB = 1024 * 1024
WS_MESSAGE = 8 * MIB
BOMB_MIB = 1000

BACKEND = r"""
import sys, zlib, uvicorn
BOMB_MIB, WS_MESSAGE = int(sys.argv[2]), int(sys.argv[3])
z = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
zeros = bytes(1024 * 1024)
BOMB = b"".join([*(z.compress(zeros) for _ in range(BOMB_MIB)), z.flush()])
del zeros
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            await send({"type": m["type"] + ".complete"})
            if m["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        message = b"w" * WS_MESSAGE
        for _ in range(10_000):  # bounded; the client's close ends it earlier
            try:
                await send({"type": "websocket.send", "bytes": message})
            except OSError:
                return
        return
    if scope["path"] == "/bomb":
        headers = [(b"content-encoding", b"gzip"), (b"content-length", str(len(BOMB)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BOMB})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", ws="websockets-sansio")
"""

ROUTE = """apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: hostile, namespace: default}
spec:
  routes:
    - match: Host(`hostile.test`)
      services: [{name: hostile, port: 80}]
"""
HOST = "hostile.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not found")


def wait_up(url: str, host: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            httpx.get(url, headers={"Host": host}, timeout=2, trust_env=False)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Sampler(threading.Thread):
    """VmRSS of one process every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib, self.samples = 0, 0
        self.peak_at = 0.0
        self.stopped = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                rss = kib(self.pid, "VmRSS")
            except (OSError, RuntimeError):
                return
            self.samples += 1
            if rss > self.peak_kib:
                self.peak_kib, self.peak_at = rss, time.monotonic() - self.started_at


@dataclass
class Outcome:
    bomb: str = "not run"
    flood: str = "not run"
    ws: list[str] = field(default_factory=list)


async def bomb(url: str, deadline: float, out: Outcome) -> None:
    total, started = 0, time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            del client.headers["accept-encoding"]  # so the gateway adds gzip, as Go does
            async with client.stream("GET", url + "bomb", headers={"Host": HOST}) as r:
                encoding = r.headers.get("content-encoding", "none")
                async for chunk in r.aiter_raw():
                    total += len(chunk)
                    if time.monotonic() > deadline:
                        out.bomb = f"stopped at the deadline after {total / MIB:.0f} MiB"
                        return
        took = time.monotonic() - started
        whole = "whole" if total == BOMB_MIB * MIB else "INCOMPLETE"
        out.bomb = (
            f"status {r.status_code}, content-encoding {encoding}, {total / MIB:.0f} MiB "
            f"inflated received ({whole}) in {took:.1f} s"
        )
    except (httpx.HTTPError, OSError) as exc:
        out.bomb = f"failed after {total / MIB:.0f} MiB: {exc!r}"


async def flood(port: int, deadline: float, limit: int, out: Outcome) -> None:
    """Header lines without end, bounded by ``limit`` bytes and the deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent, answer = 0, b""
    line = b"X-Flood: " + b"f" * 1013 + b"\r\n"  # 1 KiB
    burst = line * 64
    reading = asyncio.ensure_future(reader.read(4096))
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        while sent < limit and time.monotonic() < deadline and not reading.done():
            writer.write(burst)
            sent += len(burst)
            try:
                await asyncio.wait_for(writer.drain(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
        if reading.done() or time.monotonic() < deadline:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(reading), 2)
        if reading.done() and reading.exception() is None:
            answer = reading.result()
            status = answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            how = f"answered {status!r}" if answer else "closed the connection"
        elif reading.done():
            how = f"reset the connection ({reading.exception()!r})"
        elif sent >= limit:
            how = "still accepting at our own byte limit"
        else:
            how = "still accepting (or blocking our writes) at the deadline"
        out.flood = f"{sent / MIB:.1f} MiB of headers sent; the gateway {how}"
    except OSError as exc:
        out.flood = f"{sent / MIB:.1f} MiB of headers sent; the gateway reset it ({exc!r})"
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def slow_reader(port: int, deadline: float, interval: float, out: Outcome, n: int) -> None:
    received = 0
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setblocking(False)
        async with connect(
            f"ws://{HOST}/ws",
            sock=sock,
            max_size=16 * MIB,
            max_queue=1,
            compression=None,
            open_timeout=10,
            close_timeout=5,
        ) as ws:
            while True:  # one read per interval; holds the connection until the deadline
                remaining = deadline - time.monotonic()
                if remaining <= interval:
                    await asyncio.sleep(max(0.0, remaining))
                    break
                await asyncio.sleep(interval)
                message = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                assert len(message) == WS_MESSAGE, len(message)
                received += 1
        out.ws.append(f"reader {n}: {received} messages of 8 MiB read, then closed")
    except (OSError, ConnectionClosed, asyncio.TimeoutError) as exc:
        out.ws.append(f"reader {n}: {received} messages, then {exc!r}")


async def run_loads(args: argparse.Namespace, port: int) -> Outcome:
    out = Outcome()
    deadline = time.monotonic() + args.seconds
    url = f"http://127.0.0.1:{port}/"
    jobs = []
    if "bomb" in args.only:
        jobs.append(bomb(url, deadline, out))
    if "flood" in args.only:
        jobs.append(flood(port, deadline, args.flood_mib * MIB, out))
    if "ws" in args.only:
        jobs += [slow_reader(port, deadline, args.ws_interval, out, n) for n in range(args.ws)]
    await asyncio.wait_for(asyncio.gather(*jobs), args.seconds + 30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="duration bound (20)")
    parser.add_argument("--only", default="bomb,flood,ws", help="loads to run (all)")
    parser.add_argument("--flood-mib", type=int, default=32, help="header bytes cap (32)")
    parser.add_argument("--ws", type=int, default=4, help="slow WebSocket readers (4)")
    parser.add_argument("--ws-interval", type=float, default=1.0, help="s per read (1)")
    parser.add_argument("--budget-mib", type=float, default=64, help="PASS bound (64)")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    imported = subprocess.run(
        [sys.executable, "-c", "import traefikservice_asgi as t; print(t.__file__)"],
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"gateway package: {imported}")
    backend_port, gateway_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "route.yaml").write_text(ROUTE)
        try:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        BACKEND,
                        str(backend_port),
                        str(BOMB_MIB),
                        str(WS_MESSAGE),
                    ],
                    stderr=subprocess.DEVNULL,  # its sends cut short at the end print tracebacks
                )
            )
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "traefikservice_asgi",
                        "serve",
                        tmp,
                        "--port",
                        str(gateway_port),
                        "--log-level",
                        "error",
                        "--backend",
                        f"default/hostile:80=http://127.0.0.1:{backend_port}",
                    ],
                    cwd=tmp,  # the package as the interpreter imports it, not ./ first
                )
            )
            gateway = procs[1]
            url = f"http://127.0.0.1:{gateway_port}/"
            wait_up(f"http://127.0.0.1:{backend_port}/", "x")
            wait_up(url, HOST)
            idle = kib(gateway.pid, "VmRSS")
            Path(f"/proc/{gateway.pid}/clear_refs").write_text("5")  # reset VmHWM
            sampler = Sampler(gateway.pid)
            sampler.start()
            started = time.monotonic()
            try:
                out = asyncio.run(run_loads(args, gateway_port))
            finally:
                sampler.stopped.set()
                sampler.join(5)
            elapsed = time.monotonic() - started
            hwm = kib(gateway.pid, "VmHWM")
            alive = gateway.poll() is None
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    peak = max(hwm, sampler.peak_kib)
    increase = (peak - idle) / 1024
    print(f"loads ({', '.join(sorted(args.only))}) ran {elapsed:.1f} s:")
    print(f"  gzip bomb: {out.bomb}")
    print(f"  header flood: {out.flood}")
    for line in out.ws:
        print(f"  websocket {line}")
    print(f"  gateway still running: {alive}")
    print(
        f"gateway RSS: idle {idle / 1024:.1f} MiB; peak sampled every 50 ms "
        f"{sampler.peak_kib / 1024:.1f} MiB at {sampler.peak_at:.1f} s ({sampler.samples} "
        f"samples), kernel high-water mark {hwm / 1024:.1f} MiB"
    )
    verdict = "PASS" if increase < args.budget_mib and alive else "FAIL"
    print(f"peak - idle: {increase:.1f} MiB (budget {args.budget_mib:.0f} MiB): {verdict}")
    sys.exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
